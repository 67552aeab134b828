"""Sweeps: what to evaluate, the cells it expands to, and the resumable results file they stream to.

:class:`SweepConfig` says what to evaluate, :class:`SweepPlan` holds the cells and
:class:`ResultStream` the results file.

A sweep file (TOML) names stores × controllers × β values and run options::

    stores = ["stores/Qwen3-4B", "stores/Qwen3-8B/aime25.parquet"]
    controllers = ["sc:n=64", "asc", "cmc"]
    betas = [0.0, 0.5, 1.0]        # applied to controllers that take beta
    runs = 100
    protocol = "shuffle"           # or "subsample" with subsample_size = 64

``autotts eval`` is a thin shell over this module: it merges its options over the
sweep file (:meth:`SweepConfig.merge`), plans the cells and runs them into a
:class:`ResultStream`, so the library and the command line accept and refuse the same
things.

Results stream to a JSON file as cells finish (rewritten atomically at most once a
second), so an interrupted sweep keeps what it finished and ``--resume`` skips those
cells. A finished cell is recognised by its key, which holds the store's *content*
fingerprint: a different store that happens to have the same model/benchmark name is
a different cell, and a results file whose records were computed on other data (or
with another version of a controller file) is refused rather than mixed in.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import tempfile
import time
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autotts._atomic import write_text_atomic
from autotts.controllers.spec import ControllerSpec
from autotts.env.protocols import Protocol
from autotts.errors import ConfigError
from autotts.evaluation.backends import BACKENDS, check_cell_timeout
from autotts.evaluation.presets import preset_specs
from autotts.evaluation.results import CellResult, cell_key
from autotts.evaluation.runner import Cell, evaluate_cells, expand_cells
from autotts.store import load_stores
from autotts.store.schema import ReplayStore

log = logging.getLogger(__name__)

#: Controllers evaluated when a sweep names none.
DEFAULT_CONTROLLERS = ("sc:n=64",)
_PROTOCOLS = ("shuffle", "subsample")


@dataclass(frozen=True)
class SweepConfig:
    """What a sweep asks for. Defaults live here only; ``None`` means "not given" in :meth:`merge`."""

    stores: tuple[str, ...] = ()
    controllers: tuple[str, ...] = ()
    betas: tuple[float, ...] = ()
    runs: int = 100
    protocol: str = "shuffle"
    subsample_size: int = 64
    backend: str = "processes"
    workers: int | None = None
    address: str | None = None
    cell_timeout: float | None = None
    """Wall-clock limit per cell in seconds (``None``: no limit)."""
    preset: str | None = None
    """A paper preset (``paper-main``, ``paper-curves``) whose controllers come first."""

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SweepConfig:
        """Read and check a sweep file; problems raise ConfigError naming the file and key."""
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"sweep file {p} does not exist") from None
        except IsADirectoryError:
            raise ConfigError(f"sweep file {p} is a directory; name a .toml file") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"sweep file {p} is not valid TOML: {exc}") from None
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(
                f"sweep file {p}: unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}"
            )
        for key in ("stores", "controllers"):
            if isinstance(data.get(key), str):
                data[key] = [data[key]]
        if not data.get("stores"):
            raise ConfigError(f"sweep file {p}: 'stores' is required and must not be empty")
        if not data.get("controllers") and not data.get("preset"):
            raise ConfigError(f"sweep file {p}: 'controllers' is required and must not be empty")
        try:
            return cls().merge(**data)
        except ConfigError as exc:
            raise ConfigError(f"sweep file {p}: {exc}") from None

    def merge(
        self,
        *,
        stores: Sequence[str] | None = None,
        controllers: Sequence[str] | None = None,
        betas: Sequence[float] | None = None,
        **options: Any,
    ) -> SweepConfig:
        """A copy with other values laid over it (command-line options over a sweep file).

        Stores and controllers given are added in front of this config's; β values and
        every other option given (not ``None``) replace this config's. The result is
        checked as a whole, so a combination that makes no sense is refused however it
        was assembled.
        """
        unknown = set(options) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ConfigError(f"unknown sweep option(s): {', '.join(sorted(unknown))}")
        changes: dict[str, Any] = {k: v for k, v in options.items() if v is not None}
        changes["stores"] = _strings("stores", stores or ()) + self.stores
        changes["controllers"] = _strings("controllers", controllers or ()) + self.controllers
        if betas:
            changes["betas"] = _betas(betas)
        merged = dataclasses.replace(self, **changes)
        merged.check()
        return merged

    def check(self) -> None:
        """Refuse values and combinations that cannot be meant (ConfigError naming the option)."""
        if not _is_int(self.runs) or self.runs < 1:
            raise ConfigError(f"runs must be a positive integer, got {self.runs!r}")
        if self.protocol not in _PROTOCOLS:
            raise ConfigError(f"unknown protocol {self.protocol!r}; choose one of: {', '.join(_PROTOCOLS)}")
        if not _is_int(self.subsample_size) or self.subsample_size < 1:
            raise ConfigError(f"subsample size must be at least 1, got {self.subsample_size!r}")
        if self.backend not in BACKENDS:
            raise ConfigError(f"unknown backend {self.backend!r}; choose one of: {', '.join(BACKENDS)}")
        if self.workers is not None and (not _is_int(self.workers) or self.workers < 1):
            raise ConfigError(f"workers must be at least 1, got {self.workers!r}")
        if self.address is not None and self.backend != "ray":
            raise ConfigError("--address only applies to --backend ray")
        check_cell_timeout(self.cell_timeout, self.backend)
        _betas(self.betas)
        if self.preset is not None and self.betas:
            raise ConfigError("--beta (betas) does not combine with --preset: the preset fixes its own β values")

    @property
    def run_protocol(self) -> Protocol:
        """The run protocol these options name."""
        return Protocol(self.protocol, self.subsample_size)

    def specs(self) -> list[ControllerSpec]:
        """The controller specs: the preset's rows first, then the named controllers (default ``sc:n=64``)."""
        specs = preset_specs(self.preset) if self.preset is not None else []
        named = self.controllers or (() if specs else DEFAULT_CONTROLLERS)
        return specs + [ControllerSpec.parse(text) for text in named]

    def plan(self) -> SweepPlan:
        """Load the stores and expand every (store, controller, β) cell; warns about over-wide specs."""
        if not self.stores:
            raise ConfigError("name at least one store with --store (or a sweep file with --sweep)")
        specs = self.specs()  # spec errors before loading any store
        stores = load_stores(list(self.stores))
        cells = expand_cells(stores, specs, self.betas or None)
        for store in stores:
            branches = min((q.n_branches for q in store.replay), default=0)
            for spec in specs:
                warning = spec.width_warning(branches, store.name)
                if warning:
                    log.warning("%s", warning)
        return SweepPlan(self, stores, cells)


