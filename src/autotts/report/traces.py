"""Execution traces for the report's viewer: replayed from the stores, stored compactly per run.

Evaluation records hold no traces (a Parallel-Probe@64 cell has about 4 M actions), so
the report *replays* the cells it shows in the viewer with recording on. Replay is
exact: the replayed cell must reproduce the record's accuracy and tokens (and its
per-run arrays when the record has them), otherwise the store is not the one that was
evaluated and the report refuses rather than show traces of other data.

Encoding. An action is stored as one integer, ``branch * 4 + action`` (the action codes
of :mod:`autotts.env.session`, the same compact form the replay kernels record); the
viewer re-derives depth, revealed answer and cost from the store's data and the run's
branch order, and checks that the episode's cost it derives equals the record's.
Layout under ``DIR/traces/`` (loaded with ``<script>`` tags, which work from
``file://`` where ``fetch`` does not)::

    s0.js          autottsStore({...})  per question: answer vocabulary, gold, Δ, per-branch
                                        probes, final answers and lengths
    c0/meta.js     autottsMeta({...})   cell label, per-episode answer, correctness and cost
    c0/run-0.js    autottsRun("c0", 0, "<base64 gzip JSON>")  branch orders and actions of run 0
    ...

A run's chunk is gzip-compressed JSON (the browser inflates it with
``DecompressionStream``), so the viewer loads and decodes one run — one episode per
question — at a time, and a 4 M-action cell stays responsive.
"""

from __future__ import annotations

import base64
import gzip
import json
import logging
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from autotts.controllers.spec import ControllerSpec
from autotts.engine.traces import CellEvents
from autotts.env.session import ACTION_NAMES
from autotts.errors import AutoTTSError, ResultsError
from autotts.evaluation.presets import method_label
from autotts.evaluation.protocols import Protocol
from autotts.evaluation.results import CellResult, QuestionTrace
from autotts.evaluation.runner import run_cell
from autotts.report._jsonints import int_lists_json
from autotts.report.analysis import KNOB_NAMES, family_of, knob_of, spec_text
from autotts.store.schema import ReplayStore

log = logging.getLogger(__name__)

_ACTION_CODE = {name: i for i, name in enumerate(ACTION_NAMES)}


@dataclass(frozen=True)
class TracedCell:
    """A cell whose traces were written, as listed in the viewer's index."""

    id: str
    store: str
    label: str
    method: str
    controller: str
    params: dict[str, Any]
    runs: int
    questions: int
    events: int

    @property
    def family(self) -> str:
        """The controller's curve label (``CMC``, ``SC``)."""
        return family_of(self.controller, self.params)

    @property
    def knob(self) -> str | None:
        """The parameter its curve varies (``beta``, ``n``, ...)."""
        return knob_of(self.controller, self.params)

    def to_dict(self) -> dict[str, Any]:
        """JSON form for the viewer's index."""
        return {
            "id": self.id,
            "store": self.store,
            "label": self.label,
            "method": self.method,
            "controller": self.controller,
            "params": self.params,
            "runs": self.runs,
            "questions": self.questions,
            "events": self.events,
            "family": self.family,
            "knob": None if self.knob is None else self.params[self.knob],
            "knob_name": None if self.knob is None else KNOB_NAMES.get(self.knob, self.knob),
        }


def _protocol(label: str) -> Protocol:
    name, _, size = label.partition(":")
    try:
        return Protocol(name, int(size)) if size else Protocol(name)
    except ValueError:
        raise ResultsError(f"unknown protocol {label!r} in a record") from None


def replay_cell(store: ReplayStore, cell: CellResult) -> CellResult:
    """Re-run a recorded cell with tracing on and check it reproduces the record exactly."""
    if cell.store_fingerprint and store.fingerprint != cell.store_fingerprint:
        raise ResultsError(
            f"the store {store.name} passed with --store is not the one {cell.label} was evaluated on "
            f"(content fingerprint {store.fingerprint[:12]} ≠ {cell.store_fingerprint[:12]})"
        )
    spec = ControllerSpec.parse(spec_text(cell.controller, cell.params))
    result = run_cell(store, spec, runs=cell.runs, protocol=_protocol(cell.protocol), record=True)
    if not (np.array_equal(result.correct, cell.correct) and np.array_equal(result.cost, cell.cost)):
        raise ResultsError(
            f"replaying {cell.label} on {store.name} gives {result.accuracy:.4f} % / {result.tokens:,.1f} tokens "
            f"but the record says {cell.accuracy:.4f} % / {cell.tokens:,.1f}: the store passed with --store is not "
            "the one that was evaluated"
        )
    return result


def _pack(text: str) -> str:
    """A run chunk's JSON text as base64 of its gzip (fixed header: the same chunk gives the same bytes)."""
    return base64.b64encode(gzip.compress(text.encode("utf-8"), compresslevel=6, mtime=0)).decode("ascii")


