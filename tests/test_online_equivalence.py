"""Offline ≡ online: every built-in controller, live through the replay server, equals offline replay.

The live path is the real one: the collection recipe's grow and probe steps over the
one HTTP client, against a real HTTP server on 127.0.0.1 serving the store. Answers,
token costs, sequential tokens and whole action traces must be identical, with the
controller on the event loop (a greenlet, what the proxy does for built-ins) and in a
thread of its own.
"""

from __future__ import annotations

import pytest

from autotts.controllers import ControllerSpec, registry
from autotts.env.protocols import shuffle_order
from autotts.env.session import ReplaySession
from autotts.online import LiveLimits, LiveRunner, Placement
from autotts.online.upstream import RecipeSteps
from autotts.testing import tiny_store
from tests.online_support import RECIPE, offline, replay_server

# Several settings per controller: β for the β-controllers, their own knobs for the others
# (kept small so that a test run stays in seconds).
SETTINGS = {
    "sc": ["sc:n=1", "sc:n=5"],
    "asc": ["asc:max_samples=8,threshold=0.9", "asc:max_samples=16,threshold=0.99"],
    "esc": ["esc:max_samples=8,window=2", "esc:max_samples=16,window=4"],
    "cmc": ["cmc:beta=0", "cmc:beta=0.5", "cmc:beta=1"],
    "consistency-exit": ["consistency-exit:beta=0", "consistency-exit:beta=0.6", "consistency-exit:beta=1"],
    "wide-commit": ["wide-commit:beta=0", "wide-commit:beta=0.5", "wide-commit:beta=1"],
    "parallel-probe": ["parallel-probe:chains=4,T=6,warm_up=2", "parallel-probe:chains=8,T=12,warm_up=3,burst=2"],
}
RUNS = (0, 7)

# Δ = 2000 keeps branches at a handful of intervals, so that a live episode is a few dozen requests.
STORE = tiny_store(seed=3, questions=3, branches=16, delta=2000)


@pytest.fixture(scope="module", params=[Placement.LOOP, Placement.THREADS], ids=["loop", "threads"])
def live(request):  # type: ignore[no-untyped-def]
    """A live runner whose controllers run on its event loop (greenlets) or in the calling thread."""
    with replay_server(STORE) as srv:
        url = srv.openai_base_url
        connect = lambda: RecipeSteps.connect([url], "replay", RECIPE)  # noqa: E731
        with LiveRunner(connect, delta=STORE.questions[0].delta, placement=request.param) as r:
            yield r


def test_every_builtin_controller_is_covered() -> None:
    assert set(SETTINGS) == set(registry()), "a new built-in controller needs its settings here"


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.parametrize("text", [s for specs in SETTINGS.values() for s in specs])
def test_live_equals_replay(live, text: str) -> None:  # type: ignore[no-untyped-def]
    spec = ControllerSpec.parse(text)
    for run in RUNS:
        for qi, q in enumerate(STORE.replay):
            answer, ref = offline(STORE, spec, qi, run)
            limits = LiveLimits(max_branches=q.n_branches)
            got = live.solve(spec.build(), STORE.questions[qi].text, seed=run * q.n_branches, limits=limits)
            where = f"{spec.label} run {run} question {qi}"
            assert got.answer == answer, where
            assert got.cost == ref.cost, where
            assert got.sequential_tokens == ref.sequential_tokens, where
            assert got.trace == ref.trace, where
            assert got.stop_reason in ("answered", "max_branches")
            assert got.branches == ref.n_opened


class _Lockstep:
    """Advances all its branches together with advance_many (which built-ins do not use)."""

    def __init__(self, width: int = 5) -> None:
        self.width = width

    def solve(self, session):  # type: ignore[no-untyped-def]
        ids = [r.branch for r in (session.open() for _ in range(self.width)) if r is not None and not r.finished]
        last = {}
        while ids:
            reveals = session.advance_many(ids)
            for r in reveals:
                last[r.branch] = r.answer
            ids = [r.branch for r in reveals if not r.finished]
            if len(ids) > 2:
                session.prune(ids.pop())
        return max(sorted(last.values()), key=list(last.values()).count) if last else None


@pytest.mark.integration
def test_advance_many_runs_concurrently_with_the_replay_trace(live) -> None:  # type: ignore[no-untyped-def]
    q = STORE.replay[0]
    ref = ReplaySession(q, shuffle_order(q.n_branches, 2))
    ref_answer = _Lockstep().solve(ref)
    got = live.solve(_Lockstep(), STORE.questions[0].text, seed=2 * q.n_branches)
    assert (got.answer, got.cost, got.trace) == (ref_answer, ref.cost, ref.trace)