def load_sweep(path: str | os.PathLike[str]) -> SweepConfig:
    """Read and check a sweep file (same as :meth:`SweepConfig.load`)."""
    return SweepConfig.load(path)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _strings(key: str, values: Sequence[Any]) -> tuple[str, ...]:
    if isinstance(values, str) or not all(isinstance(v, str) for v in values):
        raise ConfigError(f"'{key}' must be a list of strings")
    return tuple(values)


def _betas(values: Sequence[Any]) -> tuple[float, ...]:
    if isinstance(values, (str, bytes)):
        raise ConfigError("'betas' must be a list of numbers in [0, 1]")
    for b in values:
        if not (isinstance(b, (int, float)) and not isinstance(b, bool) and 0.0 <= b <= 1.0):
            raise ConfigError(f"'betas' must be a list of numbers in [0, 1], got {b!r}")
    return tuple(float(b) for b in values)


def parse_betas(texts: Sequence[str]) -> tuple[float, ...]:
    """β values from ``--beta`` texts (each a number or a comma-separated list), checked to be in [0, 1]."""
    betas: list[float] = []
    for text in texts:
        for piece in (p.strip() for p in text.split(",")):
            if not piece:
                continue
            try:
                b = float(piece)
            except ValueError:
                raise ConfigError(f"--beta {piece!r} is not a number; use e.g. --beta 0.5 or --beta 0,0.5,1") from None
            if not (math.isfinite(b) and 0.0 <= b <= 1.0):
                raise ConfigError(f"--beta {piece} is outside [0, 1]")
            betas.append(b)
    return tuple(betas)


