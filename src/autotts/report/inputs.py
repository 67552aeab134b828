"""What a report is made of: evaluation records and discovery run directories.

``autotts report`` accepts, in any mix:

* a results file written by ``autotts eval --json`` (a JSON list of cell records);
* a file holding ``{"results": [records...]}`` (``autotts demo``'s ``results.json``);
* a discovery run directory (it has ``manifest.json``), reported by
  :mod:`autotts.report.trajectory`;
* a directory holding either of the above (e.g. an ``autotts demo`` output directory).

Records are read with :meth:`CellResult.from_dict <autotts.evaluation.results.CellResult.from_dict>`,
so every cell of a report carries its per-run arrays and paired statistics are always
possible. A record without them (written by an older autotts) cannot be rebuilt; it is
left out and the report says how many and where, rather than showing numbers it cannot
check.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autotts.errors import ConfigError, ResultsError
from autotts.evaluation.results import CellResult

log = logging.getLogger(__name__)

#: Keys every cell record must have (see the evaluation record contract).
REQUIRED_KEYS = ("store", "controller", "params", "runs", "accuracy", "tokens")


def cell_from_record(record: Mapping[str, Any], *, where: str = "record") -> CellResult:
    """One JSON cell record as a :class:`CellResult`; a record that cannot be rebuilt is a :class:`ResultsError`."""
    if not isinstance(record, Mapping):
        raise ResultsError(f"{where}: expected a JSON object, got {type(record).__name__}")
    missing = [k for k in REQUIRED_KEYS if k not in record]
    if missing:
        raise ResultsError(f"{where}: lacks {', '.join(missing)}; is this a file written by `autotts eval --json`?")
    if "per_run" not in record:
        raise ResultsError(f"{where}: has no per-run arrays (written by an older autotts); evaluate the cell again")
    try:
        cell = CellResult.from_dict(record)
    except ConfigError as exc:
        raise ResultsError(f"{where}: {exc}") from None
    # The summaries are derived from the arrays; a record whose stored summary disagrees
    # with its own arrays was edited or damaged, and a report built on it would mislead.
    try:
        same = (
            abs(cell.accuracy - float(record["accuracy"])) <= 1e-9
            and abs(cell.tokens - float(record["tokens"])) <= 1e-6
        )
    except (TypeError, ValueError):
        same = False
    if not same:
        raise ResultsError(f"{where}: accuracy/tokens do not match the record's own per_run arrays")
    return cell


@dataclass(frozen=True)
class DiscoveryInput:
    """A discovery run directory given to the report."""

    path: Path
    name: str


@dataclass
class ReportInputs:
    """Everything read from the command line's inputs."""

    cells: list[CellResult] = field(default_factory=list)
    runs: list[DiscoveryInput] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """Things the reader should know (duplicates replaced, arrays missing, ...)."""


def _records_of(data: Any, path: Path) -> list[Any]:
    if isinstance(data, list):
        return data
    if isinstance(data, Mapping) and isinstance(data.get("results"), list):
        return list(data["results"])
    raise ResultsError(
        "is neither a list of evaluation records (`autotts eval --json`) nor an object with a 'results' list",
        path=str(path),
    )


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ResultsError(f"cannot be read ({exc.strerror or exc})", path=str(path)) from None
    except ValueError as exc:
        raise ResultsError(f"is not valid JSON ({exc})", path=str(path)) from None


def _add_run(inputs: ReportInputs, path: Path) -> None:
    manifest = _read_json(path / "manifest.json")
    name = str(manifest.get("name") or path.name) if isinstance(manifest, Mapping) else path.name
    inputs.runs.append(DiscoveryInput(path, name))
    inputs.sources.append(f"discovery run {path}")
    if not (path / "final.json").is_file():
        inputs.notes.append(f"discovery run {name}: no final evaluation yet (final.json missing)")


def _add_file(inputs: ReportInputs, path: Path) -> None:
    records = _records_of(_read_json(path), path)
    old = 0
    for i, rec in enumerate(records):
        if isinstance(rec, Mapping) and "per_run" not in rec and all(k in rec for k in REQUIRED_KEYS):
            old += 1  # an older autotts wrote it: summaries only, nothing to check them against
            continue
        inputs.cells.append(cell_from_record(rec, where=f"{path}: record {i}"))
    inputs.sources.append(f"{len(records)} records from {path}")
    if old:
        inputs.notes.append(
            f"{old} of {len(records)} records in {path} carry no per-run arrays (written by an older autotts) and "
            "are left out of the tables, curves and comparisons; evaluate them again with `autotts eval --json`"
        )


def load_inputs(paths: Sequence[str | Path]) -> ReportInputs:
    """Read every input; an unreadable or unrecognised one is a :class:`ResultsError` naming it."""
    if not paths:
        raise ConfigError("name at least one input: an `autotts eval --json` file or a discovery run directory")
    inputs = ReportInputs()
    for raw in paths:
        path = Path(raw)
        if path.is_file():
            _add_file(inputs, path)
        elif path.is_dir() and (path / "manifest.json").is_file():
            _add_run(inputs, path)
        elif path.is_dir():
            found = False
            if (path / "results.json").is_file():
                _add_file(inputs, path / "results.json")
                found = True
            for sub in sorted(p.parent for p in path.glob("*/manifest.json")):
                _add_run(inputs, sub)
                found = True
            if not found:
                raise ResultsError(
                    "holds neither results.json nor a discovery run (manifest.json); name an "
                    "`autotts eval --json` file or a run directory",
                    path=str(path),
                )
        else:
            raise ConfigError(f"report input {str(path)!r} does not exist")
    inputs.cells = _dedupe(inputs.cells, inputs.notes)
    if not inputs.cells and not inputs.runs:
        raise ResultsError("the inputs hold no evaluated cell and no discovery run: nothing to report")
    return inputs


def cell_identity(cell: CellResult) -> str:
    """What makes two cells the same evaluation: the record's key (store content, controller, protocol, runs)."""
    return cell.key


def _dedupe(cells: Iterable[CellResult], notes: list[str]) -> list[CellResult]:
    """One cell per key; when the inputs repeat a cell, the last occurrence wins (and the report says so)."""
    seen: dict[str, int] = {}
    out: list[CellResult] = []
    replaced = 0
    for c in cells:
        key = cell_identity(c)
        if key in seen:
            out[seen[key]] = c
            replaced += 1
        else:
            seen[key] = len(out)
            out.append(c)
    if replaced:
        notes.append(f"{replaced} cells appeared more than once in the inputs; the last occurrence was kept")
    return out
