"""Sweep files and streamed, resumable result files for large evaluations.

A sweep file (TOML) names stores × controllers × β values and run options::

    stores = ["stores/Qwen3-4B", "stores/Qwen3-8B/aime25.parquet"]
    controllers = ["sc:n=64", "asc", "cmc"]
    betas = [0.0, 0.5, 1.0]        # applied to controllers that take beta
    runs = 100
    protocol = "shuffle"           # or "subsample" with subsample_size = 64

Results stream to a JSON file as cells finish (rewritten atomically after each cell),
so an interrupted sweep keeps what it finished and ``--resume`` skips those cells.
"""

from __future__ import annotations

import json
import os
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autotts._atomic import write_text_atomic
from autotts.errors import ConfigError
from autotts.evaluation.results import CellResult
from autotts.evaluation.runner import cell_key

_RECORD_KEYS = ("store", "controller", "params", "protocol", "runs", "accuracy", "tokens")
_KNOWN = {"stores", "controllers", "betas", "runs", "protocol", "subsample_size", "backend", "workers", "address"}


@dataclass(frozen=True)
class SweepConfig:
    """What a sweep file asks for."""

    stores: list[str]
    controllers: list[str]
    betas: list[float] = field(default_factory=list)
    runs: int = 100
    protocol: str = "shuffle"
    subsample_size: int = 64
    backend: str | None = None
    workers: int | None = None
    address: str | None = None


def load_sweep(path: str | os.PathLike[str]) -> SweepConfig:
    """Read and check a sweep file; problems raise ConfigError naming the file and key."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"sweep file {p} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"sweep file {p} is not valid TOML: {exc}") from None
    unknown = set(data) - _KNOWN
    if unknown:
        raise ConfigError(
            f"sweep file {p}: unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(_KNOWN))}"
        )

    def str_list(key: str, required: bool) -> list[str]:
        value = data.get(key, [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"sweep file {p}: '{key}' must be a list of strings")
        if required and not value:
            raise ConfigError(f"sweep file {p}: '{key}' is required and must not be empty")
        return value

    betas = data.get("betas", [])
    if not isinstance(betas, list) or not all(isinstance(b, (int, float)) and 0 <= b <= 1 for b in betas):
        raise ConfigError(f"sweep file {p}: 'betas' must be a list of numbers in [0, 1]")
    runs = data.get("runs", 100)
    if not isinstance(runs, int) or runs < 1:
        raise ConfigError(f"sweep file {p}: 'runs' must be a positive integer")
    return SweepConfig(
        stores=str_list("stores", True),
        controllers=str_list("controllers", True),
        betas=[float(b) for b in betas],
        runs=runs,
        protocol=str(data.get("protocol", "shuffle")),
        subsample_size=int(data.get("subsample_size", 64)),
        backend=data.get("backend"),
        workers=data.get("workers"),
        address=data.get("address"),
    )


def record_key(record: dict[str, Any]) -> str:
    """The cell key of a JSON record (see :func:`autotts.evaluation.runner.cell_key`)."""
    return cell_key(record["store"], record["controller"], record["params"], record["protocol"], record["runs"])


class ResultStream:
    """A JSON results file that grows cell by cell and can be resumed."""

    def __init__(self, path: str | os.PathLike[str], *, resume: bool = False, interval: float = 1.0) -> None:
        self.path = Path(path)
        self.interval = interval
        self._last_write = 0.0
        self._dirty = False
        self.records: list[dict[str, Any]] = []
        if resume and self.path.exists():
            try:
                loaded = json.loads(self.path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as exc:
                raise ConfigError(f"cannot resume from {self.path}: not valid JSON ({exc.msg})") from None
            if not isinstance(loaded, list):
                raise ConfigError(f"cannot resume from {self.path}: expected a JSON list of records")
            for i, record in enumerate(loaded):
                missing = [k for k in _RECORD_KEYS if not isinstance(record, dict) or k not in record]
                if missing:
                    raise ConfigError(
                        f"cannot resume from {self.path}: record {i} lacks {', '.join(missing)}; "
                        "it was not written by autotts eval --json (use another --json file)"
                    )
            self.records = loaded

    def add(self, result: CellResult) -> None:
        """Append one finished cell; the file is rewritten atomically at most every ``interval`` s."""
        self.records.append(result.to_record())
        self._dirty = True
        if time.monotonic() - self._last_write >= self.interval:
            self.flush()

    def flush(self, *, force: bool = False) -> None:
        """Write every record so far (atomically)."""
        if force or self._dirty or not self.path.exists():
            write_text_atomic(self.path, json.dumps(self.records, indent=1) + "\n")
            self._dirty = False
            self._last_write = time.monotonic()