@dataclass(frozen=True)
class SweepPlan:
    """The cells of a sweep, ready to run; :meth:`run` evaluates those a results file does not hold yet."""

    config: SweepConfig
    stores: list[ReplayStore]
    cells: list[Cell]
    keys: list[str] = field(init=False)

    def __post_init__(self) -> None:
        protocol = self.config.run_protocol.label
        keys = [
            cell_key(c.store.fingerprint, c.spec.name, c.spec.params, protocol, self.config.runs) for c in self.cells
        ]
        object.__setattr__(self, "keys", keys)

    def run(
        self,
        stream: ResultStream | None = None,
        *,
        quirks: bool = False,
        fast: bool = True,
        progress: Callable[[int, int, CellResult], None] | None = None,
    ) -> list[CellResult]:
        """Evaluate the cells ``stream`` does not hold yet; return every cell's record in cell order.

        Each finished cell goes to ``stream`` as it finishes; on any exit (an error,
        Ctrl-C) what finished is flushed to disk before the exception propagates.
        """
        done = stream.claim(self) if stream is not None else {}
        todo = [cell for cell, key in zip(self.cells, self.keys, strict=True) if key not in done]

        def finished(count: int, total: int, result: CellResult) -> None:
            if stream is not None:
                stream.add(result)
            if progress is not None:
                progress(count, total, result)

        config = self.config
        try:
            fresh = evaluate_cells(
                todo,
                runs=config.runs,
                protocol=config.run_protocol,
                quirks=quirks,
                fast=fast,
                backend=config.backend,
                workers=config.workers,
                address=config.address,
                progress=finished,
                cell_timeout=config.cell_timeout,
            )
        finally:
            if stream is not None:
                stream.flush()
        by_key = {**done, **{r.key: r for r in fresh}}
        ordered = [by_key[key] for key in self.keys]
        if stream is not None:
            stream.finish(ordered)
        return ordered


