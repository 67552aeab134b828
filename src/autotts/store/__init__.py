"""Replay stores: schema, readers/writers (native Parquet, AutoTTS JSON), validation, statistics.

``read_parquet``/``write_parquet`` (pyarrow) and ``StoreStats``/``store_stats`` (scipy,
through the voting helpers) are imported on first use so that ``import autotts.store``
stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from autotts.store.autotts_json import read_autotts_json, write_autotts_json
from autotts.store.io import find_stores, load_store, load_stores, save_store
from autotts.store.schema import (
    ERR,
    SCHEMA_VERSION,
    Branch,
    Question,
    ReplayQuestion,
    ReplayStore,
    StoreMeta,
)
from autotts.store.validate import Finding, Severity, validate_store

if TYPE_CHECKING:
    from autotts.store.parquet import read_parquet, write_parquet
    from autotts.store.stats import StoreStats, store_stats

_LAZY = {
    "read_parquet": "autotts.store.parquet",
    "write_parquet": "autotts.store.parquet",
    "StoreStats": "autotts.store.stats",
    "store_stats": "autotts.store.stats",
}

__all__ = [
    "ERR",
    "SCHEMA_VERSION",
    "Branch",
    "Finding",
    "Question",
    "ReplayQuestion",
    "ReplayStore",
    "Severity",
    "StoreMeta",
    "StoreStats",
    "find_stores",
    "load_store",
    "load_stores",
    "read_autotts_json",
    "read_parquet",
    "save_store",
    "store_stats",
    "validate_store",
    "write_autotts_json",
    "write_parquet",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'autotts.store' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
