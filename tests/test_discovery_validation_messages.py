"""What the explorer is told when the static checks refuse its program: every rule, its line, its words.

The explorer (an LLM) only learns from these messages, so each refusal names the rule,
the line and what is allowed instead; and each program gets exactly the violations it
earns, no fewer and no duplicates.
"""

from __future__ import annotations

import pytest

from autotts.discovery.validation import (
    ALLOWED_IMPORTS,
    MAX_SOURCE_CHARS,
    SAFE_SUBMODULES,
    ValidationResult,
    Violation,
    parse_source,
    validate_source,
)
from tests.discovery_support import ONE_LINE_AT, body

ALLOWED = ", ".join(sorted(ALLOWED_IMPORTS))
MODULE_HINT = "it is (or reaches) a module outside the allow-list; allowed modules: " + ", ".join(
    sorted(ALLOWED_IMPORTS | SAFE_SUBMODULES)
)

LINE = ONE_LINE_AT  # the line of {line} in the body (after a one-line header: 12)


@pytest.mark.parametrize(
    ("header", "line", "expected"),
    [
        ("import os\n", "pass", [("import", 1, f"import of 'os' is not allowed; allowed modules: {ALLOWED}")]),
        (
            "import math, os.path\n",
            "pass",
            [("import", 1, f"import of 'os.path' is not allowed; allowed modules: {ALLOWED}")],
        ),
        (
            "from . import x\n",
            "pass",
            [("import", 1, "relative imports are not allowed (a candidate is a single file)")],
        ),
        # one refusal per statement, however many names it imports
        (
            "from os import path, sep\n",
            "pass",
            [("import", 1, f"import from 'os' is not allowed; allowed modules: {ALLOWED}")],
        ),
        (
            "from math import *\n",
            "pass",
            [("import", 1, "'from math import *' is not allowed; import the names you use")],
        ),
        (
            "from numpy import load\n",
            "pass",
            [("attribute", 1, "importing 'load' from 'numpy' is not allowed (file/process access)")],
        ),
        (
            "from numpy import __version__\n",
            "pass",
            [("attribute", 1, "importing '__version__' from 'numpy' is not allowed (file/process access)")],
        ),
        (
            "from numpy import eval\n",
            "pass",
            [("attribute", 1, "importing 'eval' from 'numpy' is not allowed (file/process access)")],
        ),
        (
            "from numpy import _core\n",
            "pass",
            [("private", 1, "importing private name '_core' from 'numpy' is not allowed")],
        ),
        (
            "from dataclasses import builtins\n",
            "pass",
            [("module", 1, f"importing 'builtins' from 'dataclasses' is not allowed: {MODULE_HINT}")],
        ),
        (
            "from statistics import math\n",
            "pass",
            [("module", 1, f"importing 'math' from 'statistics' is not allowed: {MODULE_HINT}")],
        ),
        ("", "x = open", [("builtin", LINE, "use of 'open' is not allowed in a controller")]),
        ("", "x = __file__", [("dunder", LINE, "dunder name '__file__' is not allowed")]),
        ("", "x = session.__class__", [("dunder", LINE, "dunder attribute access '.__class__' is not allowed")]),
        (
            "",
            "x = session.branches[0]._depth",
            [("private", LINE, "private attribute '._depth' of session is not allowed; use the public session API")],
        ),
        (
            "",
            "x = (1)._x",
            [("private", LINE, "private attribute '._x' of an expression is not allowed; use the public session API")],
        ),
        (
            "import numpy as np\n",
            "x = np.load",
            [("attribute", LINE + 1, "attribute '.load' is not allowed (file, process or foreign-code access)")],
        ),
        (
            "",
            "x = session.exec",
            [("attribute", LINE, "attribute '.exec' is not allowed (it reaches the interpreter, files or processes)")],
        ),
        (
            "import statistics\n",
            "x = statistics.math",
            [("module", LINE + 1, f"'statistics.math' is not allowed: {MODULE_HINT}")],
        ),
        (
            "import numpy as np\n",
            "np.pi = 3",
            [
                (
                    "patch",
                    LINE + 1,
                    "assigning to '.pi' of np is not allowed: candidates may not modify imported modules, "
                    "classes or the session",
                )
            ],
        ),
        (
            "",
            "type(session).cost = 0",
            [
                (
                    "patch",
                    LINE,
                    "assigning to '.cost' of an expression is not allowed: candidates may not modify imported "
                    "modules, classes or the session",
                )
            ],
        ),
        ("", "x = '{0.__class__}'", [("dunder", LINE, "format fields that reach dunder attributes are not allowed")]),
        ("", "x = session.__a__", [("dunder", LINE, "dunder attribute access '.__a__' is not allowed")]),
        (
            "import numpy as np\n",
            "x = np._core",  # private, and a module: reported once, as private
            [("private", LINE + 1, "private attribute '._core' of np is not allowed; use the public session API")],
        ),
        (
            "import scipy.special\n",
            "scipy.special.x = 1",
            [
                (
                    "patch",
                    LINE + 1,
                    "assigning to '.x' of scipy is not allowed: candidates may not modify imported modules, "
                    "classes or the session",
                )
            ],
        ),
        (
            "import scipy.stats\n",
            "x = scipy.stats.mstats",
            [("module", LINE + 1, f"'scipy.stats.mstats' is not allowed: {MODULE_HINT}")],
        ),
        (
            "from scipy import stats as st\n",
            "x = st.qmc",
            [("module", LINE + 1, f"'scipy.stats.qmc' is not allowed: {MODULE_HINT}")],
        ),
        # a submodule nobody imported yet is found all the same
        (
            "import numpy as np\n",
            "x = np.matlib",
            [("module", LINE + 1, f"'numpy.matlib' is not allowed: {MODULE_HINT}")],
        ),
        (
            "",
            "x = '{0._finals:{1}}'",  # a field before a nested spec counts too
            [
                (
                    "format",
                    LINE,
                    "format fields with attribute or index access ('{0.x}', '{0[k]}') are not allowed; "
                    "use an f-string on the public API",
                )
            ],
        ),
        (
            "",
            "x = '{0.x}'",
            [
                (
                    "format",
                    LINE,
                    "format fields with attribute or index access ('{0.x}', '{0[k]}') are not allowed; "
                    "use an f-string on the public API",
                )
            ],
        ),
    ],
)
def test_each_refusal_names_its_rule_line_and_the_way_out(
    header: str, line: str, expected: list[tuple[str, int, str]]
) -> None:
    result = validate_source(body(line, header))
    assert [(v.rule, v.line, v.message) for v in result.violations] == expected
    assert result.class_name == "Controller"
    assert result.message == "\n".join(f"line {n}: {m}" for _, n, m in expected)


