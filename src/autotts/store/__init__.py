"""Replay stores: schema, readers/writers (native Parquet, AutoTTS JSON), validation."""

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

__all__ = [
    "ERR",
    "SCHEMA_VERSION",
    "Branch",
    "Question",
    "ReplayQuestion",
    "ReplayStore",
    "StoreMeta",
    "find_stores",
    "load_store",
    "load_stores",
    "save_store",
]
