"""autotts: discover test-time-scaling controllers for reasoning LLMs by replay search.

The top-level names are imported lazily so that ``import autotts`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "evaluate": ("autotts.evaluation", "evaluate"),
    "CellResult": ("autotts.evaluation", "CellResult"),
    "load_store": ("autotts.store", "load_store"),
    "save_store": ("autotts.store", "save_store"),
    "ReplayStore": ("autotts.store", "ReplayStore"),
    "ReplaySession": ("autotts.env", "ReplaySession"),
    "ControllerSpec": ("autotts.controllers", "ControllerSpec"),
    "AutoTTSError": ("autotts.errors", "AutoTTSError"),
}

__all__ = ["__version__", *_LAZY]

if TYPE_CHECKING:
    from autotts.controllers import ControllerSpec as ControllerSpec
    from autotts.env import ReplaySession as ReplaySession
    from autotts.errors import AutoTTSError as AutoTTSError
    from autotts.evaluation import CellResult as CellResult
    from autotts.evaluation import evaluate as evaluate
    from autotts.store import ReplayStore as ReplayStore
    from autotts.store import load_store as load_store
    from autotts.store import save_store as save_store


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'autotts' has no attribute {name!r}")
