"""Adversarial candidates against the judge: none may score better than the honest controller.

Each attacker (``tests/discovery_attacks.py``) falls back to the honest controller when its
trick fails, so the only acceptable outcomes are a failing status (``invalid``, ``crashed``,
``leaked``) or ``ok`` with *exactly* the honest controller's curves — the numbers the judge
measured for the actions taken, not numbers the candidate could touch.
"""

from __future__ import annotations

import builtins
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from autotts.discovery.evaluate import EvalContext, Evaluation, evaluate_candidate
from autotts.discovery.records import CurvePoint, Status
from autotts.discovery.sandbox import SandboxJob, SandboxLimits, StorePayload, orders_for, run_sandbox
from autotts.env.session import ReplaySession
from autotts.evaluation.protocols import Protocol
from autotts.evaluation.results import grade, summarize
from autotts.store.schema import ReplayStore
from tests import discovery_attacks as atk
from tests.discovery_support import make_store, save_json_store

STORE = make_store(n_questions=4, seed=3)
LIMITS = SandboxLimits(cpu_seconds=5, wall_seconds=20, memory_mb=600)
FAILED = (Status.INVALID, Status.CRASHED, Status.LEAKED)


def ctx(**kw: object) -> EvalContext:
    base: dict[str, object] = {
        "stores": [STORE],
        "betas": [0.0, 1.0],
        "runs": 3,
        "protocol": Protocol(),
        "limits": LIMITS,
        "smoke": False,
        "leak_runs": 2,
    }
    base.update(kw)
    return EvalContext(**base)  # type: ignore[arg-type]


_HONEST: list[Evaluation] = []


def honest() -> Evaluation:
    if not _HONEST:
        ev = evaluate_candidate(atk.HONEST, ctx())
        assert ev.status is Status.OK, ev.message
        _HONEST.append(ev)
    return _HONEST[0]


def assert_no_gain(ev: Evaluation, name: str) -> None:
    """A failing status, or ``ok`` with the honest controller's curves to the last digit."""
    if ev.status is Status.OK:
        assert ev.curves == honest().curves, (name, ev.curves, honest().curves)
    else:
        assert ev.status in FAILED, (name, ev.status, ev.message)


def test_the_honest_base_is_not_free() -> None:
    """The baseline the attackers try to beat: real tokens, imperfect accuracy at β = 0."""
    curve = honest().curves[STORE.name]
    assert all(p.tokens > 0 for p in curve)
    assert curve[0].accuracy < 100.0


@pytest.mark.parametrize(
    "name",
    [
        "FRAME_WALK",
        "COST_PATCH",
        "METHOD_PATCH",
        "SELF_PARAM",
        "TIME_IMPORT",
    ],
)
def test_attacker_gains_nothing(name: str) -> None:
    ev = evaluate_candidate(getattr(atk, name), ctx())
    assert_no_gain(ev, name)


def test_reading_a_store_file_by_path_gains_nothing(tmp_path: Path) -> None:
    path = save_json_store(STORE, tmp_path / "stores" / "m" / "b.json")
    code = atk.with_store(atk.FRAME_GLOBALS_OPEN, str(path), list(dict.fromkeys(STORE.golds)))
    ev = evaluate_candidate(code, ctx())
    assert_no_gain(ev, "FRAME_GLOBALS_OPEN")


def stateless_curves(code: str, store: ReplayStore, betas: list[float], runs: int) -> dict[str, Any]:
    """The controller run honestly: in this process, a fresh module (fresh globals) for every episode."""
    compiled = compile(code, "attacker", "exec")
    points = []
    for beta in betas:
        answers, cost, seq = [], [], []
        for run in range(runs):
            row_a, row_c, row_s = [], [], []
            for q in store.replay:
                ns: dict[str, Any] = {}
                exec(compiled, ns)
                s = ReplaySession(q, Protocol().order(q.n_branches, run), record=False)
                row_a.append(ns["Controller"](beta=beta).solve(s))
                row_c.append(s.cost)
                row_s.append(s.sequential_tokens)
            answers.append(row_a)
            cost.append(row_c)
            seq.append(row_s)
        summary = summarize(grade(answers, store.golds), np.array(cost, np.int64), np.array(seq, np.int64))
        points.append(CurvePoint(beta, summary.accuracy, summary.tokens, summary.sequential_tokens))
    return {store.name: tuple(points)}


