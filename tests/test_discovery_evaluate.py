"""Candidate scoring: the perturbation behind the leak test, every status, grading and β checks."""

from __future__ import annotations

import inspect
import random
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autotts.controllers import ControllerSpec
from autotts.controllers.base import registry
from autotts.discovery.evaluate import EvalContext, evaluate_candidate
from autotts.discovery.leak import perturb_question
from autotts.discovery.monotone import full_budget_findings, monotone_findings
from autotts.discovery.records import CurvePoint, Status
from autotts.discovery.sandbox import SandboxLimits
from autotts.env.session import ReplaySession
from autotts.evaluation import run_cell
from autotts.evaluation.protocols import Protocol
from tests.discovery_support import (
    FORBIDDEN_IMPORT,
    GOOD,
    INFINITE_LOOP,
    MEMORY_HOG,
    NON_MONOTONE,
    PEEKER,
    SYNTAX_ERROR,
    make_store,
)

STORE = make_store(n_questions=4)
LIMITS = SandboxLimits(cpu_seconds=2, wall_seconds=8, memory_mb=400)


def ctx(**kw: object) -> EvalContext:
    base: dict[str, object] = {
        "stores": [STORE],
        "betas": [0.0, 0.5, 1.0],
        "runs": 3,
        "protocol": Protocol(),
        "limits": LIMITS,
        "full_budget_tokens": {STORE.name: 4000.0},
    }
    base.update(kw)
    return EvalContext(**base)  # type: ignore[arg-type]


# ----------------------------------------------------------------- perturbation
@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), steps=st.integers(0, 30))
def test_perturbation_keeps_every_revealed_value_and_changes_the_rest(seed: int, steps: int) -> None:
    """Replaying the same actions on the perturbed question reveals exactly the same things."""
    rng = random.Random(seed)
    q = STORE.replay[seed % len(STORE.replay)]
    order = Protocol().order(q.n_branches, seed % 5)
    s = ReplaySession(q, order)
    actions: list[tuple[str, int]] = []
    for _ in range(steps):
        alive = s.alive()
        pick = rng.random()
        if pick < 0.3 or not alive:
            r = s.open() if pick < 0.2 else s.read()
            if r is None:
                break
            actions.append(("open" if pick < 0.2 else "read", r.branch))
        elif pick < 0.9:
            b = rng.choice(alive)
            s.advance(b)
            actions.append(("advance", b))
        else:
            b = rng.choice(alive)
            s.prune(b)
            actions.append(("prune", b))
    revealed = [(v.depth, v.finished) for v in s.branches]
    p = perturb_question(q, order, revealed, seed=seed)
    s2 = ReplaySession(p, order)
    for action, b in actions:
        if action == "open":
            s2.open()
        elif action == "read":
            s2.read()
        elif action == "advance":
            s2.advance(b)
        else:
            s2.prune(b)
    assert [e[:6] for e in s2.trace] == [e[:6] for e in s.trace]
    assert s2.cost == s.cost
    # Every branch never opened differs in its final answer and its length.
    opened = {order[i] for i in range(len(revealed))}
    for b in range(q.n_branches):
        if b not in opened:
            assert p.finals[b] != q.finals[b] or len(q.vocab) < 2
            assert p.tokens[b] != q.tokens[b]
    # Drawn from the seed: reproducible, and another seed gives another perturbation.
    assert perturb_question(q, order, revealed, seed=seed) == p
    assert perturb_question(q, order, revealed, seed=seed + 1) != p


# --------------------------------------------------------------------- statuses
@pytest.mark.parametrize(
    ("code", "status", "text"),
    [
        (SYNTAX_ERROR, Status.INVALID, "syntax error"),
        (FORBIDDEN_IMPORT, Status.INVALID, "import of 'os'"),
        (INFINITE_LOOP, Status.TIMEOUT, "limit"),
        (MEMORY_HOG, Status.CRASHED, "memory"),
        (PEEKER, Status.LEAKED, "never shown"),
    ],
)
def test_failure_statuses(code: str, status: Status, text: str) -> None:
    ev = evaluate_candidate(code, ctx())
    assert ev.status is status, ev.message
    assert text in ev.message


def test_good_candidate_is_graded_in_the_parent() -> None:
    ev = evaluate_candidate(GOOD, ctx())
    assert ev.status is Status.OK, ev.message
    assert ev.stage == "done"
    curve = ev.curves[STORE.name]
    assert [p.beta for p in curve] == [0.0, 0.5, 1.0]
    assert curve[-1].tokens > curve[0].tokens
    assert ev.search_curve == curve  # one store: the mean is the store's curve
    assert not [f for f in ev.findings if f.code == "non-monotone"]
    assert {e.run for e in ev.episodes} == {0}
    assert len(ev.episodes) == 3 * len(STORE)
    assert set(ev.settings) == {"0.0", "0.5", "1.0"}
    # Accuracy is recomputed from the answers against golds the child never had.
    golds = STORE.golds
    at1 = [e for e in ev.episodes if e.beta == 1.0]
    assert all(e.correct == (e.answer == golds[e.question]) for e in at1)


def test_non_monotone_schedule_is_a_finding_not_a_failure() -> None:
    ev = evaluate_candidate(NON_MONOTONE, ctx())
    assert ev.status is Status.OK
    codes = {f.code for f in ev.findings}
    assert "non-monotone" in codes
    assert "beta1-underspends" in codes


