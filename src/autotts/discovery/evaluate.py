"""Score one candidate: static checks, a smoke stage, the judged β sweep, grading, the leak test, β checks.

Cheap stages run before expensive ones, and each failure stops the pipeline with a
status and a message the explorer can act on. Everything that counts is the judge's:
the candidate's process returns only an answer per episode, while costs, sequential
tokens and traces are what the judge's own sessions recorded (:mod:`autotts.discovery.judge`),
and grading against the gold answers happens here.

Each evaluation draws a secret from ``os.urandom``: it orders the sweep's episodes, picks
the leak-tested runs and draws the leak perturbation, so none of them can be predicted
by the candidate. It is returned in :attr:`Evaluation.leak_secret` (hex) for the run
directory, only once the evaluation is over.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from autotts.discovery.monotone import full_budget_findings, monotone_findings
from autotts.discovery.records import CandidateRecord, CurvePoint, Finding, Status, Usage, mean_curve
from autotts.discovery.remote import run_judged
from autotts.discovery.sandbox import SandboxJob, SandboxLimits, SandboxOutcome, StorePayload, orders_for
from autotts.discovery.validation import validate_source
from autotts.evaluation.protocols import Protocol
from autotts.evaluation.results import CellResult, grade
from autotts.store.schema import ReplayStore

log = logging.getLogger(__name__)

#: Called with a stage name ("validate", "smoke", "sweep", "leak") as the pipeline advances.
StageCallback = Callable[[str], None]
_SMOKE_QUESTIONS = 3


@dataclass(frozen=True)
class Episode:
    """One traced (store, β, run, question) episode, graded."""

    store: str
    beta: float | None
    run: int
    question: int
    answer: str | None
    correct: bool
    cost: int
    events: tuple[tuple[Any, ...], ...]
    """``(action, branch, depth, answer, cost, total)`` per action (capped)."""
    branches: tuple[tuple[int, bool, bool], ...]
    """``(depth, finished, pruned)`` of every opened branch at the end."""
    n_total: int
    n_events: int
    notes: tuple[tuple[int, str], ...] = ()
    gold_seen: bool = False
    """Whether the gold answer was among the answers the episode revealed."""


@dataclass(frozen=True)
class EvalContext:
    """Everything needed to score candidates on the search stores."""

    stores: Sequence[ReplayStore]
    betas: Sequence[float]
    runs: int
    protocol: Protocol
    limits: SandboxLimits
    require_beta: bool = True
    trace_runs: int = 1
    leak: bool = True
    leak_runs: int = 2
    smoke: bool = True
    monotone_tolerance: float = 0.02
    full_budget_fraction: float = 0.25
    full_budget_tokens: Mapping[str, float] = field(default_factory=dict)
    backend: str = "local"
    """Where judge/candidate pairs run: ``local`` or ``ray`` (identical results)."""
    ray_address: str = ""
    secret: bytes | None = None
    processes: int = 1
    """Candidate processes per sweep and leak job (``SandboxJob.processes``)."""
    """Fixes the evaluation's secret (tests, reproductions); None draws a fresh one from ``os.urandom``."""

    def payloads(self) -> list[StorePayload]:
        """Child views of the stores: interned data, no golds, no question text."""
        return [StorePayload(s.name, tuple(s.replay)) for s in self.stores]


@dataclass(frozen=True)
class Evaluation:
    """The outcome of scoring one candidate."""

    status: Status
    message: str = ""
    stderr_tail: str = ""
    findings: tuple[Finding, ...] = ()
    class_name: str = ""
    curves: Mapping[str, tuple[CurvePoint, ...]] = field(default_factory=dict)
    search_curve: tuple[CurvePoint, ...] = ()
    settings: Mapping[str, str] = field(default_factory=dict)
    episodes: tuple[Episode, ...] = ()
    seconds: float = 0.0
    stage: str = ""
    """The stage that decided the status (``validate``, ``smoke``, ``sweep``, ``leak``, ``done``)."""
    leak_secret: str = ""
    """The evaluation's secret (hex): episode order, leak runs and perturbation follow from it."""

    def record(self, cid: str, round_: int, index: int, usage: Usage | None = None) -> CandidateRecord:
        """The candidate record stored in the run directory."""
        return CandidateRecord(
            id=cid,
            round=round_,
            index=index,
            status=self.status,
            message=self.message,
            stderr_tail=self.stderr_tail,
            findings=self.findings,
            class_name=self.class_name,
            curves=dict(self.curves),
            search_curve=self.search_curve,
            settings=dict(self.settings),
            eval_seconds=self.seconds,
            usage=usage or Usage(),
        )