@pytest.mark.parametrize(
    ("header", "line"),
    [
        ("import numpy as np\n", "x = np.linalg.norm"),
        ("from scipy import stats\n", "x = stats.distributions.norm"),
        ("from collections import abc\n", "x = abc.Mapping"),
        ("import scipy.stats as ss\n", "x = ss.beta"),
        ("from __future__ import annotations\n", "pass"),
        ("", "x = __name__"),
        ("", "self._seen = 1"),
        ("", "session.note = 1"),  # the session is not imported: its own attributes are its business
        ("", "x = f'{session.cost:>{8}}'"),
        ("", "self.stats.count = 1"),  # deep into the controller's own state
        ("", "x = self.total__"),  # ends in __ but is no dunder
        ("", "x = ____"),  # neither is a name of underscores only
        ("import statistics\n", "x = statistics.no_such_name"),  # not a module: fails when run, if at all
        ("", "x = '{0:{1:{2:{3}}}}'"),  # nested deeper than str.format allows: harmless, and no crash
    ],
)
def test_what_is_allowed_stays_allowed(header: str, line: str) -> None:
    result = validate_source(body(line, header))
    assert result.ok, result.message
    assert result.violations == () and result.message == ""


def test_a_violation_without_a_line_is_shown_without_one() -> None:
    assert str(Violation("class", "no class")) == "no class"
    assert str(Violation("import", "no os", 3)) == "line 3: no os"


def test_parse_errors_name_the_candidate_file() -> None:
    with pytest.raises(SyntaxError) as info:
        parse_source("x = (")
    assert info.value.filename == "controller.py"


def test_size_and_syntax_errors_stop_before_the_policy() -> None:
    big = validate_source("#" * (MAX_SOURCE_CHARS + 1))
    assert big == ValidationResult(
        "",
        (Violation("size", f"source is {MAX_SOURCE_CHARS + 1} characters; the limit is {MAX_SOURCE_CHARS}"),),
    )
    assert validate_source(body("pass") + "#" * (MAX_SOURCE_CHARS - len(body("pass")))).ok
    bad = validate_source("import os\nclass C:\n    def solve(self, s)\n        return 1\n")
    assert [(v.rule, v.line) for v in bad.violations] == [("syntax", 3)]
    assert bad.violations[0].message.startswith("syntax error: ") and bad.class_name == ""
    # a syntax error without a line (null bytes) is shown without one
    nul = validate_source("x = 1\n\0")
    assert nul.violations == (Violation("syntax", "syntax error: source code string cannot contain null bytes", 0),)
    assert nul.message == "syntax error: source code string cannot contain null bytes"


