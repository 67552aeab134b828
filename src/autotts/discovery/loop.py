"""The discovery loop: seeds → rounds of propose/validate/sandbox/score → selection → final → summary.

Each phase reads what earlier phases stored in the run directory and skips work that
is already done, so :meth:`DiscoveryLoop.run` is both "start" and "resume". Within a
round every candidate sees the same history (the rounds before it), proposals are made
one after the other, and each finished proposal is evaluated at once in a worker
thread (the sandbox is a separate process, so ``parallel`` candidates really run side
by side) while the next proposal is being written.

Caps: before each proposer call the loop checks the money spent so far plus the worst
case of that call against ``budget.max_money``, and the accumulated search wall-clock
against ``budget.max_wall_seconds``; when a cap is reached the search stops and the run
proceeds to selection and the final evaluation.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from autotts.discovery import remote
from autotts.discovery.config import DiscoverConfig
from autotts.discovery.digest import build_digest
from autotts.discovery.errors import ProposerError
from autotts.discovery.evaluate import EvalContext, Evaluation, evaluate_candidate
from autotts.discovery.final import final_evaluation
from autotts.discovery.final_frontier import final_frontier
from autotts.discovery.fitness import Reference, best_before, build_reference, feedback
from autotts.discovery.history import RunDir, write_json
from autotts.discovery.prompt import PromptBuilder, SeedInfo, StoreFacts
from autotts.discovery.proposers import HistoryItem, ProposalRequest, Proposer, make_proposer
from autotts.discovery.records import CandidateRecord, Status, Usage, candidate_id
from autotts.discovery.sandbox import SandboxLimits, check_isolation, kill_all
from autotts.discovery.seeds import FULL_BUDGET_SPEC, evaluate_specs, seed_infos, seed_specs
from autotts.discovery.selection import Choice, best_point, ranked, select
from autotts.discovery.summary import write_summary
from autotts.discovery.validation import validate_source
from autotts.env.protocols import Protocol as RunProtocol
from autotts.errors import ConfigError
from autotts.store import find_stores, load_stores
from autotts.store.schema import ReplayStore

log = logging.getLogger(__name__)


class Reporter(Protocol):
    """Receives progress events (the CLI draws them; tests may record them)."""

    def event(self, kind: str, **data: Any) -> None:
        """One event: ``phase``, ``round``, ``propose``, ``stage``, ``candidate``, ``stop``, ``message``.

        ``candidate`` carries ``record`` and ``money``, the proposer money spent by the whole run so far.
        """
        ...


class NullReporter:
    """Ignores every event."""

    def event(self, kind: str, **data: Any) -> None:
        """Do nothing."""


@dataclass(frozen=True)
class RunOutcome:
    """What a finished run produced."""

    run_dir: Path
    selection: Choice | None
    summary: Mapping[str, Any]


def candidate_processes(c: DiscoverConfig) -> int:
    """Candidate processes per judged job: ``sandbox.processes``, or the cores left per candidate in flight.

    One core is the judges': every judge thread runs in this process, under one GIL, and
    serving an action costs the judge about as much as playing it costs a candidate process
    with the C path (:mod:`autotts.env.speedups`). So at most two processes per job, and on
    two cores one (measured: ``bench/judge.py``; a second process there made the judged
    CMC sweep slower, 4.0x vs 3.6x in-process).
    """
    if c.sandbox.processes:
        return c.sandbox.processes
    if c.sandbox.backend != "local":
        return 1
    in_flight = max(1, min(c.parallel, c.candidates_per_round))
    return max(1, min(2, ((os.cpu_count() or 1) - 1) // in_flight))


def _result(fut: Future[Evaluation]) -> Evaluation:
    """The evaluation, or a ``crashed`` record if scoring itself failed: the loop never dies on a candidate."""
    try:
        return fut.result()
    except Exception as exc:
        log.exception("scoring a candidate failed")
        return Evaluation(Status.CRASHED, f"scoring failed: {type(exc).__name__}: {exc}", stage="internal")


def _rng_seed(seed: int, round_: int, index: int) -> int:
    return seed * 1_000_003 + round_ * 1_009 + index


class DiscoveryLoop:
    """One discovery run over a run directory (new or resumed)."""

    def __init__(
        self,
        run: RunDir,
        config: DiscoverConfig,
        *,
        proposer: Proposer | None = None,
        reporter: Reporter | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.run_dir = run
        self.config = config
        self.reporter: Reporter = reporter or NullReporter()
        self._env = env
        self._proposer = proposer
        self._stores: list[ReplayStore] | None = None
        self._reference: Reference | None = None

    # ---------------------------------------------------------------- creation
    @classmethod
    def start(
        cls,
        config: DiscoverConfig,
        *,
        run_dir: Path,
        config_text: str | None = None,
        proposer: Proposer | None = None,
        reporter: Reporter | None = None,
        env: Mapping[str, str] | None = None,
    ) -> DiscoveryLoop:
        """Create a fresh run directory for ``config``."""
        # Fail on a missing store or key before anything is created.
        for path in (*config.search_stores, *config.heldout_stores):
            find_stores(path)
        if proposer is None:
            proposer = make_proposer(config, env=env)
        run = RunDir.create(run_dir, config, config_text)
        return cls(run, config, proposer=proposer, reporter=reporter, env=env)

    @classmethod
    def resume(
        cls,
        run_dir: Path,
        *,
        proposer: Proposer | None = None,
        reporter: Reporter | None = None,
        env: Mapping[str, str] | None = None,
    ) -> DiscoveryLoop:
        """Continue the run stored in ``run_dir`` with its own configuration."""
        run = RunDir.open(run_dir)
        config = run.config()
        return cls(run, config, proposer=proposer, reporter=reporter, env=env)

    @property
    def proposer(self) -> Proposer:
        """The explorer (created on first use)."""
        if self._proposer is None:
            self._proposer = make_proposer(self.config, env=self._env)
        return self._proposer

    # ------------------------------------------------------------------ phases
    def search_stores(self) -> list[ReplayStore]:
        """The search stores (loaded once)."""
        if self._stores is None:
            self._stores = load_stores(list(self.config.search_stores))
        return self._stores

    def _seeds(self) -> tuple[list[SeedInfo], dict[str, float]]:
        specs = seed_specs(self.config.seeds)
        stored = self.run_dir.seeds()
        if stored is None:
            self.reporter.event("phase", name="seeds", detail=f"evaluating {len(specs)} seed controllers")
            t0 = time.monotonic()
            protocol = RunProtocol(self.config.protocol, self.config.subsample_size)
            stores = self.search_stores()
            evaluated = evaluate_specs(
                specs,
                stores,
                betas=self.config.betas,
                runs=self.config.search_runs,
                protocol=protocol,
                workers=self.config.parallel,
                on_done=lambda s: self.reporter.event("message", text=f"seed {s} evaluated"),
            )
            ref = evaluate_specs([FULL_BUDGET_SPEC], stores, betas=(), runs=self.config.search_runs, protocol=protocol)
            full = {
                name: float(points[0]["tokens"])
                for name, points in ref.get(FULL_BUDGET_SPEC, {}).get("curves", {}).items()
                if points
            }
            stored = {"specs": specs, "evaluated": evaluated, "full_budget_tokens": full}
            self.run_dir.write_seeds(stored)
            self.run_dir.add_phase_seconds("seeds", time.monotonic() - t0)
        infos = seed_infos(stored.get("specs", specs), stored.get("evaluated", {}))
        # The fixed yardstick of every frontier metric: the seeds' best frontier on each search store.
        self._reference = build_reference((i.curves for i in infos), token_range=self.config.selection.token_range)
        return infos, {k: float(v) for k, v in stored.get("full_budget_tokens", {}).items()}

    def _context(self, full_budget: Mapping[str, float]) -> EvalContext:
        c = self.config
        return EvalContext(
            stores=self.search_stores(),
            betas=c.betas,
            runs=c.search_runs,
            protocol=RunProtocol(c.protocol, c.subsample_size),
            limits=SandboxLimits(
                c.sandbox.cpu_seconds,
                c.sandbox.wall_seconds,
                c.sandbox.memory_mb,
                c.sandbox.output_mb,
                c.sandbox.isolation,
                c.sandbox.start,
            ),
            require_beta=c.require_beta,
            backend=c.sandbox.backend,
            ray_address=c.sandbox.ray_address,
            processes=candidate_processes(c),
            trace_runs=c.prompt.trace_runs,
            leak=c.checks.leak,
            leak_runs=c.checks.leak_runs,
            smoke=c.checks.smoke,
            monotone_tolerance=c.checks.monotone_tolerance,
            full_budget_fraction=c.checks.full_budget_fraction,
            full_budget_tokens=dict(full_budget),
        )

    def _history(self, before_round: int) -> list[HistoryItem]:
        items = []
        for rec in self.run_dir.candidates():
            if rec.round < before_round:
                items.append(HistoryItem(rec, self.run_dir.code(rec), self.run_dir.digest(rec)))
        return items

    def _stop_reason(self, search_started: float, previous_search: float) -> str | None:
        cap = self.config.max_wall_seconds
        if cap is not None and previous_search + (time.monotonic() - search_started) >= cap:
            return f"wall-clock cap of {cap:g} s reached"
        return None

    def reference(self) -> Reference:
        """The seeds' best frontier on the search stores (empty before the seeds are evaluated)."""
        return self._reference if self._reference is not None else Reference({})

    def frontier_feedback(self, record: CandidateRecord) -> str:
        """Where ``record``'s curve is above or below the best frontier when it was proposed."""
        if not record.ok or not record.curves or not self.reference().stores:
            return ""
        best = best_before(self.reference(), self.run_dir.candidates(), record.round)
        return feedback(record.curves, best)

    def _finish_candidate(self, round_: int, index: int, ev: Evaluation, usage: Usage) -> CandidateRecord:
        cid = candidate_id(round_, index)
        record = ev.record(cid, round_, index, usage)
        digest = ""
        if ev.episodes:
            p = best_point(record, self.config.selection)
            beta = p.beta if p is not None else ev.episodes[0].beta
            digest = build_digest(
                ev.episodes,
                beta=beta,
                max_chars=self.config.prompt.digest_chars,
                worst_failures=self.config.prompt.worst_failures,
                failure_actions=self.config.prompt.failure_actions,
            )
        front = self.frontier_feedback(record)
        if front:
            digest = f"{front}\n\n{digest}" if digest else front
        violations = []
        if ev.status is Status.INVALID and ev.stage == "validate":
            violations = [{"message": line} for line in ev.message.splitlines()]
        if ev.leak_secret:
            # Only now, with the evaluation over, may the secret behind its episode order and
            # leak perturbation exist anywhere a candidate of a later round could be shown.
            write_json(self.run_dir.slot(round_, index) / "judge.json", {"secret": ev.leak_secret})
        self.run_dir.write_candidate(record, digest=digest, violations=violations, episodes=ev.episodes)
        # ``money`` is the run's total so far (stored usage, so it survives ``--resume``), not this candidate's.
        self.reporter.event("candidate", record=record, money=self.run_dir.usage_total().money)
        return record

    def _search(self, seeds: list[SeedInfo], ctx: EvalContext) -> str | None:
        c = self.config
        facts = [
            StoreFacts(
                s.name, len(s), max((q.n_branches for q in s.replay), default=0), s.replay[0].delta if len(s) else 0
            )
            for s in self.search_stores()
        ]
        builder = PromptBuilder(c, facts, reference=self.reference())
        previous = float((self.run_dir.manifest().get("phase_seconds") or {}).get("search", 0.0))
        started = time.monotonic()
        stop: str | None = None
        try:
            with ThreadPoolExecutor(max_workers=c.parallel) as pool:

                def cap_reached() -> str | None:
                    return self._stop_reason(started, previous)

                try:
                    for round_ in range(1, c.rounds + 1):
                        stop = self._round(round_, builder, seeds, ctx, pool, cap_reached)
                        if stop is not None:
                            break
                except BaseException:
                    # Ctrl-C or an explorer failure: the sandbox children live in their own
                    # sessions; stop them now instead of letting the pool wait for their deadlines.
                    kill_all()
                    raise
        finally:
            self.run_dir.add_phase_seconds("search", time.monotonic() - started)
        return stop

    def _round(
        self,
        round_: int,
        builder: PromptBuilder,
        seeds: list[SeedInfo],
        ctx: EvalContext,
        pool: ThreadPoolExecutor,
        cap_reached: Callable[[], str | None],
    ) -> str | None:
        """Propose and evaluate the missing candidates of one round; return a stop reason, if any."""
        c = self.config
        pending = [i for i in range(1, c.candidates_per_round + 1) if self.run_dir.candidate(round_, i) is None]
        if not pending:
            return None
        self.reporter.event("round", round=round_, rounds=c.rounds, candidates=c.candidates_per_round)
        history = self._history(round_)
        futures: list[tuple[int, Future[Evaluation], Usage]] = []
        failure: ProposerError | None = None
        stop: str | None = None
        for index in pending:
            stop = cap_reached()
            if stop is None:
                try:
                    stop = self._propose_and_submit(builder, seeds, history, round_, index, ctx, pool, futures)
                except ProposerError as exc:
                    failure = exc
                    break
            # Store whatever finished meanwhile: a killed run then loses as little as possible.
            self._drain(round_, futures, wait=False)
            if stop is not None:
                break
        # Candidates already submitted are finished and stored even when the explorer failed.
        self._drain(round_, futures, wait=True)
        if failure is not None:
            raise failure
        return stop

    def _drain(self, round_: int, futures: list[tuple[int, Future[Evaluation], Usage]], *, wait: bool) -> None:
        """Store finished evaluations (all of them, waiting, when ``wait``) and drop them from ``futures``."""
        keep = []
        for index, fut, usage in futures:
            if wait or fut.done():
                self._finish_candidate(round_, index, _result(fut), usage)
            else:
                keep.append((index, fut, usage))
        futures[:] = keep

    def _propose_and_submit(
        self,
        builder: PromptBuilder,
        seeds: list[SeedInfo],
        history: list[HistoryItem],
        round_: int,
        index: int,
        ctx: EvalContext,
        pool: ThreadPoolExecutor,
        futures: list[tuple[int, Future[Evaluation], Usage]],
    ) -> str | None:
        cid = candidate_id(round_, index)
        stored = self.run_dir.proposal(round_, index)
        if stored is None:
            request = self._request(builder, seeds, history, round_, index)
            cap = self.config.max_money
            if cap is not None:
                spent = self.run_dir.usage_total().money
                worst = self.proposer.max_cost(request)
                if spent + worst > cap:
                    return (
                        f"money cap of {cap:g} reached (spent {spent:.4f}; the next call could cost up to {worst:.4f})"
                    )
            if request.prompt and self.proposer.kind != "agent":
                self.run_dir.write_prompt(round_, index, request.prompt)
            self.reporter.event("propose", id=cid, proposer=self.proposer.kind)
            try:
                result = self.proposer.propose(request)
            except ProposerError as exc:
                raise ProposerError(
                    f"{exc} — the run directory {self.run_dir.path} is intact; continue with "
                    f"autotts discover --resume {self.run_dir.path}",
                    status_code=exc.status_code,
                    retryable=exc.retryable,
                ) from None
            self.run_dir.write_proposal(
                round_, index, response=result.response, code=result.code, usage=result.usage, message=result.message
            )
            stored = self.run_dir.proposal(round_, index)
            if stored is None:  # pragma: no cover - just written
                raise ProposerError(f"proposal of {cid} could not be read back")
        if stored.code is None:
            ev = Evaluation(Status.INVALID, f"no controller program: {stored.message}", stage="extract")
            self._finish_candidate(round_, index, ev, stored.usage)
            return None

        def on_stage(name: str) -> None:
            self.reporter.event("stage", id=cid, stage=name)

        code = stored.code
        futures.append((index, pool.submit(evaluate_candidate, code, ctx, on_stage=on_stage), stored.usage))
        return None

    def _request(
        self, builder: PromptBuilder, seeds: list[SeedInfo], history: list[HistoryItem], round_: int, index: int
    ) -> ProposalRequest:
        cid = candidate_id(round_, index)
        seed = _rng_seed(self.config.seed, round_, index)
        if self.proposer.kind == "agent":
            best = ranked([h.record for h in history], self.config.selection, self.reference())
            codes = {h.record.id: h.code for h in history}
            start = (codes.get(best[0].id) if best else None) or builder.skeleton()
            files = builder.workspace(seeds, history, candidate_id=cid, starting_code=start)
            return ProposalRequest(
                cid,
                round_,
                index,
                builder.system(),
                files["TASK.md"],
                history,
                files,
                start,
                seed,
                self.run_dir.slot(round_, index),
            )
        if self.proposer.kind == "evolve":
            # The offline proposer reads the history directly; no prompt needs rendering.
            return ProposalRequest(
                cid, round_, index, "", "", history, {}, "", seed, self.run_dir.slot(round_, index), self.reference()
            )
        prompt = builder.prompt(seeds, history, candidate_id=cid)
        return ProposalRequest(
            cid, round_, index, builder.system(), prompt, history, {}, "", seed, self.run_dir.slot(round_, index)
        )

    def _check_isolation(self) -> None:
        """Refuse to judge candidates without the kernel filter unless the user chose ``process-only``."""
        mode = self.config.sandbox.isolation
        why = check_isolation(mode)
        if why:
            raise ConfigError(
                f"candidates cannot be isolated with seccomp on this machine ({why}); set "
                'sandbox.isolation = "process-only" to run them with process limits only (less safe)'
            )
        if mode == "process-only":
            log.warning("sandbox.isolation = process-only: candidates run without the seccomp filter")
        self.run_dir.update_manifest(isolation=mode)

    # --------------------------------------------------------------------- run
    def run(self) -> RunOutcome:
        """Run (or resume) every remaining phase; return the selection and the summary."""
        run = self.run_dir
        removed = run.cleanup_tmp()
        if removed:
            log.info("removed %d temporary files left by an interrupted run", removed)
        run.update_manifest(state="running", error=None)
        try:
            self._check_isolation()
            seeds, full_budget = self._seeds()
            ctx = self._context(full_budget)
            manifest = run.manifest()
            stop = manifest.get("stop_reason")
            if manifest.get("search_done") is not True:
                self.reporter.event("phase", name="search", detail=f"{self.config.rounds} rounds")
                stop = self._search(seeds, ctx)
                run.update_manifest(search_done=True, stop_reason=stop)
                if stop:
                    self.reporter.event("stop", reason=stop)
            records = run.candidates()
            choice = select(records, self.config.selection, self.reference())
            final = run.final()
            if final is None:
                picked = choice.candidate if choice else "nothing"
                self.reporter.event("phase", name="final", detail=f"selected {picked}")
                t0 = time.monotonic()
                code = None
                takes_beta = True
                if choice is not None:
                    rec = next(r for r in records if r.id == choice.candidate)
                    code = run.code(rec)
                    if code is not None:
                        takes_beta = validate_source(code, require_beta=self.config.require_beta).takes_beta
                heldout = load_stores(list(self.config.heldout_stores)) if self.config.heldout_stores else []
                final = final_evaluation(
                    self.config,
                    search=self.search_stores(),
                    heldout=heldout,
                    code=code,
                    takes_beta=takes_beta or self.config.require_beta,
                    on_step=lambda s: self.reporter.event("message", text=f"final evaluation: {s}"),
                )
                final["selection"] = None if choice is None else asdict(choice)
                final["frontier"] = final_frontier(final)
                run.write_final(final)
                run.add_phase_seconds("final", time.monotonic() - t0)
            summary = write_summary(run, self.config, records, choice, final)
            run.update_manifest(state="done")
            self.reporter.event("phase", name="done", detail=str(run.path))
            return RunOutcome(run.path, choice, summary)
        except BaseException as exc:
            state = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
            try:
                run.update_manifest(state=state, error=str(exc)[:2000])
            except Exception:  # the original error matters more than a failed manifest write
                log.exception("could not record the failure in the manifest")
            raise
        finally:
            if self._proposer is not None:
                self._proposer.close()
            remote.shutdown()
