"""Running one live episode: a controller, a live session, and the record of what happened.

:func:`run_episode` calls ``controller.solve(session)`` on the calling thread (never
the event loop's) and turns every way an episode can end into a :class:`LiveResult`
with a stop reason:

* ``answered`` — the controller returned an answer;
* ``max_branches`` — it did so after the branch pool ran out under it;
* ``token_budget`` / ``deadline`` / ``cancelled`` (or any reason passed to
  :meth:`LiveSession.abort`) — a limit stopped it, and the answer is the best one
  revealed so far: the majority of finished branches' answers, else of the latest
  probes, ignoring ``ERR`` (first seen wins ties, as in every vote of the project).

Upstream failures propagate as :class:`~autotts.online.errors.UpstreamError`; a bug in a
controller propagates as :class:`~autotts.errors.ControllerError`.

:func:`start_episode` runs the same thing in a greenlet on the event loop's own thread,
for controllers that decide quickly (see :class:`Placement` and the live session's
module docstring for why).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from autotts.controllers.base import Controller
from autotts.env.session import TraceEvent
from autotts.errors import AutoTTSError, ControllerError
from autotts.online.errors import EpisodeStopped, OnlineError, UpstreamError
from autotts.online.session import LiveLimits, LiveSession
from autotts.online.steps import BranchSteps
from autotts.store.schema import ERR
from autotts.voting import majority


@dataclass(frozen=True, slots=True)
class LiveResult:
    """Everything one live episode produced."""

    answer: str | None
    stop_reason: str
    cost: int
    """Completion tokens charged, with the replay meaning."""
    prompt_tokens: int
    probe_tokens: int
    sequential_tokens: int
    branches: int
    requests: int
    seconds: float
    branch_latency: tuple[float, ...]
    trace: tuple[TraceEvent, ...]
    notes: tuple[tuple[int, str], ...]
    reasoning: str
    """Text of one branch that reached the answer ('' when none did)."""

    @property
    def completion_tokens(self) -> int:
        """All completion tokens generated: branches plus probes."""
        return self.cost + self.probe_tokens

    def summary(self) -> dict[str, Any]:
        """A JSON-ready digest (no trace events): what the proxy's ``autotts`` field carries."""
        actions: dict[str, int] = {}
        for e in self.trace:
            actions[e.action] = actions.get(e.action, 0) + 1
        return {
            "stop_reason": self.stop_reason,
            "branches": self.branches,
            "tokens": self.cost,
            "probe_tokens": self.probe_tokens,
            "prompt_tokens": self.prompt_tokens,
            "sequential_tokens": self.sequential_tokens,
            "requests": self.requests,
            "seconds": round(self.seconds, 4),
            "actions": actions,
            "branch_latency": [round(s, 4) for s in self.branch_latency],
        }


def best_answer(session: LiveSession) -> str | None:
    """The best answer revealed so far (see the module docstring)."""
    views = session.branches
    finals = [v.answer for v in views if v.finished and v.answer not in (None, ERR)]
    if finals:
        return majority(finals)
    latest = [v.answer for v in views if v.answer not in (None, ERR)]
    return majority(latest) if latest else None


def run_episode(controller: Controller, session: LiveSession, *, label: str = "controller") -> LiveResult:
    """Run ``controller`` on ``session`` to the end (see the module docstring)."""
    try:
        answer = controller.solve(session)  # type: ignore[arg-type]  # same API as ReplaySession
        reason = "max_branches" if session.max_branches_hit else "answered"
        if answer is not None and not isinstance(answer, str):
            answer = str(answer)
    except EpisodeStopped as exc:
        answer, reason = best_answer(session), exc.reason
    except UpstreamError:
        raise
    except AutoTTSError as exc:
        raise ControllerError(f"controller {label} failed: {exc}", controller=label) from exc
    except Exception as exc:
        raise ControllerError(f"controller {label} raised {type(exc).__name__}: {exc}", controller=label) from exc
    reasoning = ""
    if answer is not None:
        for v in session.branches:
            if v.answer == answer:
                reasoning = session.branch_text(v.id)
                if v.finished:
                    break
    return LiveResult(
        answer=answer,
        stop_reason=reason,
        cost=session.cost,
        prompt_tokens=session.prompt_tokens,
        probe_tokens=session.probe_tokens,
        sequential_tokens=session.sequential_tokens,
        branches=session.n_opened,
        requests=session.requests,
        seconds=session.wall_time,
        branch_latency=session.branch_latency,
        trace=session.trace,
        notes=session.notes,
        reasoning=reasoning,
    )