def _compact(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"))


class _Orders:
    """The JSON text of a run's branch orders, made once per (protocol, branch counts, run).

    Every traced cell of a store replays the same runs, so without this each cell
    re-encoded the same ~4,000 integers per run; the text is what ``json.dumps`` gives
    for the list of per-question orders.
    """

    def __init__(self) -> None:
        self._text: dict[tuple[Protocol, tuple[int, ...], int], str] = {}

    def text(self, protocol: Protocol, n_branches: tuple[int, ...], run: int) -> str:
        key = (protocol, n_branches, run)
        if key not in self._text:
            self._text[key] = _compact([protocol.order(n, run) for n in n_branches])
        return self._text[key]


def _run_codes(traces: Sequence[QuestionTrace], first: int, count: int) -> tuple[str, str, int]:
    """The JSON texts of ``count`` episodes' action codes and notes from episode ``first`` on, and the action count.

    Actions are ``branch * 4 + action`` codes. Kernel traces are sliced from their compact
    code array without building per-event objects.
    """
    events = getattr(traces, "cell_events", None)
    if isinstance(events, CellEvents):
        bounds = events.offsets[first : first + count + 1]
        return int_lists_json(events.codes, bounds), "[" + ",".join(["[]"] * count) + "]", int(bounds[-1] - bounds[0])
    codes, notes = [], []
    for episode in range(first, first + count):
        trace = traces[episode]
        codes.append([e.branch * 4 + _ACTION_CODE[e.action] for e in trace.events])
        notes.append([[pos, text] for pos, text in trace.notes])
    return _compact(codes), _compact(notes), sum(len(c) for c in codes)


def write_store(out: Path, store_id: str, store: ReplayStore) -> None:
    """Write the store data the viewer replays actions against (once per store)."""
    golds = store.golds
    questions = [
        {
            "vocab": list(q.vocab),
            "gold": golds[i],
            "delta": int(q.delta),
            "probes": [list(p) for p in q.probes],
            "finals": list(q.finals),
            "tokens": list(q.tokens),
        }
        for i, q in enumerate(store.replay)
    ]
    data = {"id": store_id, "name": store.name, "questions": questions}
    _write(out / f"{store_id}.js", f"autottsStore({_compact(data)});\n")


def write_cell_traces(
    out: Path,
    cell_id: str,
    store_id: str,
    store: ReplayStore,
    result: CellResult,
    protocol: Protocol,
    orders: _Orders | None = None,
) -> TracedCell:
    """Write one replayed cell's ``meta.js`` and per-run chunks under ``out/cell_id``.

    Files are written plainly: :func:`write_traces` writes into a folder of its own and
    moves it into place only once it is complete.
    """
    folder = out / cell_id
    folder.mkdir(parents=True, exist_ok=True)
    orders = orders or _Orders()
    n_branches = tuple(q.n_branches for q in store.replay)
    nq = result.questions
    total = 0
    for r in range(result.runs):
        codes, notes, count = _run_codes(result.traces, r * nq, nq)
        total += count
        # Byte for byte json.dumps({"orders": ..., "codes": ..., "notes": ...}) with compact separators.
        chunk = _pack(f'{{"orders":{orders.text(protocol, n_branches, r)},"codes":{codes},"notes":{notes}}}')
        _write(folder / f"run-{r}.js", f"autottsRun({json.dumps(cell_id)},{r},{json.dumps(chunk)});\n")
    meta = {
        "id": cell_id,
        "store": store_id,
        "store_name": store.name,
        "label": result.label,
        "method": method_label(result.controller, dict(result.params)),
        "runs": result.runs,
        "questions": nq,
        "answers": [list(row) for row in result.answers],
        "correct": ["".join("1" if x else "0" for x in row) for row in result.correct.tolist()],
        "cost": result.cost.tolist(),
        "accuracy": result.accuracy,
        "tokens": result.tokens,
        "events": total,
    }
    _write(folder / "meta.js", f"autottsMeta({_compact(meta)});\n")
    return TracedCell(
        cell_id,
        store.name,
        result.label,
        meta["method"],
        result.controller,
        dict(result.params),
        result.runs,
        nq,
        total,
    )


def staging_folder(out: Path) -> Path:
    """Where :func:`write_traces` writes the traces for ``out`` before renaming them into place."""
    return out.parent / f".{out.name}.partial"


def _write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def write_traces(
    out: Path,
    stores: Sequence[ReplayStore],
    cells: Sequence[CellResult],
    *,
    progress: Callable[[str, int, int], None] | None = None,
) -> tuple[list[TracedCell], list[str]]:
    """Replay and write the traces of ``cells`` whose store is among ``stores``; return them and notes.

    ``out`` must not exist yet (or be empty). The files are written into a sibling folder
    ``.NAME.partial`` that becomes ``out`` in one rename once every file is there: a
    viewer never sees half a set of traces, and the thousand files of a demo report need
    no atomic replace (temporary name, fsync, rename) each, which cost more than writing them.
    """
    by_name = {s.name: s for s in stores}
    notes: list[str] = []
    todo = []
    for c in cells:
        store = by_name.get(c.store)
        if store is None:
            continue
        todo.append((c, store))
    unmatched = sorted({c.store for c in cells} - set(by_name))
    if unmatched and stores:
        notes.append(f"no --store for {', '.join(unmatched)}: no traces of its cells")
    traced: list[TracedCell] = []
    store_ids: dict[str, str] = {}
    orders = _Orders()
    staging = staging_folder(out)
    if staging.exists():  # left by a report that was killed while writing traces
        shutil.rmtree(staging)
    try:
        for k, (cell, store) in enumerate(todo):
            if progress:
                progress(f"replaying {cell.label} on {store.name} for traces", k, len(todo))
            try:
                result = replay_cell(store, cell)
            except ResultsError:
                raise
            except AutoTTSError as exc:  # e.g. a controller that is not registered here
                notes.append(f"no traces of {cell.label} on {store.name}: {exc}")
                continue
            if store.name not in store_ids:
                store_ids[store.name] = f"s{len(store_ids)}"
                staging.mkdir(parents=True, exist_ok=True)
                write_store(staging, store_ids[store.name], store)
            protocol = _protocol(cell.protocol)
            cell_id = f"c{len(traced)}"
            traced.append(write_cell_traces(staging, cell_id, store_ids[store.name], store, result, protocol, orders))
            log.info("traced %s on %s: %d events", cell.label, store.name, traced[-1].events)
        if staging.exists():
            staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return traced, notes
