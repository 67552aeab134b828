"""What a report is made of: evaluation records and discovery run directories.

``autotts report`` accepts, in any mix:

* a results file written by ``autotts eval --json`` (a JSON list of cell records);
* a file holding ``{"results": [records...]}`` (``autotts demo``'s ``results.json``);
* a discovery run directory (it has ``manifest.json``): its candidates, and its final
  evaluation, whose curves become cells of the report too;
* a directory holding either of the above (e.g. an ``autotts demo`` output directory).

Records are read through :func:`cell_from_record`, the one place that turns a JSON
record into a cell; a record with ``per_run`` arrays becomes a full
:class:`~autotts.evaluation.results.CellResult` (paired statistics possible), an older
record without them a summary only (the report then says which comparisons it cannot
make rather than inventing numbers).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from autotts.controllers.spec import parse_params
from autotts.errors import ConfigError, ResultsError
from autotts.evaluation.results import CellResult, CellSummary, RecordSummary

log = logging.getLogger(__name__)

#: Keys every cell record must have (see the evaluation record contract).
REQUIRED_KEYS = ("store", "controller", "params", "runs", "accuracy", "tokens")


def _split_store(name: str) -> tuple[str, str]:
    model, _, bench = name.rpartition("/")
    return (model or name), (bench or name)


def _per_run_arrays(per_run: Any, where: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decode the ``per_run`` block: ``correct`` as R strings of '0'/'1', ``cost``/``sequential`` as R×Q ints."""
    try:
        correct = np.array([[ch == "1" for ch in row] for row in per_run["correct"]], dtype=bool)
        cost = np.asarray(per_run["cost"], dtype=np.int64)
        seq = np.asarray(per_run.get("sequential", per_run["cost"]), dtype=np.int64)
    except (KeyError, TypeError, ValueError) as exc:
        raise ResultsError(f"{where}: 'per_run' is malformed ({exc})") from None
    if correct.ndim != 2 or cost.shape != correct.shape or seq.shape != correct.shape:
        raise ResultsError(
            f"{where}: 'per_run' arrays disagree in shape (correct {correct.shape}, cost {cost.shape}, "
            f"sequential {seq.shape})"
        )
    return correct, cost, seq


def cell_from_record(record: Mapping[str, Any], *, where: str = "record") -> CellSummary:
    """One JSON cell record as a cell: a :class:`CellResult` when it carries ``per_run``, else a summary."""
    if not isinstance(record, Mapping):
        raise ResultsError(f"{where}: expected a JSON object, got {type(record).__name__}")
    missing = [k for k in REQUIRED_KEYS if k not in record]
    if missing:
        raise ResultsError(f"{where}: lacks {', '.join(missing)}; is this a file written by `autotts eval --json`?")
    if not isinstance(record["params"], Mapping):
        raise ResultsError(f"{where}: 'params' must be an object")
    data = dict(record)
    model, bench = _split_store(str(data["store"]))
    data.setdefault("model", model)
    data.setdefault("benchmark", bench)
    per_run = data.get("per_run")
    if per_run is None:
        try:
            float(data["accuracy"]), float(data["tokens"]), int(data["runs"])
        except (TypeError, ValueError):
            raise ResultsError(f"{where}: accuracy, tokens and runs must be numbers") from None
        return RecordSummary(data)
    correct, cost, seq = _per_run_arrays(per_run, where)
    cell = CellResult(
        store=str(data["store"]),
        model=str(data["model"]),
        benchmark=str(data["benchmark"]),
        controller=str(data["controller"]),
        params=dict(data["params"]),
        protocol=str(data.get("protocol", "shuffle")),
        correct=correct,
        cost=cost,
        sequential=seq,
        seconds=float(data.get("seconds", 0.0)),
    )
    # The summaries are derived from the arrays; a record whose stored summary disagrees
    # with its own arrays was edited or damaged, and a report built on it would mislead.
    if abs(cell.accuracy - float(data["accuracy"])) > 1e-9 or abs(cell.tokens - float(data["tokens"])) > 1e-6:
        raise ResultsError(f"{where}: accuracy/tokens do not match the record's own per_run arrays")
    return cell


def has_arrays(cell: CellSummary) -> bool:
    """Whether a cell carries per-(run, question) arrays (paired statistics need them)."""
    return isinstance(cell, CellResult)


@dataclass(frozen=True)
class DiscoveryInput:
    """A discovery run directory given to the report."""

    path: Path
    name: str