def _failure(outcome: SandboxOutcome, stage: str, class_name: str, t0: float) -> Evaluation:
    if outcome.kind == "timeout":
        status = Status.TIMEOUT
    else:
        status = Status.CRASHED
    prefix = "smoke test: " if stage == "smoke" else ""
    return Evaluation(
        status,
        prefix + outcome.message,
        outcome.stderr_tail,
        class_name=class_name,
        seconds=time.monotonic() - t0,
        stage=stage,
    )


def _check_cells(data: Mapping[str, Any], n_stores: int, n_betas: int, n_runs: int, nqs: Sequence[int]) -> str:
    """Return an error message when the child's result does not have the requested shape."""
    cells = data.get("cells")
    if not isinstance(cells, list) or len(cells) != n_stores * n_betas:
        return "result has the wrong number of cells"
    for c in cells:
        if not isinstance(c, dict):
            return "malformed cell"
        si = c.get("store")
        if not isinstance(si, int) or not 0 <= si < n_stores:
            return "malformed cell index"
        for key in ("answers", "cost", "seq"):
            rows = c.get(key)
            if (
                not isinstance(rows, list)
                or len(rows) != n_runs
                or any(not isinstance(r, list) or len(r) != nqs[si] for r in rows)
            ):
                return f"malformed {key}"
    return ""


def cell_records(
    ctx: EvalContext, data: Mapping[str, Any], betas: Sequence[float | None]
) -> list[tuple[int, float | None, CellResult]]:
    """The judged arrays of every (store, β) as the project's one evaluation record, graded by its one rule."""
    out = []
    for cell in data["cells"]:
        store = ctx.stores[cell["store"]]
        beta = betas[cell["beta_index"]]
        record = CellResult(
            store=store.name,
            model=store.meta.model,
            benchmark=store.meta.benchmark,
            controller="candidate",
            params={} if beta is None else {"beta": beta},
            protocol=ctx.protocol.label,
            correct=grade(cell["answers"], store.golds),
            cost=np.asarray(cell["cost"], dtype=np.int64),
            sequential=np.asarray(cell["seq"], dtype=np.int64),
            answers=tuple(tuple(row) for row in cell["answers"]),
        )
        out.append((int(cell["store"]), beta, record))
    return out


def _grade(
    ctx: EvalContext,
    data: Mapping[str, Any],
    betas: Sequence[float | None],
) -> tuple[dict[str, tuple[CurvePoint, ...]], list[Episode]]:
    curves: dict[str, list[CurvePoint]] = {s.name: [] for s in ctx.stores}
    episodes: list[Episode] = []
    for (si, beta, record), cell in zip(cell_records(ctx, data, betas), data["cells"], strict=True):
        store = ctx.stores[si]
        golds = store.golds
        curves[store.name].append(CurvePoint(beta, record.accuracy, record.tokens, record.sequential_tokens))
        for tr in cell.get("traces", []):
            qi = int(tr["question"])
            run = int(tr["run"])
            events = tuple(tuple(e) for e in tr.get("events", []))
            revealed = {e[3] for e in events if e[3] is not None}
            episodes.append(
                Episode(
                    store=store.name,
                    beta=beta,
                    run=run,
                    question=qi,
                    answer=tr.get("answer"),
                    correct=bool(record.correct[run, qi]),
                    cost=int(record.cost[run, qi]),
                    events=events,
                    branches=tuple((int(b[0]), bool(b[1]), bool(b[2])) for b in tr.get("branches", [])),
                    n_total=int(tr.get("n_total", 0)),
                    n_events=int(tr.get("n_events", len(events))),
                    notes=tuple((int(k), str(t)) for k, t in tr.get("notes", [])),
                    gold_seen=golds[qi] in revealed,
                )
            )
    for name in curves:
        curves[name].sort(key=lambda p: -1.0 if p.beta is None else p.beta)
    return {k: tuple(v) for k, v in curves.items()}, episodes


