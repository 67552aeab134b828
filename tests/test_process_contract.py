"""The formal decision process's contract in detail: observations, refusals and what they report.

Written from the surviving mutants of ``bench/mutation.py session``: every field of an
observation, every refusal's message, ``action`` and ``state``, and ``legal_actions``
are pinned, since a policy (or a user debugging one) reads exactly these.
"""

from __future__ import annotations

import enum

import pytest

from autotts.env import Action, ActionKind, Probe, ReplayEnv
from autotts.env.process import Observation
from autotts.errors import BudgetExceededError, IllegalActionError
from autotts.store.schema import Branch, Question, intern_question

DELTA = 500
# Store branches: 0 has three probes, 1 none (300 tokens), 2 two probes.
BRANCHES = (Branch(("ERR", "5", "7"), 1200, "7"), Branch((), 300, "9"), Branch(("1", "7"), 1800, "7"))


def env_for(order: tuple[int, ...] | None = None, **kw: float | None) -> ReplayEnv:
    replay, _ = intern_question(Question("q", "what?", "7", DELTA, BRANCHES))
    return ReplayEnv(replay, order, **kw)  # type: ignore[arg-type]


def test_action_names() -> None:
    assert str(Action.new_branch()) == "BRANCH"
    assert str(Action.cont(2)) == "CONTINUE(2)"
    assert str(Action.probe(0)) == "PROBE(0)"
    assert str(Action.prune(1)) == "PRUNE(1)"
    assert str(Action.answer_with("7")) == "ANSWER('7')"
    assert str(Action.answer_with(None)) == "ANSWER(None)"


def test_construction_checks_the_price_and_budget() -> None:
    with pytest.raises(IllegalActionError, match=r"probe price κ_probe must be >= 0, got -0\.5"):
        env_for(probe_price=-0.5)
    with pytest.raises(IllegalActionError, match=r"budget must be >= 0, got -1"):
        env_for(budget=-1)
    # The edges are allowed: a zero budget (only free actions) and a fractional one.
    zero = env_for(budget=0)
    assert zero.step(Action.new_branch()).cost == 0
    with pytest.raises(BudgetExceededError):
        zero.step(Action.cont(0))
    assert env_for(budget=0.5).observation().budget == 0.5


def test_observations_report_every_field() -> None:
    env = env_for(budget=5000)
    first = env.observation()
    assert first == Observation(
        opened=0,
        available=3,
        active=(),
        depths=(),
        finished=(),
        pruned=(),
        revealed=(),
        cost=0.0,
        budget=5000,
        terminated=False,
    )
    assert first.terminated is False and first.remaining_budget == 5000
    env.step(Action.new_branch())
    env.step(Action.new_branch())
    env.step(Action.new_branch())
    env.step(Action.cont(0))
    env.step(Action.probe(0))
    env.step(Action.cont(1))  # no probes: decodes to the end (300 tokens)
    r = env.step(Action.prune(2))
    assert r.answer is None and r.terminated is False and r.cost == 0
    assert r.observation == Observation(
        opened=3,
        available=0,
        active=(0,),
        depths=(1, 0, 0),
        finished=(False, True, False),
        pruned=(False, False, True),
        revealed=(Probe(0, 1, "ERR"), Probe(1, 0, "9", final=True)),
        cost=800.0,
        budget=5000,
        terminated=False,
    )
    assert r.observation.remaining_budget == 4200
    done = env.step(Action.answer_with("9"))
    assert (done.terminated, done.answer, done.observation.terminated) == (True, "9", True)
    # A reset starts over, in a new order when given one.
    assert env.reset((2, 1, 0)) == Observation(0, 3, (), (), (), (), (), 0.0, 5000, False)
    env.step(Action.new_branch())
    env.step(Action.cont(0))
    assert env.step(Action.probe(0)).observation.revealed == (Probe(0, 1, "1"),)  # store branch 2 first
    assert env.reset().revealed == () and env.step(Action.new_branch()).observation.available == 2


def refusal(env: ReplayEnv, action: object) -> IllegalActionError:
    before = env.observation()
    with pytest.raises(IllegalActionError) as info:
        env.step(action)  # type: ignore[arg-type]
    assert info.value.action == action
    assert info.value.state == before
    assert env.observation() == before  # refused actions change nothing
    return info.value


