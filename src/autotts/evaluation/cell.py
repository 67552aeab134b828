"""One cell of evaluation work and running it in the current process.

This is what every backend executes (:mod:`autotts.evaluation.backends`); the runner
above it only plans cells and hands them to a backend.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from autotts.controllers.loader import check_answer, crash_error, source_of
from autotts.controllers.spec import ControllerSpec
from autotts.engine import run_builtin
from autotts.env.protocols import Protocol
from autotts.env.session import QuestionTrace, ReplaySession
from autotts.errors import ConfigError, ControllerError
from autotts.evaluation.results import CellResult, grade_cell
from autotts.store.schema import ReplayStore


@dataclass(frozen=True)
class Cell:
    """One unit of evaluation work: a store and a fully specified controller."""

    store: ReplayStore
    spec: ControllerSpec


def expand_cells(
    stores: Sequence[ReplayStore],
    specs: Sequence[ControllerSpec],
    betas: Sequence[float] | None = None,
) -> list[Cell]:
    """Every (store, controller, β) combination; β applies to controllers that take ``beta``."""
    if betas:
        fixed = [spec.label for spec in specs if "beta" in spec.params]
        if fixed:
            raise ConfigError(
                f"{', '.join(fixed)} fix β in the controller spec while β values are given too (--beta / betas); "
                "drop one of them"
            )
    cells: list[Cell] = []
    for store in stores:
        for spec in specs:
            if betas and spec.accepts("beta") and "beta" not in spec.params:
                cells.extend(Cell(store, spec.with_params(beta=float(b))) for b in betas)
            else:
                cells.append(Cell(store, spec))
    return cells


def run_cell(
    store: ReplayStore,
    spec: ControllerSpec,
    *,
    runs: int = 100,
    protocol: Protocol | None = None,
    record: bool = False,
    quirks: bool = False,
    fast: bool = True,
) -> CellResult:
    """Evaluate one controller spec on one store for ``runs`` runs.

    With ``record=True`` every episode's execution trace is kept in the result. A
    built-in controller runs on its compiled kernel (:mod:`autotts.engine`) when one
    exists and numba is available, with bit-identical results (answers, costs,
    sequential tokens and traces); ``fast=False`` forces the Python controller, the
    reference the kernels are tested against. ``quirks`` only changes what happens on
    illegal actions, which built-in controllers never take, so it does not affect them.
    """
    protocol = protocol or Protocol()
    if runs < 1:
        raise ConfigError(f"runs must be at least 1, got {runs}")
    controller = spec.build()
    fingerprint = spec.fingerprint
    t0 = time.perf_counter()
    done = run_builtin(store, controller, runs=runs, protocol=protocol, record=record) if fast else None
    if done is not None:
        return grade_cell(
            store,
            controller=spec.name,
            params=spec.params,
            protocol=protocol.label,
            answers=done.answers,
            cost=done.cost,
            sequential=done.sequential,
            traces=done.traces,
            seconds=time.perf_counter() - t0,
            controller_fingerprint=fingerprint,
        )
    replay = store.replay
    golds = store.golds
    source = source_of(spec.path, controller)
    nq = len(replay)
    cost = np.zeros((runs, nq), dtype=np.int64)
    seq = np.zeros((runs, nq), dtype=np.int64)
    answers: list[tuple[str | None, ...]] = []
    traces: list[QuestionTrace] = []
    for r in range(runs):
        run_answers: list[str | None] = []
        for qi, q in enumerate(replay):
            session = ReplaySession(q, protocol.order(q.n_branches, r), record=record, quirks=quirks)
            where = f"on {store.name} question {qi} (run {r})"
            try:
                answer = check_answer(controller.solve(session), where=f"controller {spec.label} {where}")
            except ControllerError:
                raise
            except Exception as exc:
                raise crash_error(exc, label=spec.label, source=source, where=where, question=qi) from exc
            cost[r, qi] = session.cost
            seq[r, qi] = session.sequential_tokens
            run_answers.append(answer)
            if record:
                ok = answer is not None and answer == golds[qi]
                traces.append(QuestionTrace(r, qi, answer, ok, session.trace, session.notes))
        answers.append(tuple(run_answers))
    return grade_cell(
        store,
        controller=spec.name,
        params=spec.params,
        protocol=protocol.label,
        answers=answers,
        cost=cost,
        sequential=seq,
        traces=tuple(traces),
        seconds=time.perf_counter() - t0,
        controller_fingerprint=fingerprint,
    )
