"""Static candidate checks: what parses, what is allowed, what is refused and why."""

from __future__ import annotations

import inspect
import sys

import pytest

from autotts.controllers.base import registry
from autotts.discovery.proposers.evolve import render, start_genome
from autotts.discovery.validation import FORBIDDEN_NAMES, validate_source
from tests.discovery_support import FORBIDDEN_IMPORT, GOOD, NON_MONOTONE, PEEKER, SYNTAX_ERROR, body


def test_good_programs_pass() -> None:
    for code in (GOOD, NON_MONOTONE, PEEKER, render(start_genome())):
        result = validate_source(code)
        assert result.ok, result.message
    assert validate_source(GOOD).class_name == "Controller"


def test_every_registered_beta_controller_module_passes() -> None:
    """The seeds shown to the explorer must themselves be valid candidates."""
    for name, cls in registry().items():
        source = inspect.getsource(sys.modules[cls.__module__])
        result = validate_source(source, require_beta=hasattr(cls, "schedule"))
        assert result.ok, f"{name}: {result.message}"


def test_syntax_error_names_the_line() -> None:
    result = validate_source(SYNTAX_ERROR)
    assert not result.ok
    assert result.violations[0].rule == "syntax"
    assert result.violations[0].line == 3


@pytest.mark.parametrize(
    ("header", "line", "rule"),
    [
        ("import os\n", "os.getcwd()", "import"),
        ("import subprocess\n", "pass", "import"),
        ("from socket import socket\n", "pass", "import"),
        ("from . import x\n", "pass", "import"),
        ("import scipy\n", "pass", "import"),
        ("", "open('/etc/passwd')", "builtin"),
        ("", "eval('1')", "builtin"),
        ("", "exec('x = 1')", "builtin"),
        ("", "__import__('os')", "builtin"),
        ("", "getattr(session, 'x')", "builtin"),
        ("", "x = session.__class__", "dunder"),
        ("", "x = session._q", "private"),
        ("import numpy as np\n", "np.load('x.npy')", "attribute"),
        ("from numpy import fromfile\n", "pass", "attribute"),
        ("from autotts.env.session import ReplaySession\n", "ReplaySession.cost = 0", "patch"),
        ("", "type(session).cost = 0", "patch"),
        ("", "x = '{0.__class__}'.format(session)", "dunder"),
        # Reviewer's escape: attributes of allowed modules that are modules (or exec) themselves.
        ("import dataclasses\n", "dataclasses.builtins.exec('x = 1')", "attribute"),
        ("import statistics\n", "x = statistics.random", "attribute"),
        ("import dataclasses\n", "x = dataclasses.inspect", "attribute"),
        ("import dataclasses as d\n", "x = d.sys", "attribute"),
        ("from dataclasses import builtins\n", "pass", "module"),
        ("from statistics import math\n", "pass", "module"),
        ("import statistics\n", "x = statistics.math.pi", "module"),
        ("import numpy as np\n", "x = np.core", "module"),
        ("import numpy as np\n", "x = np.random.rand()", "attribute"),
        ("", "x = session.eval", "attribute"),
        # Reviewer's leak-test bypass: private state through format fields.
        ("", "x = '{0._finals}'.format(session)", "format"),
        ("", "x = '{s._vocab}'.format(s=session)", "format"),
        ("", "x = '{0[0]}'.format(session.branches)", "format"),
        ("", "x = '{0:{1.x}}'.format(1, session)", "format"),
    ],
)
def test_policy_violations(header: str, line: str, rule: str) -> None:
    result = validate_source(body(line, header))
    assert not result.ok
    assert rule in {v.rule for v in result.violations}, result.message
    assert all(v.line > 0 for v in result.violations if v.rule == rule)


def test_reviewer_repro_files_are_refused() -> None:
    """The two candidates from the review (sandbox escape, format-field cheat), verbatim in spirit."""
    escape = (
        "import dataclasses\n\n\nclass Escape:\n    def __init__(self, beta=1.0):\n        self.beta = beta\n\n"
        "    @classmethod\n    def schedule(cls, beta):\n        return {'n': 1}\n\n"
        "    def solve(self, session):\n        dataclasses.builtins.exec('import _posixsubprocess')\n"
        "        return None\n"
    )
    cheat = body("fp = '{0._finals}'.format(session)\n        vocab = '{0._vocab}'.format(session)")
    assert not validate_source(escape).ok
    assert {v.rule for v in validate_source(cheat).violations} == {"format"}


