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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from autotts._atomic import write_text_atomic
from autotts.controllers.spec import ControllerSpec
from autotts.engine.traces import CellEvents
from autotts.env.session import ACTION_NAMES
from autotts.errors import AutoTTSError, ResultsError
from autotts.evaluation.presets import method_label
from autotts.evaluation.protocols import Protocol
from autotts.evaluation.results import CellResult, QuestionTrace
from autotts.evaluation.runner import run_cell
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


def _pack(data: Any) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode("utf-8")
    return base64.b64encode(gzip.compress(raw, compresslevel=6, mtime=0)).decode("ascii")


def _episode_codes(traces: Sequence[QuestionTrace], episode: int) -> tuple[list[int], list[list[Any]]]:
    """One episode's actions as ``branch * 4 + action`` codes, and its notes."""
    events = getattr(traces, "cell_events", None)
    if isinstance(events, CellEvents):  # kernel traces: slice the compact codes, build nothing
        lo, hi = int(events.offsets[episode]), int(events.offsets[episode + 1])
        return events.codes[lo:hi].tolist(), []
    trace = traces[episode]
    codes = [e.branch * 4 + _ACTION_CODE[e.action] for e in trace.events]
    return codes, [[pos, text] for pos, text in trace.notes]


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
    write_text_atomic(out / f"{store_id}.js", f"autottsStore({json.dumps(data, separators=(',', ':'))});\n")


def write_cell_traces(
    out: Path, cell_id: str, store_id: str, store: ReplayStore, result: CellResult, protocol: Protocol
) -> TracedCell:
    """Write one replayed cell's ``meta.js`` and per-run chunks under ``out/cell_id``."""
    folder = out / cell_id
    nq = result.questions
    total = 0
    for r in range(result.runs):
        orders, codes, notes = [], [], []
        for q, question in enumerate(store.replay):
            c, n = _episode_codes(result.traces, r * nq + q)
            orders.append(list(protocol.order(question.n_branches, r)))
            codes.append(c)
            notes.append(n)
            total += len(c)
        chunk = _pack({"orders": orders, "codes": codes, "notes": notes})
        write_text_atomic(folder / f"run-{r}.js", f"autottsRun({json.dumps(cell_id)},{r},{json.dumps(chunk)});\n")
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
    write_text_atomic(folder / "meta.js", f"autottsMeta({json.dumps(meta, separators=(',', ':'))});\n")
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


def write_traces(
    out: Path,
    stores: Sequence[ReplayStore],
    cells: Sequence[CellResult],
    *,
    progress: Callable[[str, int, int], None] | None = None,
) -> tuple[list[TracedCell], list[str]]:
    """Replay and write the traces of ``cells`` whose store is among ``stores``; return them and notes."""
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
            write_store(out, store_ids[store.name], store)
        protocol = _protocol(cell.protocol)
        traced.append(write_cell_traces(out, f"c{len(traced)}", store_ids[store.name], store, result, protocol))
        log.info("traced %s on %s: %d events", cell.label, store.name, traced[-1].events)
    return traced, notes
