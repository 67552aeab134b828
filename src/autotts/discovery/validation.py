"""Static checks of a candidate controller program, before it is ever run.

The checks are cheap and give the explorer precise feedback (line numbers, what is
allowed). They are a teaching filter, not the security boundary: that is the judge
(:mod:`autotts.discovery.judge` — the candidate's process never holds replay data, and
costs are recorded by the judge) with the candidate process's seccomp filter and limits,
plus the leak test for state carried between episodes.

Policy:

* the source parses and defines a class with ``solve(session)``; with β required, that
  class has a ``schedule(beta)`` classmethod/staticmethod and a constructor taking ``beta``;
* imports only from :data:`ALLOWED_IMPORTS`;
* no ``open``/``exec``/``eval``/``compile``/``__import__``/``getattr``-family builtins,
  no dunder names or attributes (``super().__init__`` excepted), no private attributes
  of objects other than ``self``/``cls`` (nor private names imported from a module),
  no file/network attributes of numpy/scipy;
* no assignment to attributes of imported modules or classes (no monkey-patching of
  the session or the voting helpers);
* no attribute whose name is an escape hatch (:data:`ESCAPE_ATTRIBUTES`: ``exec``, ``builtins``,
  ``inspect``, ``random``, ...), and on an allowed module no attribute that is itself a module
  outside the allow-list (``dataclasses.builtins``, ``statistics.random``, ``np.core``);
* no format field with attribute or index access in a string literal (``"{0._finals}"``).
  A template assembled at run time is still not visible here; the leak test and the child's
  runtime layer (restricted builtins, audit hook, seccomp) cover what this cannot.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import string
import threading
import types
from dataclasses import dataclass

#: Modules a candidate may import (``from X import y`` also accepts ``X.y`` here).
ALLOWED_IMPORTS: frozenset[str] = frozenset(
    {
        "__future__",
        "math",
        "statistics",
        "collections",
        "collections.abc",
        "itertools",
        "functools",
        "heapq",
        "dataclasses",
        "typing",
        "numpy",
        "scipy.special",
        "scipy.stats",
        # The project's own pure helpers, so that seed-controller style code runs unchanged.
        "autotts.controllers.base",
        "autotts.controllers.voting",
        "autotts.env.session",
        "autotts.store.schema",
    }
)


def named_imports(code: str) -> list[str]:
    """The allow-listed modules ``code`` imports (``from X import y`` names ``X`` and ``X.y``).

    Empty when the code does not parse (its compilation reports that).
    """
    try:
        tree = parse_source(code)
    except (SyntaxError, ValueError):
        return []
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.append(node.module)
            names += [f"{node.module}.{a.name}" for a in node.names]
    return [name for name in names if name in ALLOWED_IMPORTS]


FORBIDDEN_NAMES: frozenset[str] = frozenset(
    {
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
    }
)

#: Attribute names that reach files, processes or foreign code through allowed modules.
FORBIDDEN_ATTRIBUTES: frozenset[str] = frozenset(
    {
        "load",
        "loads",
        "save",
        "savez",
        "savez_compressed",
        "savetxt",
        "loadtxt",
        "genfromtxt",
        "fromfile",
        "tofile",
        "fromregex",
        "memmap",
        "open_memmap",
        "DataSource",
        "ctypeslib",
        "ctypes",
        "f2py",
        "distutils",
        "testing",
        "lib",
        "os",
        "sys",
        "system",
        "popen",
        "dump",
        "dumps",
    }
)

#: Attribute names refused on *any* object: builtins that run code or reach files, and
#: module names through which an allowed module exposes the interpreter (``dataclasses.builtins``,
#: ``statistics.random``, ``dataclasses.inspect``, ...). ``open`` is not here: it is a session action.
ESCAPE_ATTRIBUTES: frozenset[str] = (FORBIDDEN_NAMES - {"open"}) | frozenset(
    {
        "builtins",
        "inspect",
        "random",
        "types",
        "importlib",
        "imp",
        "gc",
        "subprocess",
        "marshal",
        "pickle",
        "shelve",
        "io",
        "pathlib",
        "shutil",
        "socket",
        "linecache",
        "tokenize",
        "runpy",
        "threading",
        "multiprocessing",
        "resource",
        "modules",
        "format_map",
    }
)

#: Submodules reachable as attributes of an allowed module besides :data:`ALLOWED_IMPORTS`.
SAFE_SUBMODULES: frozenset[str] = frozenset({"numpy.linalg", "numpy.fft", "numpy.emath", "scipy.stats.distributions"})

_ALLOWED_DUNDER_ATTRS = frozenset({"__init__"})
_ALLOWED_DUNDER_NAMES = frozenset({"__name__", "__slots__", "__all__"})
_SELF_NAMES = frozenset({"self", "cls"})
#: Source larger than this is refused (a controller is a page or two of code).
MAX_SOURCE_CHARS = 100_000

# CPython 3.11/3.12 can fail with "AST constructor recursion depth mismatch" when two
# threads parse at once (the loop validates in worker threads while proposers parse in
# the main one), so every parse in this package goes through one lock.
_PARSE_LOCK = threading.Lock()


def parse_source(source: str, filename: str = "controller.py") -> ast.Module:
    """``ast.parse`` made safe to call from several threads."""
    with _PARSE_LOCK:
        return ast.parse(source, filename=filename)


def literal(source: str) -> object:
    """``ast.literal_eval`` of a source string, thread-safe like :func:`parse_source`."""
    with _PARSE_LOCK:
        return ast.literal_eval(source)


@dataclass(frozen=True)
class Violation:
    """One broken rule, with the line it is on."""

    rule: str
    message: str
    line: int = 0

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


@dataclass(frozen=True)
class ValidationResult:
    """Outcome of the static checks: the controller class found, or the violations."""

    class_name: str
    violations: tuple[Violation, ...]
    takes_beta: bool = True

    @property
    def ok(self) -> bool:
        """No violation."""
        return not self.violations

    @property
    def message(self) -> str:
        """All violations, one per line."""
        return "\n".join(str(v) for v in self.violations)


def _root(node: ast.expr) -> ast.expr:
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Call)):
        node = node.value if not isinstance(node, ast.Call) else node.func
    return node


def _store_root(node: ast.expr) -> str | None:
    """The plain name an attribute store hangs off (``a`` in ``a.b[0].c = …``); None through a call."""
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _is_dunder(name: str) -> bool:
    return len(name) > 4 and name.startswith("__") and name.endswith("__")


class _PolicyVisitor(ast.NodeVisitor):
    def __init__(self) -> None:
        self.violations: list[Violation] = []
        self.imported: set[str] = set()
        self.modules: dict[str, str] = {}
        """Local name -> dotted name of the allowed module it is bound to."""

    def add(self, rule: str, message: str, node: ast.AST) -> None:
        self.violations.append(Violation(rule, message, getattr(node, "lineno", 0)))

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name not in ALLOWED_IMPORTS:
                self.add(
                    "import",
                    f"import of {alias.name!r} is not allowed; allowed modules: {', '.join(sorted(ALLOWED_IMPORTS))}",
                    node,
                )
            self.imported.add((alias.asname or alias.name).split(".")[0])
            if alias.name in ALLOWED_IMPORTS:
                if alias.asname:
                    self.modules[alias.asname] = alias.name
                else:
                    top = alias.name.split(".")[0]
                    self.modules[top] = top

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        if node.level:
            self.add("import", "relative imports are not allowed (a candidate is a single file)", node)
            return
        for alias in node.names:
            full = f"{module}.{alias.name}"
            if module not in ALLOWED_IMPORTS and full not in ALLOWED_IMPORTS:
                self.add(
                    "import",
                    f"import from {module!r} is not allowed; allowed modules: {', '.join(sorted(ALLOWED_IMPORTS))}",
                    node,
                )
                break
            if alias.name == "*":
                self.add("import", f"'from {module} import *' is not allowed; import the names you use", node)
            elif alias.name in FORBIDDEN_ATTRIBUTES or alias.name in FORBIDDEN_NAMES or _is_dunder(alias.name):
                self.add(
                    "attribute", f"importing {alias.name!r} from {module!r} is not allowed (file/process access)", node
                )
            elif alias.name.startswith("_"):
                # like '.name' on the module: its private members are not the public API
                self.add("private", f"importing private name {alias.name!r} from {module!r} is not allowed", node)
            elif alias.name in ESCAPE_ATTRIBUTES or _module_member_problem(module, alias.name):
                self.add("module", f"importing {alias.name!r} from {module!r} is not allowed: {_MODULE_HINT}", node)
            elif _is_module_path(f"{module}.{alias.name}"):
                self.modules[alias.asname or alias.name] = f"{module}.{alias.name}"
            self.imported.add(alias.asname or alias.name)

    def visit_Name(self, node: ast.Name) -> None:
        if node.id in FORBIDDEN_NAMES:
            self.add("builtin", f"use of {node.id!r} is not allowed in a controller", node)
        elif _is_dunder(node.id) and node.id not in _ALLOWED_DUNDER_NAMES:
            self.add("dunder", f"dunder name {node.id!r} is not allowed", node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        attr = node.attr
        root = _root(node.value)
        root_name = root.id if isinstance(root, ast.Name) else None
        if _is_dunder(attr):
            if attr not in _ALLOWED_DUNDER_ATTRS:
                self.add("dunder", f"dunder attribute access '.{attr}' is not allowed", node)
        elif attr.startswith("_") and root_name not in _SELF_NAMES:
            self.add(
                "private",
                f"private attribute '.{attr}' of {root_name or 'an expression'} is not allowed; "
                "use the public session API",
                node,
            )
        if attr in FORBIDDEN_ATTRIBUTES:
            self.add("attribute", f"attribute '.{attr}' is not allowed (file, process or foreign-code access)", node)
        elif attr in ESCAPE_ATTRIBUTES:
            why = "it reaches the interpreter, files or processes"
            self.add("attribute", f"attribute '.{attr}' is not allowed ({why})", node)
        else:
            path = self.module_path(node.value)
            if path is not None and _module_member_problem(path, attr):
                self.add("module", f"'{path}.{attr}' is not allowed: {_MODULE_HINT}", node)
        target = _store_root(node.value) if isinstance(node.ctx, (ast.Store, ast.Del)) else ""
        if target is None or (target and target in self.imported):
            self.add(
                "patch",
                f"assigning to '.{attr}' of {target or 'an expression'} is not allowed: candidates may not "
                "modify imported modules, classes or the session",
                node,
            )
        self.generic_visit(node)

    def module_path(self, node: ast.expr) -> str | None:
        """The dotted name of the allowed module ``node`` statically denotes, else None."""
        if isinstance(node, ast.Name):
            return self.modules.get(node.id)
        if isinstance(node, ast.Attribute):
            base = self.module_path(node.value)
            if base is not None and _is_module_path(f"{base}.{node.attr}"):
                return f"{base}.{node.attr}"
        return None

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str) and "{" in node.value:
            fields = _format_fields(node.value)
            if any("__" in f for f in fields):
                self.add("dunder", "format fields that reach dunder attributes are not allowed", node)
            elif any("." in f or "[" in f for f in fields):
                self.add(
                    "format",
                    "format fields with attribute or index access ('{0.x}', '{0[k]}') are not allowed; "
                    "use an f-string on the public API",
                    node,
                )


_MODULE_HINT = "it is (or reaches) a module outside the allow-list; allowed modules: " + ", ".join(
    sorted(ALLOWED_IMPORTS | SAFE_SUBMODULES)
)


def _format_fields(text: str, depth: int = 0) -> list[str]:
    """Field names of ``text`` read as a ``str.format`` template (nested specs included)."""
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError:
        return []
    out: list[str] = []
    for _, name, spec, _ in parsed:
        if name is not None:
            out.append(name)
        if spec and "{" in spec and depth < 3:
            out += _format_fields(spec, depth + 1)
    return out


def _is_module_path(path: str) -> bool:
    return path in ALLOWED_IMPORTS or path in SAFE_SUBMODULES


def _module_member_problem(path: str, attr: str) -> bool:
    """True when ``path.attr`` is a module outside the allow-list (or cannot be checked).

    The module is imported in the parent to look: every ``path`` here is on the allow-list.
    """
    if path == "__future__" or _is_module_path(f"{path}.{attr}"):
        return False
    if attr.startswith("_"):
        return False  # reported by the private/dunder rules
    try:
        mod = importlib.import_module(path)
    except Exception:
        return True
    if attr in vars(mod):
        return isinstance(vars(mod)[attr], types.ModuleType)
    try:
        return importlib.util.find_spec(f"{path}.{attr}") is not None
    except Exception:
        return False


def _decorator_names(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    names = set()
    for d in fn.decorator_list:
        if isinstance(d, ast.Name):
            names.add(d.id)
        elif isinstance(d, ast.Attribute):
            names.add(d.attr)
    return names


def _methods(cls: ast.ClassDef) -> dict[str, ast.FunctionDef | ast.AsyncFunctionDef]:
    return {n.name: n for n in cls.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}


def _base_names(cls: ast.ClassDef) -> list[str]:
    out = []
    for b in cls.bases:
        if isinstance(b, ast.Name):
            out.append(b.id)
        elif isinstance(b, ast.Attribute):
            out.append(b.attr)
    return out


def _lookup(
    name: str, cls: ast.ClassDef, classes: dict[str, ast.ClassDef], seen: set[str] | None = None
) -> tuple[ast.FunctionDef | ast.AsyncFunctionDef | None, bool]:
    """Find method ``name`` in ``cls`` or its module-local bases; also say if an external base exists."""
    seen = seen or set()
    if cls.name in seen:
        return None, False
    seen.add(cls.name)
    found = _methods(cls).get(name)
    if found is not None:
        return found, False
    external = False
    for base in _base_names(cls):
        if base in classes:
            f, ext = _lookup(name, classes[base], classes, seen)
            if f is not None:
                return f, False
            external = external or ext
        elif base != "object":
            external = True
    return None, external


def _accepts(fn: ast.FunctionDef | ast.AsyncFunctionDef, param: str) -> bool:
    a = fn.args
    names = {x.arg for x in (*a.posonlyargs, *a.args, *a.kwonlyargs)}
    return param in names or a.kwarg is not None


def validate_source(source: str, *, require_beta: bool = True) -> ValidationResult:
    """Run every static check on ``source``; return the controller class name or the violations."""
    if len(source) > MAX_SOURCE_CHARS:
        too_big = Violation("size", f"source is {len(source)} characters; the limit is {MAX_SOURCE_CHARS}")
        return ValidationResult("", (too_big,))
    try:
        tree = parse_source(source)
    except SyntaxError as exc:
        return ValidationResult("", (Violation("syntax", f"syntax error: {exc.msg}", exc.lineno or 0),))
    visitor = _PolicyVisitor()
    visitor.visit(tree)
    violations = list(visitor.violations)

    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    with_solve = [c for c in classes.values() if _lookup("solve", c, classes)[0] is not None]
    if not with_solve:
        violations.append(Violation("class", "defines no top-level class with a solve(session) method"))
        return ValidationResult("", tuple(violations))
    # The last such class is the controller: helpers and bases come first in a file.
    cls = with_solve[-1]
    takes_beta = True
    schedule, sched_external = _lookup("schedule", cls, classes)
    init, init_external = _lookup("__init__", cls, classes)
    if require_beta:
        if schedule is None and not sched_external:
            violations.append(
                Violation(
                    "schedule", f"class {cls.name} has no schedule(beta); every setting must come from it", cls.lineno
                )
            )
        elif schedule is None:
            violations.append(
                Violation(
                    "schedule",
                    f"class {cls.name} must define schedule(beta) itself (the base class version is abstract)",
                    cls.lineno,
                )
            )
        elif not ({"classmethod", "staticmethod"} & _decorator_names(schedule)):
            violations.append(
                Violation("schedule", "schedule(beta) must be a @classmethod or @staticmethod", schedule.lineno)
            )
        if init is not None and not _accepts(init, "beta"):
            violations.append(
                Violation(
                    "beta", f"{cls.name}.__init__ must accept beta= (it is built as {cls.name}(beta=...))", init.lineno
                )
            )
        elif init is None and not init_external:
            violations.append(
                Violation(
                    "beta",
                    f"{cls.name} has no __init__ taking beta; define __init__(self, beta=1.0) "
                    "or subclass BetaController",
                    cls.lineno,
                )
            )
    else:
        takes_beta = (init is not None and _accepts(init, "beta")) or (init is None and init_external)
    return ValidationResult(cls.name, tuple(violations), takes_beta)
