"""The live session's own rules: limits end episodes with the best answer so far, abort, illegal actions, errors."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from autotts.controllers import ControllerSpec
from autotts.env.protocols import shuffle_order
from autotts.env.session import ReplaySession
from autotts.errors import ControllerError, IllegalActionError
from autotts.llm import RetryPolicy
from autotts.online import LiveLimits, LiveRunner, OnlineError, Placement, UpstreamError, run_episode, start_episode
from autotts.online.upstream import RecipeSteps
from autotts.testing import tiny_store
from autotts.testing.replay_server import Fault, ReplayLLMServer
from tests.online_support import RECIPE, offline, replay_server

STORE = tiny_store(seed=8, questions=2, branches=16, delta=2000)
DELTA = STORE.questions[0].delta
Q = STORE.questions[0].text
DATA = Path(__file__).parent / "data" / "published_style_controllers.py"


def _runner(srv: ReplayLLMServer, placement: Placement = Placement.AUTO, **connect: Any) -> LiveRunner:
    url = srv.openai_base_url
    return LiveRunner(lambda: RecipeSteps.connect([url], "replay", RECIPE, **connect), delta=DELTA, placement=placement)


@pytest.fixture(scope="module")
def live() -> Iterator[LiveRunner]:
    with replay_server(STORE) as srv, _runner(srv) as r:
        yield r


def test_token_budget_stops_with_the_best_answer_so_far(live: LiveRunner) -> None:
    spec = ControllerSpec.parse("cmc:beta=1")
    _, ref = offline(STORE, spec, 0, run=0)
    budget = ref.cost // 3
    got = live.solve(spec.build(), Q, seed=0, limits=LiveLimits(token_budget=budget, max_branches=16))
    assert got.stop_reason == "token_budget"
    assert 0 < got.cost <= budget
    assert got.trace == ref.trace[: len(got.trace)], "the live episode left the replay path"
    finals = [e.answer for e in got.trace if e.action == "advance" and e.answer != "ERR"]
    assert got.answer is not None and got.answer in {e.answer for e in got.trace}
    assert finals  # cmc reveals answers early: a best answer exists


def test_max_branches_is_the_branch_pool(live: LiveRunner) -> None:
    got = live.solve(ControllerSpec.parse("sc:n=8").build(), Q, seed=0, limits=LiveLimits(max_branches=3))
    assert (got.stop_reason, got.branches) == ("max_branches", 3)
    q = STORE.replay[0]
    ref = ReplaySession(q, shuffle_order(q.n_branches, 0)[:3])
    assert ControllerSpec.parse("sc:n=8").build().solve(ref) == got.answer
    assert got.cost == ref.cost


@pytest.mark.parametrize("placement", [Placement.LOOP, Placement.THREADS])
def test_deadline_cancels_the_running_step(placement: Placement) -> None:
    with replay_server(STORE, latency=0.1) as srv, _runner(srv, placement) as live:
        t0 = time.monotonic()
        got = live.solve(ControllerSpec.parse("cmc:beta=1").build(), Q, limits=LiveLimits(deadline=0.8))
        took = time.monotonic() - t0
    assert got.stop_reason == "deadline"
    assert took < 3.0
    assert got.seconds >= 0.8


def test_abort_from_another_thread_stops_an_episode_on_the_loop() -> None:
    with replay_server(STORE, latency=0.05) as srv, _runner(srv) as live:
        session = live.session(Q)
        threading.Timer(0.5, session.abort, args=("shutdown",)).start()
        controller = ControllerSpec.parse("cmc:beta=1").build()

        async def on_loop() -> Any:
            return await start_episode(controller, session)

        t0 = time.monotonic()
        got = live._loop.run(on_loop())  # type: ignore[union-attr]
        assert got.stop_reason == "shutdown" and time.monotonic() - t0 < 2.0
        assert session.longest_hold < 0.5  # the controller itself held the loop only briefly


class _ComputesThenFails:
    """Opens a branch, computes for 0.2 s without acting, then fails."""

    def solve(self, session: Any) -> str:
        session.open()
        end = time.monotonic() + 0.2
        while time.monotonic() < end:
            pass
        raise ValueError("a bug after a long think")


def test_a_failing_controller_on_the_loop_is_a_controller_error_and_its_hold_is_recorded(live: LiveRunner) -> None:
    session = live.session(Q)

    async def on_loop() -> Any:
        return await start_episode(_ComputesThenFails(), session, label="fails")

    with pytest.raises(ControllerError, match="a bug after a long think"):
        live._loop.run(on_loop())  # type: ignore[union-attr]
    assert 0.2 <= session.longest_hold < 5


def test_abort_from_another_thread() -> None:
    with replay_server(STORE, latency=0.05) as srv, _runner(srv) as live:
        session = live.session(Q)
        threading.Timer(0.5, session.abort, args=("shutdown",)).start()
        t0 = time.monotonic()
        got = run_episode(ControllerSpec.parse("cmc:beta=1").build(), session)
        assert got.stop_reason == "shutdown" and time.monotonic() - t0 < 2.0


def test_illegal_actions_are_refused_like_replay(live: LiveRunner) -> None:
    s = live.session(Q)
    with pytest.raises(IllegalActionError, match="only branches"):
        s.advance(0)
    r = s.open()
    assert r is not None and s.alive() == [0] and s.depth(0) == 1
    s.prune(0)
    with pytest.raises(IllegalActionError, match="pruned"):
        s.advance(0)
    with pytest.raises(IllegalActionError, match="already pruned"):
        s.prune(0)
    with pytest.raises(IllegalActionError, match="integers"):
        s.advance("0")  # type: ignore[arg-type]
    read = s.read()
    assert read is not None and read.finished and s.is_finished(1)
    with pytest.raises(IllegalActionError, match="finished"):
        s.advance_many([1])
    assert s.get_seq_and_total_tokens() == (s.sequential_tokens, s.cost)
    assert [e.action for e in s.trace] == ["open", "prune", "read"]


def test_published_style_controller_files_run_unchanged(live: LiveRunner) -> None:
    for cls in ("AdaptiveConsistency", "ParallelProbe"):
        spec = ControllerSpec.parse(f"{DATA}:{cls}")
        for run in (0, 3):
            answer, ref = offline(STORE, spec, 1, run)
            got = live.solve(spec.build(), STORE.questions[1].text, seed=run * 16, limits=LiveLimits(max_branches=16))
            assert (got.answer, got.cost, got.trace) == (answer, ref.cost, ref.trace), (cls, run)


@pytest.mark.parametrize("placement", [Placement.LOOP, Placement.THREADS])
def test_upstream_failure_is_an_upstream_error(placement: Placement) -> None:
    with (
        replay_server(STORE, fault=lambda info: Fault("error", status=503)) as srv,
        _runner(srv, placement, policy=RetryPolicy(max_retries=1, backoff_seconds=0.01)) as live,
    ):
        with pytest.raises(UpstreamError, match="503"):
            live.solve(ControllerSpec.parse("sc:n=2").build(), Q)


def test_driving_from_the_event_loop_thread_is_refused(live: LiveRunner) -> None:
    import asyncio

    session = live.session(Q)

    async def on_loop() -> None:
        session.open()

    with pytest.raises(OnlineError, match="worker thread"):
        asyncio.run_coroutine_threadsafe(on_loop(), live._loop.loop).result(10)  # type: ignore[union-attr]
