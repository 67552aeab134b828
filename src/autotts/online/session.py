"""The live session: the replay session's API, backed by an LLM server.

A controller written for replay runs here unchanged. Opening or advancing a branch
grows it by Δ tokens on its own prefix and probes the new prefix; a branch whose model
stops on its own is finished and reveals the answer extracted from its full text;
``read()`` runs a fresh branch to its end in one generation. Accounting has the replay
meaning: each action is charged the completion tokens it generated (Δ per interval,
the remainder when the branch ends, the full length for a read); prompt tokens and the
probes' tokens are counted apart (``prompt_tokens``, ``probe_tokens``), next to wall
time and per-branch latency.

Sync controller, async I/O (why it looks like this): ``solve(session)`` is ordinary
blocking code, and every model call runs on one event loop (the proxy's own loop, or a
:class:`~autotts.online.runner.LoopThread`), where one HTTP client serves every episode.
A session is driven in one of two ways:

* from a **worker thread** (any controller; the caller's thread in :meth:`LiveRunner.solve`,
  a pool thread in the proxy): each step is submitted to the loop with
  ``run_coroutine_threadsafe`` and the thread blocks on the future. Every action then
  pays two thread wake-ups (loop → worker when the step is done, worker → loop with the
  next step), which on a small VM cost more than the rest of the action's own work;
* from a **greenlet on the loop's thread** (:func:`~autotts.online.runner.start_episode`;
  what the proxy does for built-in controllers): one driver task per episode switches
  into the controller's greenlet; an action switches back to the driver with the step
  it needs, the driver awaits that step in its own task (several at once as tasks of
  their own, for ``advance_many``) and switches into the greenlet again with the result.
  No thread hop, no lock, no task or loop iteration per action beyond the I/O itself;
  the price is that controller code between two actions runs on the loop and holds
  every other request's I/O while it runs, so only controllers known to decide quickly
  belong there (see :class:`~autotts.online.runner.Placement`).
  :attr:`LiveSession.longest_hold` records the longest such stretch.

``advance_many`` starts all its branches at once, so they run concurrently, and applies
their results in the given order (the trace is the same as advancing them one by one).
Each episode has its own session, so any number of episodes share one loop and one HTTP
client.

Branch ``i`` of an episode sends request seed ``seed + i`` (every request of the branch
carries it), which makes sampling reproducible on engines that honour seeds and tells
the replay server (:mod:`autotts.testing.replay_server`) which branch of its store to
serve.

Limits (:class:`LiveLimits`) end an episode early: ``token_budget`` (an action that
could spend past it is not started), ``deadline`` (seconds of wall time; a step still
running then is cancelled), and ``max_branches`` (the branch pool: ``open()`` returns
``None`` beyond it, as replay does when the store runs out). The first two raise
:class:`~autotts.online.errors.EpisodeStopped` through the controller; the runner
(:func:`autotts.online.runner.run_episode`) then answers with the best answer so far.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any

import greenlet  # type: ignore[import-untyped]

from autotts.env.session import ACTION_NAMES, ADVANCE, OPEN, PRUNE, READ, BranchView, Reveal, TraceEvent
from autotts.errors import AutoTTSError, ConfigError, IllegalActionError, StoreExhaustedError
from autotts.online.errors import EpisodeStopped, OnlineError, UpstreamError
from autotts.online.steps import BranchSteps, Grown, Probed

_LIVE, _FINISHED, _PRUNED = 0, 1, 2


@dataclass(frozen=True, slots=True)
class LiveLimits:
    """Per-question limits of a live episode (``None`` = no limit)."""

    token_budget: int | None = None
    """Completion tokens the branches may spend on the question."""
    deadline: float | None = None
    """Seconds of wall time for the question."""
    max_branches: int = 64
    """Branches the controller may open (the live branch pool)."""
    max_branch_tokens: int = 32768
    """Longest generation of one branch (a full read asks for this many tokens)."""

    def __post_init__(self) -> None:
        if self.token_budget is not None and self.token_budget < 1:
            raise ConfigError(f"token_budget must be a positive number of tokens, got {self.token_budget}")
        if self.deadline is not None and not self.deadline > 0:
            raise ConfigError(f"deadline must be a positive number of seconds, got {self.deadline}")
        if self.max_branches < 1:
            raise ConfigError(f"max_branches must be at least 1, got {self.max_branches}")
        if self.max_branch_tokens < 1:
            raise ConfigError(f"max_branch_tokens must be at least 1, got {self.max_branch_tokens}")


_StepResult = tuple[Any, Grown, Probed | None, float]
_StepFuture = concurrent.futures.Future[_StepResult] | asyncio.Future[Any]


class LiveSession:
    """One question answered live (see the module docstring)."""

    def __init__(
        self,
        question: str,
        steps: BranchSteps,
        loop: asyncio.AbstractEventLoop,
        *,
        delta: int,
        limits: LiveLimits | None = None,
        seed: int = 0,
        record: bool = True,
    ) -> None:
        if delta < 1:
            raise ConfigError(f"delta (tokens per interval) must be at least 1, got {delta}")
        self.question = question
        self._steps = steps
        self._loop = loop
        self._delta = delta
        self.limits = limits or LiveLimits()
        self._seed = seed
        self._record = record
        n = self.limits.max_branches
        self._n_total = n
        self._n_open = 0
        self._root: Any = None
        self._branch: list[Any] = []
        self._cursor: list[int] = []
        self._state: list[int] = []
        self._latest: list[str | None] = []
        self._charged: list[int] = []
        self._latency: list[float] = []
        self._cost = 0
        self.prompt_tokens = 0
        """Prompt tokens of every request (grow and probe)."""
        self.probe_tokens = 0
        """Completion tokens the probes generated (not part of :attr:`cost`, as in replay)."""
        self.requests = 0
        self._events: list[tuple[int, int, int, str | None, int, int]] = []
        self._notes: list[tuple[int, str]] = []
        self._started = time.monotonic()
        self._lock = threading.Lock()
        self._pending: dict[int, _StepFuture] = {}
        self._abort: str | None = None
        self.max_branches_hit = False
        self._greenlet: Any = None
        self._driver: asyncio.Task[Any] | None = None
        self.longest_hold = 0.0
        """Longest stretch (seconds) of controller code run on the loop's thread between two switches."""

    # ------------------------------------------------------------------ driving
    def abort(self, reason: str = "cancelled") -> None:
        """End the episode from another thread: in-flight steps are cancelled, the next action stops."""
        with self._lock:
            if self._abort is None:
                self._abort = reason
            pending = list(self._pending.values())
        if not pending:
            return
        if isinstance(pending[0], asyncio.Future) and not self._on_loop_thread():
            for fut in pending:  # asyncio tasks are cancelled on their own loop's thread
                self._loop.call_soon_threadsafe(fut.cancel)
            return
        for fut in pending:
            fut.cancel()

    def _on_loop_thread(self) -> bool:
        try:
            return asyncio.get_running_loop() is self._loop
        except RuntimeError:
            return False

    # ---------------------------------------------------- driving from a greenlet
    async def _drive(self, body: Callable[[], Any]) -> Any:
        """Run ``body`` (the episode) in a greenlet, awaiting here the steps its actions switch out with.

        The session's own task (see the module docstring). Its deadline is one timer for
        the whole episode, which aborts it; an abort cancels the step in flight (this
        task, while it awaits a single step inline).
        """
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            raise OnlineError("a live session's episode must run on the session's own event loop")
        self._driver = asyncio.current_task()
        episode = self._greenlet = greenlet.greenlet(body)
        deadline = self.limits.deadline
        timer = None
        if deadline is not None:
            timer = loop.call_at(loop.time() + deadline - (time.monotonic() - self._started), self.abort, "deadline")
        try:
            jobs = self._resume(episode)
            while not episode.dead:
                jobs = self._resume(episode, await self._await_steps(jobs))
            return jobs  # what body returned
        finally:
            if timer is not None:
                timer.cancel()

    def _resume(self, episode: Any, *outcome: Any) -> Any:
        """Switch into the controller until its next action (or its end); note how long it held the loop."""
        resumed = time.monotonic()
        try:
            return episode.switch(*outcome)
        finally:
            held = time.monotonic() - resumed
            if held > self.longest_hold:
                self.longest_hold = held

    async def _await_steps(
        self, jobs: dict[int, Coroutine[Any, Any, _StepResult]]
    ) -> tuple[bool, dict[int, _StepResult] | BaseException]:
        """Run an action's steps; ``(True, results)`` or ``(False, the exception its action raises)``."""
        driver = self._driver
        if driver is None:
            raise OnlineError("the episode's driver task is not running")
        if len(jobs) > 1:
            tasks = {i: self._loop.create_task(coro) for i, coro in jobs.items()}
            with self._lock:
                self._pending.update(tasks)
            if self._abort is not None:
                for task in tasks.values():
                    task.cancel()
            try:
                await asyncio.wait(tasks.values(), return_when=asyncio.FIRST_EXCEPTION)
            except asyncio.CancelledError:  # the driver itself was cancelled from outside
                driver.uncancel()
                self.abort("cancelled")
            finally:
                with self._lock:
                    for i in tasks:
                        self._pending.pop(i, None)
            not_done = {t for t in tasks.values() if not t.done()}
            for task in not_done:
                task.cancel()
            try:
                return True, self._outcome(tasks, not_done)
            except Exception as exc:  # raised by the action, in the controller's greenlet
                return False, exc
        ((i, coro),) = jobs.items()
        if self._abort is not None:
            coro.close()
            return False, EpisodeStopped(self._abort, self._stop_message(self._abort))
        with self._lock:
            self._pending[i] = driver
        try:
            result = await coro
        except asyncio.CancelledError:  # abort() (a client gone, shutdown, the deadline), or whoever cancelled the task
            driver.uncancel()
            with self._lock:
                if self._abort is None:
                    self._abort = "cancelled"
                reason = self._abort
            return False, EpisodeStopped(reason, self._stop_message(reason))
        except Exception as exc:
            return False, self._step_error(i, exc)
        finally:
            with self._lock:
                self._pending.pop(i, None)
        return True, {i: result}

    def _guard(self, spend: int) -> None:
        if self._abort is not None:
            raise EpisodeStopped(self._abort, self._stop_message(self._abort))
        deadline = self.limits.deadline
        if deadline is not None and time.monotonic() - self._started >= deadline:
            raise EpisodeStopped("deadline", f"the question's deadline of {deadline:g} s has passed")
        budget = self.limits.token_budget
        if budget is not None and self._cost + spend > budget:
            raise EpisodeStopped(
                "token_budget", f"the next action could spend past the token budget ({self._cost} of {budget} spent)"
            )

    def _run(self, jobs: dict[int, Coroutine[Any, Any, _StepResult]]) -> dict[int, _StepResult]:
        """Run one step per branch concurrently on the loop; wait within the deadline."""
        if self._greenlet is not None and greenlet.getcurrent() is self._greenlet:
            return self._run_here(jobs)
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            for coro in jobs.values():
                coro.close()
            raise OnlineError(
                "a live session must be driven from a worker thread or from its episode's greenlet "
                "(autotts.online.runner.start_episode), not from its event loop's own code"
            )
        futs = {}
        with self._lock:
            for i, coro in jobs.items():
                fut = asyncio.run_coroutine_threadsafe(coro, self._loop)
                futs[i] = fut
                self._pending[i] = fut
            if self._abort is not None:
                for fut in futs.values():
                    fut.cancel()
        try:
            deadline = self.limits.deadline
            timeout = None if deadline is None else max(0.0, deadline - (time.monotonic() - self._started))
            if len(futs) == 1:  # open/advance/read: wait on the future itself (no waiter objects)
                only = next(iter(futs.values()))
                try:
                    only.exception(timeout)
                except (concurrent.futures.CancelledError, TimeoutError):
                    pass
                not_done = set() if only.done() else {only}
            else:
                _, not_done = concurrent.futures.wait(
                    futs.values(), timeout=timeout, return_when=concurrent.futures.FIRST_EXCEPTION
                )
            for fut in not_done:
                fut.cancel()
            return self._outcome(futs, not_done)
        finally:
            with self._lock:
                for i in futs:
                    self._pending.pop(i, None)

    def _run_here(self, jobs: dict[int, Coroutine[Any, Any, _StepResult]]) -> dict[int, _StepResult]:
        """:meth:`_run` from the episode's greenlet: switch out to the driver with the steps, back with the results."""
        ok, payload = self._driver_greenlet.switch(jobs)
        if not ok:
            raise payload
        return payload  # type: ignore[no-any-return]

    @property
    def _driver_greenlet(self) -> Any:
        return self._greenlet.parent

    def _outcome(self, futs: dict[int, Any], not_done: set[Any]) -> dict[int, _StepResult]:
        """The steps' results, or the error or stop that ended them (``not_done`` have been cancelled)."""
        for i, fut in futs.items():
            exc = None if (fut in not_done or fut.cancelled()) else fut.exception()
            if exc is not None:
                raise self._step_error(i, exc)
        if not_done or any(f.cancelled() for f in futs.values()):
            deadline = self.limits.deadline
            if self._abort is not None or deadline is None:
                reason = self._abort or "cancelled"
                raise EpisodeStopped(reason, self._stop_message(reason))
            raise EpisodeStopped("deadline", self._stop_message("deadline"))
        return {i: fut.result() for i, fut in futs.items()}

    @staticmethod
    def _step_error(i: int, exc: BaseException) -> BaseException:
        """What an action raises for its step's failure: an :class:`UpstreamError` for the server's."""
        if isinstance(exc, AutoTTSError | OSError | TimeoutError) or type(exc).__module__.startswith(
            ("httpx", "httpcore")
        ):
            error = UpstreamError(f"the LLM server failed on branch {i}: {exc}")
            error.__cause__ = exc
            return error
        return exc

    def _stop_message(self, reason: str) -> str:
        if reason == "deadline" and self.limits.deadline is not None:
            return f"the question's deadline of {self.limits.deadline:g} s has passed"
        return f"the episode was stopped ({reason})"

    async def _root_state(self) -> Any:
        """The empty branch of the question, made on first use (shared by every branch)."""
        if self._root is None:
            self._root = await self._steps.start(self.question)
        return self._root

    async def _grow_probe(self, i: int) -> _StepResult:
        t0 = time.monotonic()
        state = self._branch[i]
        if state is None:  # a fresh branch (the common case below awaits nothing more than its steps)
            state = self._root if self._root is not None else await self._root_state()
        state, grown = await self._steps.grow(state, self._delta, self._seed + i)
        probed = None if grown.finished else await self._steps.probe(state)
        return state, grown, probed, time.monotonic() - t0

    async def _read(self, i: int, max_tokens: int) -> _StepResult:
        t0 = time.monotonic()
        state = self._branch[i]
        if state is None:
            state = self._root if self._root is not None else await self._root_state()
        state, grown = await self._steps.grow(state, max_tokens, self._seed + i)
        return state, grown, None, time.monotonic() - t0

    def _apply(self, action: int, i: int, result: _StepResult) -> Reveal:
        state, grown, probed, seconds = result
        self.requests += 1 if probed is None else 2
        self._branch[i] = state
        self._latency[i] += seconds
        self.prompt_tokens += grown.prompt_tokens
        charge = grown.completion_tokens
        if probed is not None and action != READ:
            self.prompt_tokens += probed.prompt_tokens
            self.probe_tokens += probed.completion_tokens
            self._cursor[i] += 1
            answer = probed.answer
            finished = False
        else:
            answer = self._steps.final_answer(state)
            self._state[i] = _FINISHED
            finished = True
        self._latest[i] = answer
        self._charged[i] += charge
        self._cost += charge
        if self._record:
            depth = 0 if action == READ else self._cursor[i]
            self._events.append((action, i, depth, answer, charge, self._cost))
        return Reveal(i, answer, finished, charge)

    def _new_branch(self) -> int:
        """Append a fresh branch (the caller has checked that the pool has room)."""
        i = self._n_open
        self._n_open = i + 1
        self._branch.append(None)
        self._cursor.append(0)
        self._state.append(_LIVE)
        self._latest.append(None)
        self._charged.append(0)
        self._latency.append(0.0)
        return i

    # ------------------------------------------------------------------ actions
    def open(self) -> Reveal | None:
        """Open the next branch and advance it once; ``None`` when the branch pool is used up."""
        if self._n_open >= self._n_total:
            self.max_branches_hit = True
            return None
        self._guard(self._delta)
        i = self._new_branch()
        result = self._run({i: self._grow_probe(i)})[i]
        return self._apply(OPEN, i, result)

    def advance(self, branch: int) -> Reveal:
        """Advance an opened, live branch by one interval and reveal its latest answer."""
        self._check_advance(branch)
        self._guard(self._delta)
        result = self._run({branch: self._grow_probe(branch)})[branch]
        return self._apply(ADVANCE, branch, result)

    def advance_many(self, branches: Iterable[int]) -> list[Reveal]:
        """Advance several live branches once each, concurrently; results in the given order."""
        ids = list(branches)
        for b in ids:
            self._check_advance(b)
        if len(set(ids)) != len(ids):
            raise IllegalActionError(
                f"ADVANCE_MANY({ids}) is illegal: a branch may appear once per call",
                action=("advance_many", ids),
                state=self.describe(),
            )
        if not ids:
            return []
        self._guard(self._delta * len(ids))
        results = self._run({b: self._grow_probe(b) for b in ids})
        return [self._apply(ADVANCE, b, results[b]) for b in ids]

    def read(self) -> Reveal | None:
        """Run the next fresh branch to its end in one generation; ``None`` when the pool is used up."""
        if self._n_open >= self._n_total:
            self.max_branches_hit = True
            return None
        self._guard(0)
        max_tokens = self.limits.max_branch_tokens
        budget = self.limits.token_budget
        if budget is not None:
            max_tokens = min(max_tokens, budget - self._cost)
            if max_tokens < 1:
                raise EpisodeStopped("token_budget", f"the token budget ({budget}) is spent")
        i = self._new_branch()
        result = self._run({i: self._read(i, max_tokens)})[i]
        return self._apply(READ, i, result)

    def prune(self, branch: int) -> None:
        """Stop a live branch for good; a step still in flight for it is cancelled."""
        if not isinstance(branch, int) or not (0 <= branch < self._n_open):
            raise IllegalActionError(
                f"PRUNE({branch}) is illegal: only branches 0..{self._n_open - 1} are open",
                action=("prune", branch),
                state=self.describe(),
            )
        if self._state[branch]:
            why = "already pruned" if self._state[branch] == _PRUNED else "already finished"
            raise IllegalActionError(
                f"PRUNE({branch}) is illegal: the branch is {why}", action=("prune", branch), state=self.describe()
            )
        with self._lock:
            fut = self._pending.pop(branch, None)
        if fut is not None:
            fut.cancel()
        self._state[branch] = _PRUNED
        if self._record:
            self._events.append((PRUNE, branch, self._cursor[branch], None, 0, self._cost))

    def note(self, text: str) -> None:
        """Attach a remark of the controller's own to the execution trace."""
        if self._record:
            self._notes.append((len(self._events), str(text)))

    def _check_advance(self, branch: int) -> None:
        if not isinstance(branch, int) or isinstance(branch, bool):
            raise IllegalActionError(
                f"ADVANCE({branch!r}) is illegal: branch ids are integers",
                action=("advance", branch),
                state=self.describe(),
            )
        if not (0 <= branch < self._n_open):
            raise IllegalActionError(
                f"ADVANCE({branch}) is illegal: only branches 0..{self._n_open - 1} are open; "
                "open a new branch with open()",
                action=("advance", branch),
                state=self.describe(),
            )
        if self._state[branch]:
            why = "pruned" if self._state[branch] == _PRUNED else "finished (its final answer is already revealed)"
            raise IllegalActionError(
                f"ADVANCE({branch}) is illegal: the branch is {why}", action=("advance", branch), state=self.describe()
            )

    # ----------------------------------------------------------- read-only state
    @property
    def cost(self) -> int:
        """Completion tokens charged so far on this question (the replay cost)."""
        return self._cost

    @property
    def sequential_tokens(self) -> int:
        """Tokens of the longest branch so far: latency when branches decode in parallel."""
        return max(self._charged, default=0)

    @property
    def delta(self) -> int:
        """Tokens per interval (Δ)."""
        return self._delta

    @property
    def n_opened(self) -> int:
        """Branches opened (or read) so far."""
        return self._n_open

    @property
    def n_available(self) -> int:
        """Branches that can still be opened."""
        return self._n_total - self._n_open

    @property
    def n_total(self) -> int:
        """Size of the branch pool (``max_branches``)."""
        return self._n_total

    @property
    def wall_time(self) -> float:
        """Seconds since the episode started."""
        return time.monotonic() - self._started

    @property
    def branch_latency(self) -> tuple[float, ...]:
        """Seconds each opened branch spent waiting on the server."""
        return tuple(self._latency)

    def branch_text(self, branch: int) -> str:
        """The text an opened branch has generated so far (its reasoning)."""
        self._check_opened(branch)
        state = self._branch[branch]
        return "" if state is None else self._steps.text(state)

    def depth(self, branch: int) -> int:
        """Intervals revealed on an opened branch."""
        self._check_opened(branch)
        return self._cursor[branch]

    def is_finished(self, branch: int) -> bool:
        """Whether an opened branch has been read to its end."""
        self._check_opened(branch)
        return self._state[branch] == _FINISHED

    def is_pruned(self, branch: int) -> bool:
        """Whether an opened branch has been pruned."""
        self._check_opened(branch)
        return self._state[branch] == _PRUNED

    def answer(self, branch: int) -> str | None:
        """Latest revealed answer of an opened branch."""
        self._check_opened(branch)
        return self._latest[branch]

    def alive(self) -> list[int]:
        """Opened branches that are neither finished nor pruned, in opening order."""
        return [i for i in range(self._n_open) if self._state[i] == _LIVE]

    @property
    def branches(self) -> tuple[BranchView, ...]:
        """A snapshot of every opened branch."""
        return tuple(
            BranchView(
                i,
                self._cursor[i],
                self._state[i] == _FINISHED,
                self._state[i] == _PRUNED,
                self._latest[i],
                self._charged[i],
            )
            for i in range(self._n_open)
        )

    @property
    def trace(self) -> tuple[TraceEvent, ...]:
        """The recorded execution trace, in the replay session's format."""
        return tuple(
            TraceEvent(step, ACTION_NAMES[a], i, depth, answer, charge, total)
            for step, (a, i, depth, answer, charge, total) in enumerate(self._events)
        )

    @property
    def notes(self) -> tuple[tuple[int, str], ...]:
        """Controller remarks as ``(number of trace events before it, text)``."""
        return tuple(self._notes)

    def describe(self) -> str:
        """A one-line summary of the state, used in error messages."""
        return (
            f"opened={self._n_open}/{self._n_total}, alive={self.alive()}, "
            f"finished={[i for i in range(self._n_open) if self._state[i] == _FINISHED]}, "
            f"pruned={[i for i in range(self._n_open) if self._state[i] == _PRUNED]}, cost={self._cost}"
        )

    def _check_opened(self, branch: int) -> None:
        if not (0 <= branch < self._n_open):
            raise IllegalActionError(
                f"branch {branch} is not open (open branches: 0..{self._n_open - 1})",
                action=("inspect", branch),
                state=self.describe(),
            )

    # ------------------------------------------- original AutoTTS compatibility
    def probe_new(self) -> tuple[str, int, bool]:
        """Open the next branch and advance it once: ``(answer, branch_id, finished)``."""
        r = self.open()
        if r is None:
            raise StoreExhaustedError(f"all {self._n_total} branches have been opened")
        return r.answer, r.branch, r.finished

    def probe_more(self, index: int) -> tuple[str, bool]:
        """Advance branch ``index`` once: ``(answer, finished)``."""
        r = self.advance(index)
        return r.answer, r.finished

    def get_new_branch_final_answer(self) -> str:
        """Full-read the next branch and return its final answer."""
        r = self.read()
        if r is None:
            raise StoreExhaustedError(f"all {self._n_total} branches have been opened")
        return r.answer

    def get_seq_and_total_tokens(self) -> tuple[int, int]:
        """``(sequential tokens, total tokens)`` spent so far."""
        return self.sequential_tokens, self._cost
