"""The formal decision process: actions, budget, probe price, agreement with the session."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autotts.env import Action, ActionKind, Probe, ReplayEnv, ReplaySession, check_env, check_session
from autotts.errors import BudgetExceededError, IllegalActionError
from autotts.evaluation import shuffle_order
from autotts.store.schema import intern_question
from tests.test_session import BRANCHES, branch_strategy, make_question


def env_for(branches, order=None, **kw) -> ReplayEnv:  # type: ignore[no-untyped-def]
    replay, _ = intern_question(make_question(branches))
    return ReplayEnv(replay, order, **kw)


def test_branch_continue_probe_costs() -> None:
    env = env_for(BRANCHES, probe_price=0.1)
    assert env.step(Action.new_branch()).cost == 0
    assert env.step(Action.cont(0)).cost == 500
    r = env.step(Action.probe(0))
    assert r.cost == pytest.approx(50)
    assert r.observation.revealed == (Probe(0, 1, "ERR"),)
    with pytest.raises(IllegalActionError, match="already probed"):
        env.step(Action.probe(0))
    for _ in range(2):
        env.step(Action.cont(0))
    end = env.step(Action.cont(0))  # intervals exhausted: decode to the end
    assert end.cost == 0 and end.observation.finished == (True,)
    assert end.observation.revealed[-1] == Probe(0, 3, "7", final=True)
    assert end.observation.cost == pytest.approx(1550)
    done = env.step(Action.answer_with("7"))
    assert done.terminated and done.answer == "7"
    with pytest.raises(IllegalActionError, match="ended"):
        env.step(Action.new_branch())


def test_probe_needs_a_decoded_interval() -> None:
    env = env_for(BRANCHES)
    env.step(Action.new_branch())
    with pytest.raises(IllegalActionError, match="CONTINUE first") as info:
        env.step(Action.probe(0))
    assert info.value.action == Action.probe(0)
    assert info.value.state.opened == 1


def test_budget_refuses_without_changing_state() -> None:
    env = env_for(BRANCHES, budget=1000)
    env.step(Action.new_branch())
    env.step(Action.cont(0))
    env.step(Action.cont(0))
    before = env.observation()
    with pytest.raises(BudgetExceededError, match="budget"):
        env.step(Action.cont(0))
    assert env.observation() == before
    assert before.remaining_budget == 0


def test_legal_actions_are_all_legal() -> None:
    env = env_for(BRANCHES)
    env.step(Action.new_branch())
    env.step(Action.cont(0))
    kinds = {(a.kind, a.branch) for a in env.legal_actions()}
    assert (ActionKind.PROBE, 0) in kinds and (ActionKind.BRANCH, None) in kinds


@settings(max_examples=80, deadline=None)
@given(st.lists(branch_strategy, min_size=1, max_size=5), st.lists(st.integers(0, 9), max_size=30))
def test_session_advance_equals_continue_plus_probe(branches, choices) -> None:  # type: ignore[no-untyped-def]
    """With κ_probe = 0 the session's advance is CONTINUE then PROBE: same reveals, same cost."""
    replay, _ = intern_question(make_question(branches))
    order = list(range(len(branches)))[::-1]
    session = ReplaySession(replay, order)
    env = ReplayEnv(replay, order)
    for c in choices:
        alive = session.alive()
        if c < 3 or not alive:
            r = session.open()
            if r is None:
                if not alive:
                    break
                continue
            env.step(Action.new_branch())
        else:
            r = session.advance(alive[c % len(alive)])
        env.step(Action.cont(r.branch))
        if not r.finished:
            env.step(Action.probe(r.branch))
        last = env.observation().revealed[-1]
        assert (last.branch, last.answer, last.final) == (r.branch, r.answer, r.finished)
        assert env.cost == session.cost


def test_checker_rejects_a_broken_backend() -> None:
    class Leaky(ReplayEnv):
        def step(self, action):  # type: ignore[no-untyped-def]
            result = super().step(action)
            self._cost -= 1  # cost decreases: must be caught
            return result

    replay, _ = intern_question(make_question(BRANCHES))
    from autotts.env import EnvCheckError

    with pytest.raises(EnvCheckError):
        check_env(lambda: Leaky(replay), episodes=3)


def _tiny_backends():  # type: ignore[no-untyped-def]
    from autotts.testing import tiny_store

    replay, _ = intern_question(make_question(BRANCHES * 4))
    large = tiny_store(seed=5, questions=1, branches=12).replay[0]
    small = tiny_store(seed=6, questions=1, branches=12, profile="small").replay[0]
    return [("hand-built", replay), ("synthetic-large", large), ("synthetic-small", small)]


@pytest.mark.parametrize(("name", "replay"), _tiny_backends())
def test_checker_on_hand_built_backend(name, replay) -> None:  # type: ignore[no-untyped-def]
    check_env(lambda: ReplayEnv(replay, budget=20_000, probe_price=0.25), episodes=10)
    check_env(lambda: ReplayEnv(replay), episodes=10)
    check_session(lambda rec: ReplaySession(replay, shuffle_order(replay.n_branches, 1), record=rec), episodes=5)


@pytest.mark.shared_data
def test_checker_on_shared_store(qwen4b_aime24) -> None:  # type: ignore[no-untyped-def]
    for q in qwen4b_aime24.replay[:3]:
        order = shuffle_order(q.n_branches, 7)
        check_env(lambda q=q, order=order: ReplayEnv(q, order, budget=200_000), episodes=5)
        check_session(lambda rec, q=q, order=order: ReplaySession(q, order, record=rec), episodes=5)
