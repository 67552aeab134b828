"""Load and save stores in any supported format, find stores under directories, and import them.

Importing is planned before anything is written (:func:`plan_import`): every source
gets its ``DIR/<model>/<benchmark>.<suffix>`` target, and two sources that would land on
one target are refused up front. :func:`import_stores` then converts the plan one store
at a time, each written atomically, so a bad input stops the import leaving the stores
before it complete and no partial file of its own.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from autotts.errors import ConfigError, StoreFormatError, StoreNotFoundError
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


@dataclass(frozen=True, slots=True)
class ImportItem:
    """One store to import: where it comes from, the names it gets and where it goes."""

    source: Path
    model: str
    benchmark: str
    target: Path


def import_sources(paths: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """Files to import: each file as given, each directory's ``*.json`` recursively; no duplicates."""
    files: list[Path] = []
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(f for f in path.rglob("*.json") if f.is_file() and not f.name.startswith("."))
            if not found:
                raise StoreNotFoundError("the directory holds no .json file to import", path=str(path))
        elif path.is_file():
            found = [path]
        else:
            raise StoreNotFoundError("no such file or directory", path=str(path))
        for f in found:
            key = f.resolve()
            if key not in seen:
                seen.add(key)
                files.append(f)
    return files


def _path_component(name: str, option: str) -> str:
    """``name`` as one directory/file name below the output directory (``/`` becomes ``--``)."""
    safe = name.replace("/", "--").replace("\\", "--")
    if safe in ("", ".", "..") or "\0" in safe:
        raise ConfigError(f"{option} {name!r} cannot be used as a file name; pass a plain name with {option}")
    return safe


def plan_import(
    paths: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    *,
    model: str | None = None,
    benchmark: str | None = None,
    suffix: str = NATIVE_SUFFIX,
) -> list[ImportItem]:
    """Where each source goes: ``out_dir/<model>/<benchmark><suffix>``.

    ``model`` defaults to each file's parent directory name, ``benchmark`` to its file
    name. Two sources for one target raise ConfigError before anything is written.
    """
    if suffix not in (NATIVE_SUFFIX, JSON_SUFFIX):
        raise ConfigError(f"unknown store format {suffix!r}; use {NATIVE_SUFFIX} (native) or {JSON_SUFFIX} (AutoTTS)")
    out = Path(out_dir)
    plan: list[ImportItem] = []
    targets: dict[Path, Path] = {}
    for f in import_sources(paths):
        m = model or f.resolve().parent.name or "unknown-model"
        b = benchmark or f.stem
        target = out / _path_component(m, "--model") / (_path_component(b, "--benchmark") + suffix)
        if target in targets:
            raise ConfigError(
                f"{targets[target]} and {f} would both be written to {target}; "
                "import them separately or name them with --model/--benchmark"
            )
        targets[target] = f
        plan.append(ImportItem(f, m, b, target))
    return plan


def import_stores(
    plan: Sequence[ImportItem],
    *,
    on_store: Callable[[ImportItem, ReplayStore], None] | None = None,
    transform: Callable[[ReplayStore], ReplayStore] | None = None,
) -> list[ReplayStore]:
    """Convert every planned store, in order, each written atomically; ``on_store`` hears of each one written.

    ``transform`` rewrites each store before it is written (``store import
    --canonicalize math`` passes the answer canonicaliser). The first bad input raises
    its StoreError; stores written before it stay.
    """
    written = []
    for item in plan:
        store = load_store(item.source, model=item.model, benchmark=item.benchmark)
        if transform is not None:
            store = transform(store)
        save_store(store, item.target)
        written.append(store)
        if on_store is not None:
            on_store(item, store)
    return written
