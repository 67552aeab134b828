"""The two width-depth adaptations: answer-consistency early exit and wide-then-commit."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from autotts.controllers import ControllerSpec, registry
from autotts.controllers.consistency_exit import ConsistencyExit
from autotts.controllers.wide_commit import WideThenCommit
from autotts.env.session import ReplaySession
from autotts.errors import ControllerSpecError
from autotts.evaluation import run_cell
from autotts.store.schema import Branch, Question, intern_question

DELTA = 500


def br(probes: Sequence[str] | str, tokens: int, final: str) -> Branch:
    """``probes`` may be a space-separated string for brevity."""
    return Branch(tuple(probes.split()) if isinstance(probes, str) else tuple(probes), tokens, final)


def session(branches: Sequence[Branch], order: Sequence[int] | None = None) -> ReplaySession:
    q = intern_question(Question("q", "text", "A", DELTA, tuple(branches)))[0]
    return ReplaySession(q, tuple(order) if order is not None else tuple(range(len(branches))))


def test_both_are_registered_and_take_beta() -> None:
    assert {"consistency-exit", "wide-commit"} <= set(registry())
    assert ControllerSpec.parse("consistency-exit").accepts("beta")
    assert ControllerSpec.parse("wide-commit").accepts("beta")


# ---------------------------------------------------------- consistency exit
def test_exit_when_last_k_probes_agree() -> None:
    s = session([br("A B B B C C", 5000, "C")])
    assert ConsistencyExit(k=3).solve(s) == "B"
    assert s.cost == 4 * DELTA
    assert s.is_pruned(0)  # the stop shows in the trace


def test_err_never_counts_and_breaks_a_streak() -> None:
    s = session([br("ERR ERR ERR B B ERR B B", 6000, "D")])
    assert ConsistencyExit(k=3).solve(s) == "D"  # no three agreeing non-ERR probes: final answer
    assert s.cost == 6000


def test_falls_back_to_the_final_answer_and_full_cost() -> None:
    s = session([br("A B A B", 1800, "C")])
    assert ConsistencyExit(k=2).solve(s) == "C"
    assert s.cost == 4 * DELTA  # four full intervals already exceed the branch length
    s = session([br("A B A B", 9000, "C")])
    ConsistencyExit(k=2).solve(s)
    assert s.cost == 9000


def test_branch_without_probes_answers_its_final() -> None:
    s = session([br((), 1234, "Z")])
    assert ConsistencyExit(k=1).solve(s) == "Z"
    assert s.cost == 1234


def test_depth_cap_answers_latest_non_err_probe() -> None:
    s = session([br("A B ERR C C C C", 9000, "C")])
    assert ConsistencyExit(k=5, max_intervals=3).solve(s) == "B"
    assert s.cost == 3 * DELTA
    s = session([br("ERR ERR ERR", 9000, "C")])
    assert ConsistencyExit(k=5, max_intervals=2).solve(s) is None


def test_chains_run_sequentially_and_vote_first_seen() -> None:
    bs = [br("X X", 2000, "X"), br("Y Y", 2000, "Y"), br("Y Y", 2000, "Y"), br("Z Z", 2000, "Z")]
    s = session(bs)
    assert ConsistencyExit(chains=2, k=2).solve(s) == "X"  # X, Y tie -> first seen
    assert s.n_opened == 2
    assert ConsistencyExit(chains=3, k=2).solve(session(bs)) == "Y"
    s = session(bs)
    assert ConsistencyExit(chains=64, k=2).solve(s) == "Y"  # exhausted store
    assert s.n_opened == 4
    assert s.cost == 4 * 2 * DELTA


def test_consistency_exit_beta_schedule_and_overrides() -> None:
    assert ConsistencyExit.schedule(0.0) == {"chains": 1, "k": 6}
    assert ConsistencyExit.schedule(1.0) == {"chains": 64, "k": 14}
    assert ConsistencyExit.schedule(0.5) == {"chains": 8, "k": 10}
    c = ConsistencyExit(beta=0.5, chains=3)
    assert (c.chains, c.k) == (3, 10)
    d = ConsistencyExit()
    assert (d.chains, d.k, d.max_intervals) == (1, 10, None)


@pytest.mark.parametrize(
    "spec", ["consistency-exit:k=0", "consistency-exit:chains=0", "consistency-exit:max_intervals=0"]
)
def test_consistency_exit_rejects_bad_parameters(spec: str) -> None:
    with pytest.raises(ControllerSpecError):
        ControllerSpec.parse(spec).build()


# ------------------------------------------------------------ wide then commit
def test_commits_to_the_most_agreeing_branch_and_prunes_the_rest() -> None:
    bs = [br("X Y Y Y", 4000, "X"), br("A A A A", 4100, "A"), br("A A B B", 4200, "B")]
    s = session(bs)
    assert WideThenCommit(width=3, depth=2).solve(s) == "A"
    # Scores: interval 1 (X, A, A) -> 0, 1, 1; interval 2 (Y, A, A) -> 0, 1, 1: tie -> branch 1.
    assert [s.is_pruned(i) for i in range(3)] == [True, False, True]
    assert s.cost == 2 * DELTA + 4100 + 2 * DELTA


def test_agreement_is_summed_over_the_probed_intervals() -> None:
    # Interval 1: (A, B, B) -> 0, 1, 1; interval 2: (C, C, D) -> 1, 1, 0 ; interval 3: (C, C, D) -> 1, 1, 0.
    bs = [br("A C C", 9000, "P"), br("B C C", 9000, "Q"), br("B D D", 9000, "R")]
    assert WideThenCommit(width=3, depth=3).solve(session(bs)) == "Q"


def test_err_probes_score_nothing_and_ties_go_to_the_first_opened() -> None:
    bs = [br("ERR ERR", 3000, "P"), br("ERR ERR", 3000, "Q"), br("C D", 3000, "R")]
    assert WideThenCommit(width=3, depth=2).solve(session(bs)) == "P"
    assert WideThenCommit(width=3, depth=2).solve(session(bs, order=(2, 0, 1))) == "R"


def test_a_branch_finished_in_the_wide_phase_keeps_its_final_answer_and_can_be_kept() -> None:
    bs = [br((), 300, "A"), br("A A A", 5000, "A"), br("B B B", 5000, "B")]
    s = session(bs)
    assert WideThenCommit(width=3, depth=3).solve(s) == "A"
    assert s.is_finished(0) and s.is_pruned(1) and s.is_pruned(2)
    assert s.cost == 300 + 2 * 3 * DELTA


def test_width_one_is_a_single_chain_to_its_end() -> None:
    s = session([br("A B", 3000, "C"), br("X", 100, "X")])
    assert WideThenCommit(width=1, depth=4).solve(s) == "C"
    assert s.cost == 3000
    assert s.n_opened == 1


def test_wide_commit_exhausted_store_and_schedule() -> None:
    s = session([br("A", 800, "A"), br("B", 900, "B")])
    assert WideThenCommit(width=64, depth=1).solve(s) == "A"
    assert s.n_opened == 2
    assert WideThenCommit.schedule(0.0) == {"width": 1, "depth": 2}
    assert WideThenCommit.schedule(1.0) == {"width": 64, "depth": 6}
    w = WideThenCommit(beta=0.5, depth=1)
    assert (w.width, w.depth) == (8, 1)


@pytest.mark.parametrize("spec", ["wide-commit:width=0", "wide-commit:depth=0"])
def test_wide_commit_rejects_bad_parameters(spec: str) -> None:
    with pytest.raises(ControllerSpecError):
        ControllerSpec.parse(spec).build()


@pytest.mark.shared_data
def test_adaptations_on_the_self_check_store(qwen4b_aime24) -> None:  # type: ignore[no-untyped-def]
    # Regression figures (no published reference exists for these adaptations).
    ce = run_cell(qwen4b_aime24, ControllerSpec.parse("consistency-exit:chains=8"), runs=100)
    wc = run_cell(qwen4b_aime24, ControllerSpec.parse("wide-commit:width=8"), runs=100)
    assert (f"{ce.accuracy:.2f}", round(ce.tokens)) == ("76.43", 85608)
    assert (f"{wc.accuracy:.2f}", round(wc.tokens)) == ("71.27", 28290)
