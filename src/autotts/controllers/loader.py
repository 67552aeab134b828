"""Load controllers from Python files, including files written for the original AutoTTS code.

A published-format controller file defines its own base class, imports only
numpy/scipy/the standard library, is constructed as ``ClassName(config={...})`` or with
keyword arguments, and talks to the question through ``probe_new()``,
``probe_more(i)`` and ``get_new_branch_final_answer()`` -- which every session provides.
Its entry point is ``solve(question)``; files that name it ``run``, ``answer``,
``predict`` or ``__call__`` are adapted.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Any

from autotts.errors import ControllerSpecError

_ENTRY_POINTS = ("solve", "run", "answer", "predict", "__call__")
_CACHE: dict[tuple[str, float], Any] = {}


def load_module(path: str | Path) -> Any:
    """Import a Python file as a private module (cached by path and modification time)."""
    p = Path(path).resolve()
    if not p.is_file():
        raise ControllerSpecError(f"controller file {str(path)!r} does not exist")
    key = (str(p), p.stat().st_mtime)
    if key in _CACHE:
        return _CACHE[key]
    mod_name = "autotts_user_" + hashlib.sha1(str(p).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(mod_name, p)
    if spec is None or spec.loader is None:
        raise ControllerSpecError(f"controller file {str(path)!r} cannot be imported as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        sys.modules.pop(mod_name, None)
        raise ControllerSpecError(f"controller file {str(path)!r} line {exc.lineno}: syntax error: {exc.msg}") from None
    except Exception as exc:  # the user's module body failed; report it, no traceback
        sys.modules.pop(mod_name, None)
        raise ControllerSpecError(
            f"controller file {str(path)!r} failed to import: {type(exc).__name__}: {exc}"
        ) from None
    _CACHE[key] = module
    return module


def load_controller_class(path: str | Path, class_name: str) -> Any:
    """The class ``class_name`` defined in the file ``path``."""
    module = load_module(path)
    cls = getattr(module, class_name, None)
    if cls is None or not inspect.isclass(cls):
        classes = sorted(n for n, v in vars(module).items() if inspect.isclass(v) and v.__module__ == module.__name__)
        raise ControllerSpecError(
            f"controller file {str(path)!r} defines no class {class_name!r}; "
            f"classes found: {', '.join(classes) or 'none'}"
        )
    return cls


class _EntryPointAdapter:
    """Gives a file controller whose entry point is not called ``solve`` a ``solve``."""

    def __init__(self, inner: Any, method: str) -> None:
        self.inner = inner
        self._method = getattr(inner, method)

    def solve(self, session: Any) -> Any:
        return self._method(session)


def instantiate(cls: Any, params: dict[str, Any], *, spec: str) -> Any:
    """Construct a file controller as ``cls(config=params)`` or ``cls(**params)``.

    ``config=`` is used when the constructor has a ``config`` parameter and ``params``
    do not name it themselves; otherwise keyword arguments.
    """
    try:
        sig = inspect.signature(cls)
        names = set(sig.parameters)
    except (TypeError, ValueError):
        names = set()
    try:
        if "config" in names and "config" not in params:
            obj = cls(config=dict(params))
        else:
            obj = cls(**params)
    except Exception as exc:
        raise ControllerSpecError(f"controller {spec}: construction failed: {type(exc).__name__}: {exc}") from None
    for method in _ENTRY_POINTS:
        if callable(getattr(obj, method, None)):
            return obj if method == "solve" else _EntryPointAdapter(obj, method)
    raise ControllerSpecError(
        f"controller {spec}: the class has no solve(question) method (nor {', '.join(_ENTRY_POINTS[1:])})"
    )