class Placement(StrEnum):
    """Where a live episode's controller code runs.

    * ``auto`` (the default): built-in controllers (classes of the ``autotts.controllers``
      package, which decide in microseconds) on the event loop, in greenlets; every other
      controller (a file, a discovered controller, a class given from Python) in a worker thread;
    * ``loop``: every controller on the event loop — only for controllers known to decide
      quickly: while controller code runs between two actions, no other request's I/O runs;
    * ``threads``: every controller in a worker thread (two thread wake-ups per action).
    """

    AUTO = "auto"
    LOOP = "loop"
    THREADS = "threads"


def runs_on_loop(controller: Controller, placement: Placement) -> bool:
    """Whether ``controller`` runs on the event loop under ``placement``."""
    if placement is Placement.AUTO:
        return type(controller).__module__.startswith("autotts.controllers.")
    return placement is Placement.LOOP


def start_episode(
    controller: Controller, session: LiveSession, *, label: str = "controller"
) -> asyncio.Future[LiveResult]:
    """Start :func:`run_episode` in a greenlet on the running event loop; the returned task gets the result.

    Call it on the session's loop. The episode's task switches into the controller's
    greenlet, awaits the steps each action switches out with, and switches back in with
    their results (see the live session's module docstring). ``session.longest_hold``
    tells afterwards how long the controller held the loop in one go at most.
    """
    loop = asyncio.get_running_loop()
    if session._loop is not loop:
        raise OnlineError("start_episode must be called on the live session's own event loop")
    task: asyncio.Future[LiveResult] = loop.create_task(
        session._drive(lambda: run_episode(controller, session, label=label))
    )
    return task


class LoopThread:
    """An asyncio event loop in a daemon thread, for driving live sessions from plain threads."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, name="autotts-live-loop", daemon=True)
        self._thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()
        self.loop.close()

    def run(self, coro: Any, timeout: float | None = None) -> Any:
        """Run a coroutine on the loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        """Stop the loop and join its thread."""
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)

    def __enter__(self) -> LoopThread:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class LiveRunner:
    """Answer questions live from plain (non-async) code: ``with LiveRunner(connect, delta=500) as live: ...``.

    ``connect`` is an async factory of the upstream steps (for example
    ``lambda: RecipeSteps.connect([url], model)``); it runs on the runner's own event
    loop thread, where every later model call runs too. :meth:`solve` may be called
    from several threads at once: each call has its own session. ``placement`` says where
    :meth:`solve` runs the controller (:class:`Placement`: built-ins on the runner's loop,
    others in the calling thread, by default); a session from :meth:`session` is always
    driven from the calling thread.
    """

    def __init__(
        self,
        connect: Callable[[], Awaitable[BranchSteps]],
        *,
        delta: int,
        limits: LiveLimits | None = None,
        placement: Placement = Placement.AUTO,
    ) -> None:
        self._connect = connect
        self.delta = delta
        self.limits = limits or LiveLimits()
        self.placement = placement
        self._loop: LoopThread | None = None
        self.steps: BranchSteps | None = None

    def __enter__(self) -> LiveRunner:
        self._loop = LoopThread()
        try:
            self.steps = self._loop.run(self._connect())
        except BaseException:
            self._loop.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None:
            close = getattr(self.steps, "aclose", None)
            if close is not None:
                self._loop.run(close(), timeout=30)
            self._loop.stop()
            self._loop = None

    def session(self, question: str, *, seed: int = 0, limits: LiveLimits | None = None) -> LiveSession:
        """A fresh live session for ``question`` (branch ``i`` samples with seed ``seed + i``)."""
        if self._loop is None or self.steps is None:
            raise OnlineError("the live runner is not open; use it in a with block")
        return LiveSession(
            question, self.steps, self._loop.loop, delta=self.delta, limits=limits or self.limits, seed=seed
        )

    def solve(
        self, controller: Controller, question: str, *, seed: int = 0, limits: LiveLimits | None = None
    ) -> LiveResult:
        """Run ``controller`` on ``question`` live: on the runner's loop or in this thread (see :class:`Placement`)."""
        label = getattr(controller, "name", "") or type(controller).__name__
        session = self.session(question, seed=seed, limits=limits)
        if not runs_on_loop(controller, self.placement):
            return run_episode(controller, session, label=label)

        async def on_loop() -> LiveResult:
            return await start_episode(controller, session, label=label)

        if self._loop is None:
            raise OnlineError("the live runner is not open; use it in a with block")
        result: LiveResult = self._loop.run(on_loop())
        return result
