"""The reference baselines (SC, ASC, ESC, Parallel-Probe): exact self-check numbers and every rule on tiny stores."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from autotts.controllers import ControllerSpec, beta_confidence
from autotts.controllers.adaptive import AdaptiveSelfConsistency
from autotts.controllers.early_stopping import EarlyStoppingSelfConsistency
from autotts.controllers.parallel_probe import ParallelProbe
from autotts.env.session import ReplaySession
from autotts.errors import ControllerSpecError
from autotts.evaluation import run_cell
from autotts.store.schema import Branch, Question, ReplayQuestion, intern_question

DELTA = 500


def br(probes: Sequence[str], tokens: int, final: str) -> Branch:
    return Branch(tuple(probes), tokens, final)


def finals(*answers: str, tokens: int = 1000) -> list[Branch]:
    """Branches without probes (only their final answers matter to full reads)."""
    return [br((), tokens + i, a) for i, a in enumerate(answers)]


def replay(branches: Sequence[Branch]) -> ReplayQuestion:
    return intern_question(Question("q", "text", "A", DELTA, tuple(branches)))[0]


def session(branches: Sequence[Branch], order: Sequence[int] | None = None) -> ReplaySession:
    return ReplaySession(replay(branches), tuple(order) if order is not None else tuple(range(len(branches))))


# ------------------------------------------------------------------ self-check
SELF_CHECK = [
    ("sc:n=64", "80.00", 886830),
    ("asc:max_samples=64,threshold=0.95", "80.00", 214189),
    ("esc:max_samples=64,window=8", "80.00", 528935),
    ("parallel-probe:chains=64,T=40,warm_up=15,prune_patience=7,burst=1", "79.73", 688873),
    ("cmc:beta=0.5", "81.97", 236735),
    ("cmc:beta=1.0", "83.53", 424878),
]


@pytest.mark.shared_data
@pytest.mark.parametrize(("spec", "accuracy", "tokens"), SELF_CHECK, ids=[s for s, _, _ in SELF_CHECK])
def test_self_check_qwen3_4b_aime24(qwen4b_aime24, spec: str, accuracy: str, tokens: int) -> None:  # type: ignore[no-untyped-def]
    result = run_cell(qwen4b_aime24, ControllerSpec.parse(spec), runs=100)
    assert (f"{result.accuracy:.2f}", round(result.tokens)) == (accuracy, tokens)


@pytest.mark.shared_data
def test_defaults_are_the_published_settings(qwen4b_aime24) -> None:  # type: ignore[no-untyped-def]
    asc = run_cell(qwen4b_aime24, ControllerSpec.parse("asc"), runs=100)
    esc = run_cell(qwen4b_aime24, ControllerSpec.parse("esc"), runs=100)
    assert (f"{asc.accuracy:.2f}", round(asc.tokens)) == ("80.00", 214189)
    assert (f"{esc.accuracy:.2f}", round(esc.tokens)) == ("80.00", 528935)


# ------------------------------------------------------------------------ ASC
def test_asc_stops_once_confidence_exceeds_threshold() -> None:
    # After A, B the counts are (1, 1) -> 0.5; after the second B, (2, 1) -> 0.6875 > 0.6.
    bs = finals("A", "B", "B", "A", "A")
    s = session(bs)
    assert AdaptiveSelfConsistency(max_samples=64, threshold=0.6).solve(s) == "B"
    assert s.n_opened == 3
    assert s.cost == sum(b.tokens for b in bs[:3])


def test_asc_threshold_is_strict() -> None:
    bs = finals("A", "A", "A", "A")
    at = beta_confidence(2, 0)
    s = session(bs)
    assert AdaptiveSelfConsistency(threshold=at).solve(s) == "A"
    assert s.n_opened == 3  # (2, 0) equals the threshold: not enough; (3, 0) exceeds it
    s = session(bs)
    AdaptiveSelfConsistency(threshold=at - 1e-9).solve(s)
    assert s.n_opened == 2


def test_asc_first_read_alone_never_stops() -> None:
    s = session(finals("A", "A"))
    AdaptiveSelfConsistency(threshold=0.0).solve(s)
    assert s.n_opened == 2


@pytest.mark.parametrize(
    ("answers", "expected"), [(("A", "B"), "A"), (("B", "A"), "B"), (("C", "A", "B", "A", "B"), "A")]
)
def test_asc_ties_go_to_the_first_seen(answers: tuple[str, ...], expected: str) -> None:
    s = session(finals(*answers))
    assert AdaptiveSelfConsistency(max_samples=len(answers), threshold=0.999).solve(s) == expected


def test_asc_err_is_an_ordinary_answer() -> None:
    assert AdaptiveSelfConsistency(max_samples=3, threshold=0.999).solve(session(finals("ERR", "A", "ERR"))) == "ERR"


def test_asc_exhausted_store_returns_majority_of_what_was_read() -> None:
    bs = finals("B", "A", "B")
    s = session(bs)
    assert AdaptiveSelfConsistency(max_samples=64, threshold=0.999).solve(s) == "B"
    assert s.n_available == 0
    assert s.cost == sum(b.tokens for b in bs)


def test_asc_reads_in_the_runs_order() -> None:
    bs = finals("A", "B", "B")
    assert AdaptiveSelfConsistency(max_samples=1).solve(session(bs, order=(2, 0, 1))) == "B"


# ------------------------------------------------------------------------ ESC
def test_esc_returns_the_first_unanimous_window() -> None:
    bs = finals("A", "B", "B", "A", "C", "C", "A", "A")
    s = session(bs)
    assert EarlyStoppingSelfConsistency(max_samples=8, window=2).solve(s) == "C"
    assert s.n_opened == 6


def test_esc_without_unanimity_votes_the_pool_first_seen() -> None:
    s = session(finals("A", "B", "B", "A", "B", "A", "C"))
    assert EarlyStoppingSelfConsistency(max_samples=6, window=2).solve(s) == "A"
    assert s.n_opened == 6


def test_esc_partial_last_window_is_still_checked() -> None:
    # Window 2 holds the single remaining branch, which is trivially unanimous.
    assert EarlyStoppingSelfConsistency(max_samples=8, window=2).solve(session(finals("A", "B", "B"))) == "B"


def test_esc_skips_empty_windows_and_handles_err() -> None:
    s = session(finals("ERR", "A"))
    assert EarlyStoppingSelfConsistency(max_samples=8, window=2).solve(s) == "ERR"
    assert EarlyStoppingSelfConsistency(max_samples=8, window=1).solve(session(finals("ERR", "A"))) == "ERR"


def test_esc_needs_max_samples_at_least_window() -> None:
    with pytest.raises(ControllerSpecError, match="window"):
        ControllerSpec.parse("esc:max_samples=4,window=8").build()


# -------------------------------------------------------------- Parallel-Probe
def test_parallel_probe_branches_without_probes_vote_with_their_final() -> None:
    bs = [br((), 700, "B"), br((), 800, "A"), br((), 900, "A")]
    s = session(bs)
    assert ParallelProbe(chains=8).solve(s) == "A"
    assert s.cost == 2400
    assert s.n_opened == 3  # exhausted store: fewer branches than chains


@pytest.mark.parametrize(("order", "expected"), [((0, 1), "A"), ((1, 0), "B")])
def test_parallel_probe_ties_go_to_the_first_opened(order: tuple[int, int], expected: str) -> None:
    assert ParallelProbe(chains=2).solve(session([br((), 10, "A"), br((), 10, "B")], order)) == expected


def test_parallel_probe_prunes_an_off_track_chain_through_the_session() -> None:
    bs = [br(["A"] * 6, 3200, "A"), br(["A"] * 6, 3300, "A"), br(["B"] * 6, 3400, "B")]
    s = session(bs)
    assert ParallelProbe(chains=3, T=100, warm_up=0, prune_patience=2).solve(s) == "A"
    assert s.is_pruned(2) and not s.is_pruned(0) and not s.is_pruned(1)
    # Chain 2 is opened and advanced at steps 0 and 1 (off-track 1, 2), then pruned.
    assert s.branches[2].tokens == 3 * DELTA
    assert [e.branch for e in s.trace if e.action == "prune"] == [2]
    assert s.cost == 3200 + 3300 + 3 * DELTA


def test_parallel_probe_warm_up_delays_pruning() -> None:
    bs = [br(["A"] * 6, 3200, "A"), br(["A"] * 6, 3300, "A"), br(["B"] * 6, 3400, "B")]
    s = session(bs)
    ParallelProbe(chains=3, T=100, warm_up=10, prune_patience=2).solve(s)
    assert not any(s.is_pruned(i) for i in range(3))


def test_parallel_probe_stops_after_T_stable_steps() -> None:
    bs = [br(["A"] * 20, 20000, "A"), br(["A"] * 20, 20000, "A")]
    s = session(bs)
    assert ParallelProbe(chains=2, T=2, warm_up=0).solve(s) == "A"
    # Steps 0, 1, 2 advance once each; stable reaches 2 at step 2.
    assert s.cost == 2 * 4 * DELTA


def test_parallel_probe_err_is_an_ordinary_vote() -> None:
    bs = [br(["ERR"] * 5, 3000, "A"), br(["ERR"] * 5, 3000, "B")]
    assert ParallelProbe(chains=2, T=1, warm_up=0).solve(session(bs)) == "ERR"


def test_parallel_probe_returns_prev_when_steps_run_out() -> None:
    bs = [br(["A", "B", "B", "B"], 3000, "C"), br(["B", "C", "C", "C"], 3000, "C")]
    # max_steps=1: step 0 reveals ("B", "C") -> winner "B" (first seen); loop ends.
    assert ParallelProbe(chains=2, T=5, warm_up=0, max_steps=1).solve(session(bs)) == "B"
    assert ParallelProbe(chains=2, T=5, warm_up=0, max_steps=0).solve(session(bs)) is None


def test_parallel_probe_burst_advances_several_intervals_per_step() -> None:
    bs = [br(["A"] * 10, 20000, "A")]
    s = session(bs)
    ParallelProbe(chains=1, T=1, warm_up=0, burst=3).solve(s)
    assert s.depth(0) == 1 + 2 * 3


@pytest.mark.parametrize("name", ["sc", "asc", "esc", "parallel-probe", "cmc", "consistency-exit", "wide-commit"])
def test_no_branch_at_all_gives_no_answer(name: str) -> None:
    controller = ControllerSpec.parse(name).build()
    s = ReplaySession(replay([br((), 1, "A")]), ())
    assert controller.solve(s) is None
    assert s.cost == 0


@pytest.mark.parametrize(
    "spec",
    ["asc:max_samples=0", "parallel-probe:chains=0", "parallel-probe:burst=0", "esc:window=0", "sc:n=0"],
)
def test_invalid_parameters_are_spec_errors(spec: str) -> None:
    with pytest.raises(ControllerSpecError):
        ControllerSpec.parse(spec).build()