def _traced_key(tr: Mapping[str, Any], cell: Mapping[str, Any]) -> tuple[int, int, int, int]:
    return (int(cell["store"]), int(cell["beta_index"]), int(tr["run"]), int(tr["question"]))


def _leak_diffs(
    base: Mapping[str, Any], leak: Mapping[str, Any], ctx: EvalContext, betas: Sequence[float | None]
) -> list[str]:
    first: dict[tuple[int, int, int, int], tuple[str, Any]] = {}
    for cell in base["cells"]:
        for tr in cell["traces"]:
            first[_traced_key(tr, cell)] = (tr["sig"], tr.get("answer"))
    diffs = []
    for cell in leak["cells"]:
        for tr in cell["traces"]:
            key = _traced_key(tr, cell)
            if key not in first:
                continue
            sig, ans = first[key]
            if tr["sig"] != sig or tr.get("answer") != ans:
                what = "actions" if tr["sig"] != sig else "answer"
                diffs.append(
                    f"{ctx.stores[key[0]].name} β={betas[key[1]]} run {key[2]} question {key[3]}: {what} changed"
                )
    return diffs


def _leak_runs(secret: bytes, ctx: EvalContext) -> list[int]:
    """The runs the leak pass replays: drawn from the evaluation's secret, so a candidate cannot know them.

    Always replaying the first runs would let a candidate count episodes and cheat only from
    a later run on. Given the secret (stored in the run directory afterwards) the draw is
    reproducible.
    """
    k = min(ctx.leak_runs, ctx.runs)
    digest = hashlib.sha256(b"leak-runs" + secret).hexdigest()
    return sorted(random.Random(digest).sample(range(ctx.runs), k))