@dataclass
class ReportInputs:
    """Everything read from the command line's inputs."""

    cells: list[CellSummary] = field(default_factory=list)
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


def _final_cells(run_dir: Path, final: Mapping[str, Any]) -> list[CellSummary]:
    """Cells from a discovery run's ``final.json``: the discovered program and the baselines, per β."""
    cells: list[CellSummary] = []
    runs = int(final.get("runs") or 0)
    protocol = str(final.get("protocol", "shuffle"))
    groups: list[tuple[str, Mapping[str, Any]]] = []
    disc = final.get("discovered") or {}
    if disc.get("status") == "ok":
        groups.append(("discovered", disc.get("curves") or {}))
    for spec, ev in (final.get("baselines") or {}).items():
        groups.append((str(spec), (ev or {}).get("curves") or {}))
    for name, curves in groups:
        controller, _, rest = name.partition(":")
        base_params: dict[str, Any] = {}
        if rest:
            base_params = parse_params(rest, spec=name)
        for store, points in curves.items():
            for p in points:
                params = dict(base_params)
                if p.get("beta") is not None:
                    params["beta"] = p["beta"]
                rec = {
                    "store": store,
                    "controller": controller,
                    "params": params,
                    "protocol": protocol,
                    "runs": int(p.get("runs", runs)),
                    "accuracy": p["accuracy"],
                    "tokens": p["tokens"],
                    "sequential_tokens": p.get("sequential_tokens", 0.0),
                    "accuracy_ci95": p.get("accuracy_ci95", [p["accuracy"], p["accuracy"]]),
                }
                cells.append(cell_from_record(rec, where=f"{run_dir / 'final.json'} ({name} on {store})"))
    return cells


def _add_run(inputs: ReportInputs, path: Path) -> None:
    manifest = _read_json(path / "manifest.json")
    name = str(manifest.get("name") or path.name) if isinstance(manifest, Mapping) else path.name
    inputs.runs.append(DiscoveryInput(path, name))
    inputs.sources.append(f"discovery run {path}")
    final_path = path / "final.json"
    if final_path.is_file():
        final = _read_json(final_path)
        if isinstance(final, Mapping):
            inputs.cells.extend(_final_cells(path, final))
    else:
        inputs.notes.append(f"discovery run {name}: no final evaluation yet (final.json missing)")


def _add_file(inputs: ReportInputs, path: Path) -> None:
    records = _records_of(_read_json(path), path)
    for i, rec in enumerate(records):
        inputs.cells.append(cell_from_record(rec, where=f"{path}: record {i}"))
    inputs.sources.append(f"{len(records)} records from {path}")


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
        raise ResultsError("the inputs hold no evaluated cells and no discovery run: nothing to report")
    missing = sum(not has_arrays(c) for c in inputs.cells)
    if missing:
        inputs.notes.append(
            f"{missing} of {len(inputs.cells)} cells carry no per-run arrays (older records or discovery "
            "summaries): paired comparisons are reported only for cells that have them"
        )
    return inputs


def cell_identity(cell: CellSummary) -> str:
    """What makes two cells the same evaluation: store, controller, parameters, runs."""
    return json.dumps([cell.store, cell.controller, cell.params, cell.runs], sort_keys=True, default=str)


def _dedupe(cells: Iterable[CellSummary], notes: list[str]) -> list[CellSummary]:
    """Drop repeated cells: the same identity (last one wins), or the same evaluation spelled twice.

    A discovery run's final evaluation re-evaluates baselines that an eval file may
    hold too (``asc`` there, ``asc:max_samples=64`` here); identical store, controller,
    runs, accuracy and tokens mean the same evaluation, and the first spelling is kept.
    """
    seen: dict[str, int] = {}
    same: set[str] = set()
    out: list[CellSummary] = []
    replaced = dropped = 0
    for c in cells:
        key = cell_identity(c)
        twin = json.dumps([c.store, c.controller, c.runs, c.accuracy, c.tokens])
        if key in seen:
            out[seen[key]] = c
            replaced += 1
        elif twin in same:
            dropped += 1
        else:
            seen[key] = len(out)
            same.add(twin)
            out.append(c)
    if replaced:
        notes.append(f"{replaced} cells appeared more than once in the inputs; the last occurrence was kept")
    if dropped:
        notes.append(f"{dropped} cells repeated an identical evaluation under another parameter spelling; kept once")
    return out