class ResultStream:
    """A JSON results file that grows cell by cell and can be resumed.

    Opening one checks before any cell runs that the file can be written, and that an
    existing file is not overwritten by accident: pass ``resume=True`` to continue it
    or ``force=True`` to start it over.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, resume: bool = False, force: bool = False, interval: float = 1.0
    ) -> None:
        if resume and force:
            raise ConfigError("--resume continues the --json file and --force overwrites it; pass one of them")
        self.path = Path(path)
        self.interval = interval
        self._last_write = 0.0
        self._dirty = False
        self.records: list[dict[str, Any]] = []
        self._claimed: set[str] = set()
        check_writable(self.path)
        if self.path.exists() and not (resume or force):
            raise ConfigError(
                f"results file {self.path} exists already; pass --resume to continue it, --force to overwrite it, "
                "or name another file"
            )
        if resume and self.path.exists():
            self.records = _read_records(self.path)

    def claim(self, plan: SweepPlan) -> dict[str, CellResult]:
        """The records of ``plan``'s cells that the file already holds, by key.

        Refuses a file whose records were computed on different data than ``plan``'s
        (same store name, other content), with another version of a controller file, or
        on stores this sweep does not include: mixing them would report numbers of one
        experiment under the name of another.
        """
        stores = {s.fingerprint: s.name for s in plan.stores}
        names = {name: fp for fp, name in stores.items()}
        planned = dict(zip(plan.keys, plan.cells, strict=True))
        done: dict[str, CellResult] = {}
        for index, raw in enumerate(self.records):
            record = CellResult.from_dict(raw)
            where = f"{self.path} record {index} ({record.label} on {record.store})"
            if record.store_fingerprint not in stores:
                if record.store in names:
                    raise ConfigError(
                        f"cannot resume: {where} was computed on other data than the store {record.store} now holds "
                        f"(content fingerprint {record.store_fingerprint[:12]} there, {names[record.store][:12]} "
                        "now); write to a new --json file, or pass --force to start this one over"
                    )
                raise ConfigError(
                    f"cannot resume: {where} belongs to another sweep (its store is not among this sweep's "
                    f"stores: {', '.join(sorted(names))}); resume with the same stores, or use another --json file"
                )
            cell = planned.get(record.key)
            if cell is None:
                continue  # another cell on the same data (an earlier call's); kept in the file
            expected = cell.spec.fingerprint
            if record.controller_fingerprint != expected:
                raise ConfigError(
                    f"cannot resume: {where} was computed with another version of {cell.spec.path or cell.spec.name} "
                    "(its source changed since); write to a new --json file, or pass --force to start this one over"
                )
            done[record.key] = record
        self._claimed = set(done)
        return done

    @property
    def saved(self) -> int:
        """How many cells of the claimed plan the file holds (resumed plus finished since)."""
        return len(self._claimed)

    def add(self, result: CellResult) -> None:
        """Append one finished cell; the file is rewritten atomically at most every ``interval`` s."""
        self.records.append(result.to_dict())
        self._claimed.add(result.key)
        self._dirty = True
        if time.monotonic() - self._last_write >= self.interval:
            self.flush()

    def flush(self, *, force: bool = False) -> None:
        """Write every record so far (atomically)."""
        if force or self._dirty or not self.path.exists():
            write_text_atomic(self.path, json.dumps(self.records, indent=1) + "\n")
            self._dirty = False
            self._last_write = time.monotonic()

    def finish(self, ordered: Sequence[CellResult]) -> None:
        """Rewrite the file in cell order, followed by earlier records of other cells (kept, not lost)."""
        current = {r.key for r in ordered}
        kept = [raw for raw in self.records if CellResult.from_dict(raw).key not in current]
        self.records = [r.to_dict() for r in ordered] + kept
        self.flush(force=True)


def check_writable(path: Path) -> None:
    """Refuse a results path that cannot be written, before any work is done (ConfigError, one line)."""
    if path.is_dir():
        raise ConfigError(f"cannot write results to {path}: it is a directory; name a file such as {path}/results.json")
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ConfigError(f"cannot write results to {path}: {ancestor} is a file, not a directory")
    try:
        # Probe with a real file where the atomic write will put its temporary file:
        # permission bits alone do not tell (root, read-only mounts, ACLs).
        fd, probe = tempfile.mkstemp(prefix=".autotts-probe-", dir=ancestor)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ConfigError(f"cannot write results to {path}: {ancestor} is not writable ({exc.strerror})") from None


def _read_records(path: Path) -> list[dict[str, Any]]:
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"cannot resume from {path}: not valid JSON ({exc.msg})") from None
    except OSError as exc:
        raise ConfigError(f"cannot resume from {path}: {exc.strerror}") from None
    if not isinstance(loaded, list):
        raise ConfigError(f"cannot resume from {path}: expected a JSON list of records")
    for i, record in enumerate(loaded):
        if not isinstance(record, dict):
            raise ConfigError(f"cannot resume from {path}: record {i} is not a JSON object; use another --json file")
        try:
            CellResult.from_dict(record)
        except ConfigError as exc:
            raise ConfigError(f"cannot resume from {path}: record {i}: {exc} (or use another --json file)") from None
    return loaded