def evaluate_candidate(code: str, ctx: EvalContext, *, on_stage: StageCallback | None = None) -> Evaluation:
    """Run the whole scoring pipeline on one candidate's source."""
    t0 = time.monotonic()

    def stage(name: str) -> None:
        if on_stage is not None:
            on_stage(name)

    stage("validate")
    v = validate_source(code, require_beta=ctx.require_beta)
    if not v.ok:
        return Evaluation(
            Status.INVALID, v.message, class_name=v.class_name, seconds=time.monotonic() - t0, stage="validate"
        )
    use_beta = ctx.require_beta or v.takes_beta
    betas: list[float | None] = list(ctx.betas) if use_beta else [None]
    payloads = ctx.payloads()
    runs = list(range(ctx.runs))
    orders = orders_for(payloads, runs, ctx.protocol.order)

    if ctx.smoke:
        stage("smoke")
        smoke_betas = sorted({betas[0], betas[-1]}, key=lambda b: -1.0 if b is None else b) if use_beta else [None]
        smoke_limits = SandboxLimits(
            cpu_seconds=min(ctx.limits.cpu_seconds, max(5.0, ctx.limits.cpu_seconds / 10)),
            wall_seconds=min(ctx.limits.wall_seconds, max(8.0, ctx.limits.wall_seconds / 10)),
            memory_mb=ctx.limits.memory_mb,
            output_mb=ctx.limits.output_mb,
            isolation=ctx.limits.isolation,
            start=ctx.limits.start,
        )
        smoke = run_judged(
            SandboxJob(code, v.class_name, payloads, smoke_betas, [0], orders, n_questions=_SMOKE_QUESTIONS),
            smoke_limits,
            ctx.backend,
            ctx.ray_address,
        )
        if smoke.kind != "ok":
            return _failure(smoke, "smoke", v.class_name, t0)

    stage("sweep")
    secret = ctx.secret if ctx.secret is not None else os.urandom(32)
    leak_runs = _leak_runs(secret, ctx) if ctx.leak else []
    trace_runs = sorted(set(range(min(ctx.trace_runs, ctx.runs))) | set(leak_runs))
    sweep_job = SandboxJob(
        code,
        v.class_name,
        payloads,
        betas,
        runs,
        orders,
        trace_runs=trace_runs,
        secret=secret,
        processes=ctx.processes,
    )
    sweep = run_judged(sweep_job, ctx.limits, ctx.backend, ctx.ray_address)
    if sweep.kind != "ok" or sweep.data is None:
        return _failure(sweep, "sweep", v.class_name, t0)
    nqs = [len(s.replay) for s in ctx.stores]
    problem = _check_cells(sweep.data, len(payloads), len(betas), len(runs), nqs)
    if problem:
        return Evaluation(
            Status.CRASHED,
            f"sandbox result rejected: {problem}",
            sweep.stderr_tail,
            class_name=v.class_name,
            seconds=time.monotonic() - t0,
            stage="sweep",
        )
    curves, episodes = _grade(ctx, sweep.data, betas)
    # Keep only the runs the explorer is shown; leak-only runs served their purpose.
    shown_runs = set(range(min(ctx.trace_runs, ctx.runs)))
    episodes = [e for e in episodes if e.run in shown_runs]
    settings = {
        str(betas[int(k)]): str(val)
        for k, val in (sweep.data.get("settings") or {}).items()
        if str(k).isdigit() and int(k) < len(betas)
    }
    search_curve = mean_curve(curves.values())
    base = Evaluation(
        Status.OK,
        "",
        sweep.stderr_tail,
        class_name=v.class_name,
        curves=curves,
        search_curve=search_curve,
        settings=settings,
        episodes=tuple(episodes),
        stage="sweep",
    )

    if leak_runs:
        stage("leak")
        masks: dict[tuple[int, int, int, int], list[tuple[int, bool]]] = {}
        for cell in sweep.data["cells"]:
            for tr in cell["traces"]:
                if int(tr["run"]) in leak_runs:
                    masks[_traced_key(tr, cell)] = [(int(b[0]), bool(b[1])) for b in tr["branches"]]
        leak_job = SandboxJob(
            code,
            v.class_name,
            payloads,
            betas,
            leak_runs,
            orders,
            trace_runs=leak_runs,
            leak_masks=masks,
            reverse=True,
            secret=secret,
            processes=ctx.processes,
        )
        leak = run_judged(leak_job, ctx.limits, ctx.backend, ctx.ray_address)
        if leak.kind != "ok" or leak.data is None:
            msg = (
                "behaved differently when unrevealed data were replaced and episodes replayed in reverse order: "
                f"{leak.message}"
            )
            return _replace(base, Status.LEAKED, msg, time.monotonic() - t0, "leak", leak.stderr_tail, secret)
        diffs = _leak_diffs(sweep.data, leak.data, ctx, betas)
        if diffs:
            msg = (
                f"{len(diffs)} episode(s) changed when data the controller was never shown were replaced and the "
                "episodes replayed in reverse order — it reads hidden data, keeps state between questions, or is "
                "not deterministic. First: " + "; ".join(diffs[:3])
            )
            return _replace(base, Status.LEAKED, msg, time.monotonic() - t0, "leak", leak.stderr_tail, secret)

    findings: list[Finding] = []
    if use_beta and len(betas) > 1:
        for name, curve in curves.items():
            findings += monotone_findings(curve, store=name, tolerance=ctx.monotone_tolerance)
            ref = ctx.full_budget_tokens.get(name, 0.0)
            if max(b for b in betas if b is not None) >= 1.0:
                findings += full_budget_findings(
                    curve, store=name, full_budget_tokens=ref, fraction=ctx.full_budget_fraction
                )
    return Evaluation(
        Status.OK,
        "",
        base.stderr_tail,
        tuple(findings),
        v.class_name,
        curves,
        search_curve,
        settings,
        base.episodes,
        time.monotonic() - t0,
        "done",
        secret.hex(),
    )


def _replace(
    base: Evaluation, status: Status, message: str, seconds: float, stage: str, stderr: str, secret: bytes
) -> Evaluation:
    return Evaluation(
        status,
        message,
        stderr or base.stderr_tail,
        base.findings,
        base.class_name,
        base.curves,
        base.search_curve,
        base.settings,
        base.episodes,
        seconds,
        stage,
        secret.hex(),
    )
