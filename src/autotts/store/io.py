"""Load and save stores in any supported format, and find stores under directories."""

from __future__ import annotations

import os
from pathlib import Path

from autotts.errors import StoreFormatError, StoreNotFoundError
from autotts.store.schema import ReplayStore

#: File suffixes recognised as stores.
NATIVE_SUFFIX = ".parquet"
JSON_SUFFIX = ".json"


def load_store(
    path: str | os.PathLike[str],
    *,
    model: str | None = None,
    benchmark: str | None = None,
) -> ReplayStore:
    """Load one store: native Parquet (``.parquet``) or AutoTTS JSON (``.json``)."""
    p = Path(path)
    if p.is_dir():
        raise StoreNotFoundError("is a directory; use find_stores() or name a file", path=str(p))
    if not p.exists():
        raise StoreNotFoundError("no such file; check the path", path=str(p))
    if p.suffix == NATIVE_SUFFIX:
        from autotts.store.parquet import read_parquet

        return read_parquet(p, model=model, benchmark=benchmark)
    if p.suffix == JSON_SUFFIX:
        from autotts.store.autotts_json import read_autotts_json

        return read_autotts_json(p, model=model, benchmark=benchmark)
    raise StoreFormatError(
        f"unknown store format {p.suffix or '(no suffix)'!r}; expected .parquet (native) or .json (AutoTTS)",
        path=str(p),
    )


def save_store(store: ReplayStore, path: str | os.PathLike[str]) -> Path:
    """Save a store; the suffix picks the format (``.parquet`` native, ``.json`` AutoTTS)."""
    p = Path(path)
    if p.suffix == NATIVE_SUFFIX:
        from autotts.store.parquet import write_parquet

        write_parquet(store, p)
    elif p.suffix == JSON_SUFFIX:
        from autotts.store.autotts_json import write_autotts_json

        write_autotts_json(store, p)
    else:
        raise StoreFormatError(
            f"cannot write format {p.suffix or '(no suffix)'!r}; use .parquet (native) or .json (AutoTTS)",
            path=str(p),
        )
    return p


def find_stores(path: str | os.PathLike[str]) -> list[Path]:
    """A store file itself, or every store file below a directory (recursively, sorted)."""
    p = Path(path)
    if p.is_file():
        return [p]
    if p.is_dir():
        found = sorted(
            f
            for f in p.rglob("*")
            if f.is_file() and f.suffix in (NATIVE_SUFFIX, JSON_SUFFIX) and not f.name.startswith(".")
        )
        if not found:
            raise StoreNotFoundError("the directory holds no .parquet or .json store", path=str(p))
        return found
    raise StoreNotFoundError("no such file or directory", path=str(p))


def load_stores(paths: list[str] | list[Path]) -> list[ReplayStore]:
    """Load every store named by ``paths`` (files or directories), in order."""
    out = []
    for path in paths:
        for f in find_stores(path):
            out.append(load_store(f))
    return out