CLASS_CASES = {
    "no class": ("x = 1\n", [("class", 0, "defines no top-level class with a solve(session) method")]),
    "no schedule": (
        "class C:\n    def __init__(self, beta=1.0):\n        pass\n\n    def solve(self, s):\n        return None\n",
        [("schedule", 1, "class C has no schedule(beta); every setting must come from it")],
    ),
    "schedule only in an imported base": (
        "from autotts.controllers.base import BetaController\n\n\nclass C(BetaController):\n"
        "    def solve(self, s):\n        return None\n",
        [("schedule", 4, "class C must define schedule(beta) itself (the base class version is abstract)")],
    ),
    "schedule is an instance method": (
        "class C:\n    def __init__(self, beta=1.0):\n        pass\n\n    def schedule(self, beta):\n"
        "        return {}\n\n    def solve(self, s):\n        return None\n",
        [("schedule", 5, "schedule(beta) must be a @classmethod or @staticmethod")],
    ),
    "no __init__ at all": (
        "class C:\n    @staticmethod\n    def schedule(beta):\n        return {}\n\n    def solve(self, s):\n"
        "        return None\n",
        [("beta", 1, "C has no __init__ taking beta; define __init__(self, beta=1.0) or subclass BetaController")],
    ),
    "__init__ without beta": (
        "class C:\n    def __init__(self, n=3):\n        pass\n\n    @classmethod\n    def schedule(cls, beta):\n"
        "        return {}\n\n    def solve(self, s):\n        return None\n",
        [("beta", 2, "C.__init__ must accept beta= (it is built as C(beta=...))")],
    ),
}


@pytest.mark.parametrize("case", list(CLASS_CASES))
def test_controller_class_rules(case: str) -> None:
    source, expected = CLASS_CASES[case]
    result = validate_source(source)
    assert [(v.rule, v.line, v.message) for v in result.violations] == expected
    assert result.class_name == ("" if case == "no class" else "C")


def test_a_local_base_of_an_imported_base_gives_init_and_demands_schedule() -> None:
    # C -> Local -> BetaController: __init__(beta) comes from the imported base, and schedule,
    # abstract there, must be written in the file.
    head = "from autotts.controllers.base import BetaController\n\n\nclass Local(BetaController):\n    pass\n\n\n"
    without = head + "class C(Local):\n    def solve(self, s):\n        return None\n"
    assert [(v.rule, v.message) for v in validate_source(without).violations] == [
        ("schedule", "class C must define schedule(beta) itself (the base class version is abstract)")
    ]
    with_schedule = without + "\n    @classmethod\n    def schedule(cls, beta):\n        return {}\n"
    assert validate_source(with_schedule).ok
    assert validate_source(without, require_beta=False).takes_beta


def test_a_dotted_classmethod_decorator_counts() -> None:
    source = body("pass").replace("    @classmethod\n", "    @builtins.classmethod\n")
    rules = [v.rule for v in validate_source("import builtins\n" + source).violations]
    assert rules == ["import"]  # the import is refused, the schedule rule is satisfied


def test_methods_are_found_through_local_and_dotted_bases() -> None:
    # schedule and __init__ inherited from a base in the same file; a base named through
    # a module attribute; **kwargs accepts beta; the last class with solve is the controller.
    source = """
import autotts.controllers.base as base


class Settings:
    def __init__(self, **kwargs):
        pass

    @classmethod
    def schedule(cls, beta):
        return {}


class Helper:
    def solve(self, session):
        return None


class Mine(Settings):
    def solve(self, session):
        return None


class Dotted(base.BetaController):
    def solve(self, session):
        return None

    @classmethod
    def schedule(cls, beta):
        return {}
"""
    result = validate_source(source)
    assert result.ok, result.message
    assert result.class_name == "Dotted" and result.takes_beta
    mine = validate_source(source.split("class Dotted")[0])
    assert mine.ok and mine.class_name == "Mine"


def test_bases_that_form_a_cycle_end_the_search() -> None:
    source = "class A(B):\n    pass\n\n\nclass B(A):\n    def solve(self, s):\n        return None\n"
    result = validate_source(source, require_beta=False)
    assert result.ok and result.class_name == "B" and not result.takes_beta


@pytest.mark.parametrize(
    ("source", "takes_beta"),
    [
        ("class C:\n    def solve(self, s):\n        return None\n", False),
        (
            "class C:\n    def __init__(self, beta=0.5):\n        pass\n\n"
            "    def solve(self, s):\n        return None\n",
            True,
        ),
        (
            "class C:\n    def __init__(self, *, beta):\n        pass\n\n"
            "    def solve(self, s):\n        return None\n",
            True,
        ),
        (
            "class C:\n    def __init__(self, n=1):\n        pass\n\n    def solve(self, s):\n        return None\n",
            False,
        ),
        (
            "from autotts.controllers.base import BetaController\n\n\nclass C(BetaController):\n"
            "    def solve(self, s):\n        return None\n",
            True,  # an imported base's constructor: assumed to take beta (BetaController does)
        ),
        ("class C(object):\n    def solve(self, s):\n        return None\n", False),
    ],
)
def test_without_the_beta_requirement_the_constructor_decides_how_it_is_built(source: str, takes_beta: bool) -> None:
    result = validate_source(source, require_beta=False)
    assert result.ok, result.message
    assert result.takes_beta is takes_beta