BIG = make_store(n_questions=12, seed=4)


@pytest.mark.parametrize("name", ["MEMO", "COUNTER"])
def test_state_between_episodes_gains_nothing(name: str) -> None:
    """Module-global memory or counters: ``leaked``, or ``ok`` with the numbers of the stateless run."""
    code = getattr(atk, name)
    ev = evaluate_candidate(code, ctx(stores=[BIG]))
    if ev.status is not Status.LEAKED:
        assert ev.status is Status.OK, ev.message
        assert ev.curves == stateless_curves(code, BIG, [0.0, 1.0], 3)


@pytest.mark.parametrize("name", ["ID_RANDOM", "HASH_RANDOM"])
def test_process_dependent_choices_are_caught_or_stable(name: str) -> None:
    """``id()`` / ``hash()`` choices: ``leaked`` when they differ between passes, else reproducible."""
    ev = evaluate_candidate(getattr(atk, name), ctx())
    assert ev.status in (Status.OK, Status.LEAKED), (ev.status, ev.message)
    if ev.status is Status.OK:
        again = evaluate_candidate(getattr(atk, name), ctx())
        assert again.status is Status.OK and again.curves == ev.curves


def below_checks(code: str) -> Any:
    """Run ``code`` in the judged sandbox without the static checks: what the kernel and judge hold."""
    payload = [StorePayload(STORE.name, tuple(STORE.replay))]
    orders = orders_for(payload, [0, 1], Protocol().order)
    return run_sandbox(SandboxJob(code, "Controller", payload, [0.0, 1.0], [0, 1], orders), LIMITS)


def judged(code: str) -> dict[str, Any]:
    out = below_checks(code)
    assert out.kind == "ok" and out.data is not None, (out.kind, out.message)
    return out.data


def test_forging_requests_on_the_session_link_gains_nothing() -> None:
    """The link to the judge, reached past the static checks: a forged early answer is just an answer.

    The judge records the forged answer at the cost of the actions taken before it (none) and
    never serves the episode again — the numbers of a controller that returns the same guess
    without acting. Run below the static checks (which refuse ``.getattr``), so the forgery
    really reaches the judge.
    """

    assert evaluate_candidate(atk.LINK_FORGE, ctx()).status in FAILED
    forged = judged(atk.LINK_FORGE)
    guess = judged(atk.attacker("", 'return majority_of(["0", "1", "2"])'))
    honest_run = judged(atk.HONEST)
    for cells in (forged["cells"], guess["cells"]):
        for cell in cells:
            assert cell["answers"] == [["0"] * len(STORE.replay)] * 2
            assert cell["cost"] == [[0] * len(STORE.replay)] * 2
    assert forged["cells"] == guess["cells"] != honest_run["cells"]


def test_a_gc_walk_finds_no_replay_data_in_the_candidate_process() -> None:
    """Heap walks past the static checks (which refuse ``.getattr``): the heap holds no replay data.

    ``GC_REACH`` crashes on purpose with what its walk saw: it must have walked a real heap
    (thousands of objects) holding no replay object. ``GC_WALK`` — the same walk looking for
    a question's finals — then plays exactly the honest controller. The control below shows
    that the very same walk reports replay objects where they exist.
    """
    assert evaluate_candidate(atk.GC_WALK, ctx()).status in FAILED
    out = below_checks(atk.GC_REACH)
    assert out.kind == "error", (out.kind, out.message)
    assert "gc refused: sandbox: gc.get_objects is not allowed" in out.message, out.message
    match = re.search(r"heap walk: (\d+) objects; replay objects: (\d+)", out.message)
    assert match is not None, out.message
    assert int(match.group(1)) > 1000, out.message
    assert int(match.group(2)) == 0, out.message
    assert judged(atk.GC_WALK)["cells"] == judged(atk.HONEST)["cells"]


def test_the_gc_walk_sees_replay_data_where_it_exists() -> None:
    """Control for the test above: in a process that holds a replay session, the walk finds it."""
    ns: dict[str, Any] = {"builtins": builtins}
    exec(compile(atk.GC_REACH, "attacker", "exec"), ns)
    exec("def call():\n    return heap_walk(300000)\n", ns)
    session = ReplaySession(STORE.replay[0], Protocol().order(STORE.replay[0].n_branches, 0), record=False)
    n, found = ns["call"]()
    assert n > 1000
    assert any(o is session for o in found)