@pytest.mark.parametrize("processes", [1, 2, 3])
def test_stateful_controller_is_caught_by_the_reversed_replay(processes: int) -> None:
    """Also when the episodes are dealt out to several candidate processes (each carries its own state)."""
    stateful = """
class Controller:
    calls = []

    def __init__(self, beta=1.0):
        self.beta = beta

    @staticmethod
    def schedule(beta):
        return {}

    def solve(self, session):
        Controller.calls.append(1)
        n = 1 + len(Controller.calls) % 3
        answers = []
        for _ in range(n):
            r = session.read()
            answers.append(r.answer)
        return answers[0]
"""
    ev = evaluate_candidate(stateful, ctx(processes=processes))
    assert ev.status is Status.LEAKED


@pytest.mark.parametrize("name", sorted(n for n, c in registry().items() if hasattr(c, "schedule")))
def test_registered_beta_controllers_pass_the_leak_test(name: str) -> None:
    """No false alarms: the reference β-controllers are honest (with their episodes dealt to two processes)."""
    cls = registry()[name]
    ev = evaluate_candidate(inspect.getsource(sys.modules[cls.__module__]), ctx(runs=2, smoke=False, processes=2))
    assert ev.status is Status.OK, ev.message
    assert ev.class_name == cls.__name__


def test_sandbox_scores_equal_the_reference_runner() -> None:
    """The sandbox path reproduces the in-process evaluation exactly."""
    cls = registry()["cmc"]
    ev = evaluate_candidate(inspect.getsource(sys.modules[cls.__module__]), ctx(runs=3, leak=False, smoke=False))
    for point in ev.curves[STORE.name]:
        ref = run_cell(STORE, ControllerSpec.parse(f"cmc:beta={point.beta}"), runs=3)
        assert point.accuracy == pytest.approx(ref.accuracy)
        assert point.tokens == pytest.approx(ref.tokens)


def test_without_beta_requirement_a_fixed_controller_gets_one_point() -> None:
    fixed = "class C:\n    def solve(self, session):\n        r = session.read()\n        return r.answer\n"
    ev = evaluate_candidate(fixed, ctx(require_beta=False))
    assert ev.status is Status.OK, ev.message
    assert [p.beta for p in ev.search_curve] == [None]
    assert not ev.findings


# -------------------------------------------------------------------- β checks
def test_monotone_findings_respect_the_tolerance() -> None:
    pts = [CurvePoint(0.0, 50, 1000), CurvePoint(0.5, 55, 990), CurvePoint(1.0, 60, 2000)]
    assert monotone_findings(pts, store="s", tolerance=0.02) == []
    assert monotone_findings(pts, store="s", tolerance=0.0)[0].code == "non-monotone"
    falling = [CurvePoint(0.0, 50, 3000), CurvePoint(1.0, 50, 1000)]
    f = monotone_findings(falling, store="s", tolerance=0.05)
    assert "β 0→1: 3,000→1,000" in f[0].message


def test_full_budget_finding() -> None:
    pts = [CurvePoint(0.0, 50, 100), CurvePoint(1.0, 60, 200)]
    assert full_budget_findings(pts, store="s", full_budget_tokens=1000, fraction=0.25)[0].code == "beta1-underspends"
    assert full_budget_findings(pts, store="s", full_budget_tokens=600, fraction=0.25) == []


# ------------------------------------------------------- leak test, directly
ANSWER_ONLY = """
SEEN = [0]


class Controller:
    def __init__(self, beta=1.0):
        self.beta = beta

    @staticmethod
    def schedule(beta):
        return {}

    def solve(self, session):
        SEEN[0] += 1
        r = session.read()
        return r.answer + "#" + str(SEEN[0])
"""


def test_answer_only_difference_is_a_leak() -> None:
    """Same actions in both passes, different answers (carried state shows only in the answer): ``leaked``."""
    ev = evaluate_candidate(ANSWER_ONLY, ctx(smoke=False))
    assert ev.status is Status.LEAKED, ev.message
    assert "answer changed" in ev.message and "actions changed" not in ev.message


def test_leak_pass_replays_the_sweep_order_reversed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The leak job is marked reversed and plays exactly the reverse of the sweep's order on its runs."""
    from autotts.discovery import evaluate as ev_mod
    from autotts.discovery.judge import episode_order
    from autotts.discovery.sandbox import SandboxJob, run_sandbox

    jobs: list[SandboxJob] = []

    def recording(job: SandboxJob, limits: SandboxLimits, backend: str = "local", address: str = "") -> object:
        jobs.append(job)
        return run_sandbox(job, limits)

    monkeypatch.setattr(ev_mod, "run_judged", recording)
    ev = evaluate_candidate(GOOD, ctx(smoke=False, runs=4, leak_runs=2))
    assert ev.status is Status.OK, ev.message
    sweep, leak = jobs
    assert not sweep.reverse and leak.reverse and leak.leak_masks is not None
    assert sweep.secret == leak.secret == bytes.fromhex(ev.leak_secret)
    nq = [len(STORE)]
    forward = episode_order(nq, 3, list(sweep.runs), secret=sweep.secret, reverse=False)
    backward = episode_order(nq, 3, list(leak.runs), secret=leak.secret, reverse=True)
    assert backward == [k for k in reversed(forward) if k[2] in set(leak.runs)]
    # The sweep order is the secret's, not the nested loops' (which a candidate could predict).
    assert forward != sorted(forward)


def test_episode_order_without_a_secret_is_the_nested_loops() -> None:
    from autotts.discovery.judge import episode_order

    keys = episode_order([2, 1], 2, [0, 3], secret=None, reverse=False)
    assert keys[:3] == [(0, 0, 0, 0), (0, 0, 0, 1), (0, 0, 3, 0)] and len(keys) == 12
    assert episode_order([2, 1], 2, [0, 3], secret=None, reverse=True) == keys[::-1]