def test_every_refusal_names_the_action_the_reason_and_the_state() -> None:
    env = env_for()
    env.step(Action.new_branch())
    env.step(Action.cont(0))
    state = "[state: opened=1/3, active=[0], depths=[1], cost=500, terminated=False]"
    cases = [
        (Action.cont(True), "CONTINUE(True) is illegal: it needs an integer branch id"),  # type: ignore[arg-type]
        (Action(ActionKind.PROBE, None), "PROBE is illegal: it needs an integer branch id"),
        (Action.cont(1), "CONTINUE(1) is illegal: branch 1 is not open (open: 0..0)"),
        (Action.prune(-1), "PRUNE(-1) is illegal: branch -1 is not open (open: 0..0)"),
    ]
    for action, message in cases:
        assert str(refusal(env, action)) == f"{message} {state}"
    env.step(Action.probe(0))
    assert str(refusal(env, Action.probe(0))).startswith("PROBE(0) is illegal: branch 0 was already probed at depth 1")
    env.step(Action.prune(0))
    assert str(refusal(env, Action.cont(0))) == (
        "CONTINUE(0) is illegal: branch 0 is pruned "
        "[state: opened=1/3, active=[], depths=[1], cost=500, terminated=False]"
    )
    env.step(Action.new_branch())
    env.step(Action.cont(1))  # finished
    assert str(refusal(env, Action.probe(1))).startswith("PROBE(1) is illegal: branch 1 is finished [state:")
    env.step(Action.new_branch())
    assert str(refusal(env, Action.new_branch())).startswith("BRANCH is illegal: every branch has been opened")
    assert "expected an Action, got 'BRANCH'" in str(refusal(env, "BRANCH"))
    env.step(Action.answer_with(None))
    msg = str(refusal(env, Action.new_branch()))
    assert msg.startswith("BRANCH is illegal: the episode has ended (ANSWER was taken); call reset()")
    assert msg.endswith("terminated=True]")


def test_budget_refusals_report_the_charge_and_what_remains() -> None:
    env = env_for(budget=800, probe_price=0.5)
    env.step(Action.new_branch())
    env.step(Action.cont(0))
    before = env.observation()
    with pytest.raises(BudgetExceededError) as info:
        env.step(Action.cont(0))
    assert str(info.value) == "CONTINUE(0) would charge 500 tokens but only 300 of the budget 800 remain"
    assert info.value.action == Action.cont(0) and info.value.state == before
    env.step(Action.probe(0))  # 250 tokens: fits
    with pytest.raises(BudgetExceededError, match=r"CONTINUE\(0\) would charge 500 tokens but only 50 of"):
        env.step(Action.cont(0))
    assert env.cost == 750
    # The final interval's remainder and a probe are refused the same way, naming the action.
    env_tight = env_for(budget=200, probe_price=1.0)
    env_tight.step(Action.new_branch())
    env_tight.step(Action.new_branch())
    with pytest.raises(BudgetExceededError) as info:
        env_tight.step(Action.cont(1))
    assert info.value.action == Action.cont(1)
    assert str(info.value) == "CONTINUE(1) would charge 300 tokens but only 200 of the budget 200 remain"
    probing = env_for(budget=600, probe_price=1.0)
    probing.step(Action.new_branch())
    probing.step(Action.cont(0))
    with pytest.raises(BudgetExceededError) as info:
        probing.step(Action.probe(0))
    assert info.value.action == Action.probe(0)
    assert str(info.value) == "PROBE(0) would charge 500 tokens but only 100 of the budget 600 remain"


class Other(enum.Enum):
    JUMP = "JUMP"


def test_an_action_of_no_known_kind_is_refused() -> None:
    env = env_for()
    bogus = Action(Other.JUMP)  # type: ignore[arg-type]
    assert str(refusal(env, bogus)) == (
        "JUMP is illegal: unknown action kind [state: opened=0/3, active=[], depths=[], cost=0, terminated=False]"
    )


def test_legal_actions_follow_the_state() -> None:
    env = env_for()
    assert env.legal_actions() == [Action.new_branch(), Action.answer_with(None)]
    env.step(Action.new_branch())
    env.step(Action.new_branch())
    # Depth 0: nothing to probe yet.
    assert env.legal_actions() == [
        Action.new_branch(),
        Action.cont(0),
        Action.prune(0),
        Action.cont(1),
        Action.prune(1),
        Action.answer_with(None),
    ]
    env.step(Action.cont(1))  # branch 1 has no probes: finished; branch 0 is still listed after it
    env.step(Action.cont(0))
    assert env.legal_actions() == [
        Action.new_branch(),
        Action.cont(0),
        Action.probe(0),
        Action.prune(0),
        Action.answer_with(None),
    ]
    env.step(Action.prune(0))
    env.step(Action.new_branch())
    assert env.legal_actions() == [Action.cont(2), Action.prune(2), Action.answer_with(None)]
    env.step(Action.answer_with("x"))
    assert env.legal_actions() == []