def test_module_attributes_that_are_safe_stay_allowed() -> None:
    lines = [
        ("import numpy as np\n", "x = np.linalg.norm(np.array([1.0]))"),
        ("import scipy.stats\n", "x = scipy.stats.beta.ppf(0.5, 1, 1)"),
        ("import collections\n", "x = collections.abc.Mapping"),
        ("import statistics\n", "x = statistics.median([1, 2])"),
        ("", "x = f'{session.cost:.3f} {1:>{2}}' + '{:.2f}'.format(1.0)"),
        ("", "r = session.open()"),
    ]
    for header, line in lines:
        result = validate_source(body(line, header))
        assert result.ok, (line, result.message)


def test_forbidden_import_message_lists_the_allow_list() -> None:
    result = validate_source(FORBIDDEN_IMPORT)
    assert "import of 'os' is not allowed" in result.message
    assert "numpy" in result.message and "scipy.stats" in result.message


@pytest.mark.parametrize(
    "header",
    [
        "import math\nimport numpy as np\nfrom scipy import stats\nfrom scipy.special import betainc\n",
        "from collections import Counter, defaultdict\nimport heapq, itertools, functools, statistics\n",
        "from dataclasses import dataclass\nfrom typing import Any\nfrom __future__ import annotations\n",
        "from autotts.controllers.voting import majority, top_two, beta_confidence\n",
    ],
)
def test_allowed_imports(header: str) -> None:
    assert validate_source(body("pass", header)).ok


def test_own_private_state_and_super_init_are_fine() -> None:
    code = """
from autotts.controllers.base import BetaController


class Controller(BetaController):
    def __init__(self, beta=1.0):
        super().__init__(beta)
        self._seen = []

    @classmethod
    def schedule(cls, beta):
        return {"n": 1 + round(4 * beta)}

    def solve(self, session):
        self._seen.append(1)
        return None
"""
    assert validate_source(code).ok


def test_schedule_rules() -> None:
    no_schedule = """
class Controller:
    def __init__(self, beta=1.0):
        self.beta = beta

    def solve(self, session):
        return None
"""
    r = validate_source(no_schedule)
    assert not r.ok and r.violations[0].rule == "schedule"
    # Without the β requirement the same program is fine and is built without arguments.
    r2 = validate_source(no_schedule, require_beta=False)
    assert r2.ok and r2.takes_beta
    plain = "class C:\n    def solve(self, session):\n        return None\n"
    r3 = validate_source(plain, require_beta=False)
    assert r3.ok and not r3.takes_beta
    instance_method = body("pass").replace("    @classmethod\n", "")
    r4 = validate_source(instance_method)
    assert not r4.ok and "@classmethod or @staticmethod" in r4.message
    inherited_abstract = """
from autotts.controllers.base import BetaController


class Controller(BetaController):
    def solve(self, session):
        return None
"""
    r5 = validate_source(inherited_abstract)
    assert not r5.ok and "must define schedule(beta) itself" in r5.message
    no_beta = body("pass").replace("def __init__(self, beta=1.0)", "def __init__(self, n=3)")
    r6 = validate_source(no_beta)
    assert not r6.ok and "must accept beta=" in r6.message


def test_no_class_and_oversized_source() -> None:
    assert "no top-level class" in validate_source("x = 1\n").message
    assert validate_source("#" * 200_000).violations[0].rule == "size"


REFUSED = (
    "open",
    "exec",
    "eval",
    "compile",
    "__import__",
    "globals",
    "locals",
    "vars",
    "getattr",
    "setattr",
    "delattr",
    "input",
    "breakpoint",
    "help",
    "exit",
    "quit",
    "memoryview",
    "__builtins__",
)


def test_the_refused_list_is_complete() -> None:
    """Removing a name from the policy (``globals``: ``globals()["__buil" + "tins__"]``) must not go unnoticed."""
    assert set(REFUSED) <= FORBIDDEN_NAMES


@pytest.mark.parametrize("name", REFUSED)
def test_every_refused_name_is_refused(name: str) -> None:
    """Each refused name, used plainly, is a ``builtin`` violation on its line."""
    result = validate_source(body(f"x = {name}"))
    assert not result.ok
    assert [(v.rule, v.line) for v in result.violations if v.rule == "builtin"] == [("builtin", 11)], result.message
