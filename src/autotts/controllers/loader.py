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
import traceback
from pathlib import Path
from typing import Any

from autotts.errors import AutoTTSError, ControllerError, ControllerSpecError

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


_PACKAGE_DIR = str(Path(__file__).resolve().parent.parent)


def crash_site(exc: BaseException, source: str | None = None) -> str | None:
    """Where a controller crashed, as ``FILE line N in FUNCTION``.

    The innermost frame in ``source`` (the controller's file) when it is on the stack,
    else the innermost frame outside autotts (the user's code, even when it crashed
    inside a library it called through), else the innermost frame. ``None`` without a
    traceback.
    """
    frames = list(traceback.walk_tb(exc.__traceback__))
    if not frames:
        return None
    wanted = str(Path(source).resolve()) if source else None

    def in_source(filename: str) -> bool:
        return wanted is not None and str(Path(filename).resolve()) == wanted

    chosen = next((f for f in reversed(frames) if in_source(f[0].f_code.co_filename)), None)
    if chosen is None:
        chosen = next((f for f in frames[::-1] if not f[0].f_code.co_filename.startswith(_PACKAGE_DIR)), frames[-1])
    frame, line = chosen
    return f"{frame.f_code.co_filename} line {line} in {frame.f_code.co_name}"


def source_of(spec_path: str | None, controller: Any) -> str | None:
    """The file a controller's code lives in: the spec's file, or its class's module file."""
    if spec_path:
        return spec_path
    try:
        return inspect.getsourcefile(type(controller))
    except TypeError:
        return None


def check_answer(answer: Any, *, where: str) -> str | None:
    """A controller's answer, which must be a string or ``None``; anything else raises ControllerError.

    A number or a list compared with the gold string would silently score 0 (or, turned
    into a string, score by accident of formatting); the controller should say what it means.
    """
    if answer is None or isinstance(answer, str):
        return answer
    raise ControllerError(
        f"{where} returned {type(answer).__name__} {answer!r:.60}, not a string; "
        "solve() must return the answer text (e.g. str(x)) or None for no answer"
    )


def crash_error(exc: Exception, *, label: str, source: str | None, where: str, question: int) -> ControllerError:
    """The error for a controller that raised ``exc`` while solving: names the file and line.

    The full traceback travels as text in ``traceback_text`` (it survives the trip
    from a worker process), for ``autotts --debug``.
    """
    site = crash_site(exc, source)
    what = "failed" if isinstance(exc, AutoTTSError) else f"raised {type(exc).__name__}"
    at = f" at {site}" if site else ""
    return ControllerError(
        f"controller {label} {what} {where}{at}: {exc}",
        controller=label,
        question=question,
        traceback_text="".join(traceback.format_exception(exc)),
    )
