"""Whether the judged session's hot path runs in C, and the extension module when it does.

:mod:`autotts.env._judgedc` is compiled at install time when a C compiler is available
(``hatch_build.py``). It only speeds up the candidate process of a judged discovery run
(:mod:`autotts.env.judged`, :mod:`autotts.discovery._child`, the step replies of
:mod:`autotts.env.wire`); every result is the same without it. ``AUTOTTS_PURE_PYTHON=1``
turns it off (the tests run both paths), and a build from an older source (its ``ABI``
differs) is ignored rather than trusted.
"""

from __future__ import annotations

import os
from types import ModuleType

#: The interface version this Python code expects of the extension (``JUDGEDC_ABI`` in the C file).
ABI = 2


def _load() -> ModuleType | None:
    if os.environ.get("AUTOTTS_PURE_PYTHON"):
        return None
    try:
        from autotts.env import _judgedc  # type: ignore[attr-defined]
    except ImportError:
        return None
    return _judgedc if getattr(_judgedc, "ABI", None) == ABI else None


#: The C extension module, or None (not built, stale, or turned off).
EXTENSION: ModuleType | None = _load()
#: Whether the C path is in use.
ENABLED = EXTENSION is not None


def describe() -> str:
    """One line for benchmarks and diagnostics: which path the judged session takes."""
    if ENABLED:
        return "C extension autotts.env._judgedc"
    if os.environ.get("AUTOTTS_PURE_PYTHON"):
        return "pure Python (AUTOTTS_PURE_PYTHON is set)"
    return "pure Python (the C extension is not built: reinstall with a C compiler available)"
