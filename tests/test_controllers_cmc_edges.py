"""CMC loop edges the drawn stores of the kernel comparison rarely reach.

A stalled question (no chain finishes, so the pool is empty and the momentum stays at 0)
makes CMC widen every step from ``widen_from = warm_up // 2`` until ``max_branches`` chains
are open; a chain opened by widening can agree with the winner at once; and a momentum
can land on its threshold exactly. Each is pinned here on a hand-built store.
"""

from __future__ import annotations

from autotts.controllers.cmc import ConfidenceMomentum
from autotts.env.session import ReplaySession
from autotts.store.schema import Branch, Question, intern_question

DELTA = 500


def stalled(n: int, depth: int = 60) -> ReplaySession:
    """``n`` long chains whose probes never repeat: nothing finishes for ``depth`` intervals."""
    branches = tuple(Branch(tuple(f"a{i}-{t}" for t in range(depth)), DELTA * (depth + 1), f"f{i}") for i in range(n))
    q = intern_question(Question("q", "text", "f0", DELTA, branches))[0]
    return ReplaySession(q, tuple(range(n)))


def test_widening_stops_exactly_at_max_branches_when_the_last_burst_is_partial() -> None:
    # β = 0.5: 5 initial chains, bursts of 2, cap 34; 34 - 5 is odd, so the last burst opens 1.
    cmc = ConfidenceMomentum(0.5)
    assert (cmc.settings["n_init"], cmc.settings["widen_burst"], cmc.settings["max_branches"]) == (5, 2, 34)
    s = stalled(40)
    cmc.solve(s)
    assert s.n_opened == 34


def test_widening_starts_at_half_the_warm_up_rounded_down() -> None:
    # β = 0.125: warm_up 3, so widening starts at step 3 // 2 = 1 (not 1.5 -> step 2).
    cmc = ConfidenceMomentum(0.125)
    assert (cmc.settings["n_init"], cmc.settings["warm_up"], cmc.settings["widen_burst"]) == (3, 3, 1)
    s = stalled(20)
    cmc.solve(s)
    actions = [e.action for e in s.trace]
    fourth_open = [i for i, a in enumerate(actions) if a == "open"][3]
    # 3 opens, then steps 0 and 1 advance the 3 chains each; the widening open ends step 1.
    assert actions[:fourth_open].count("advance") == 6


def test_a_widened_chain_that_opens_on_the_winner_is_deepened_in_an_aligned_burst() -> None:
    # β = 0.5 (aligned bursts of 2): chain 0 ends at once with "A", the pool's only answer
    # (confidence 0.75 < 0.91, one answer < min_complete 4), so the momentum stalls and
    # CMC widens. Chains 5 and 6 open on "A": their first probe already agrees with the
    # winner, so on the next (warm) step each is advanced twice before the next one moves.
    branches = (
        Branch((), 100, "A"),
        *(Branch(("X",) * 60, DELTA * 61, "X") for _ in range(4)),
        *(Branch(("A",) * 60, DELTA * 61, "A") for _ in range(2)),
    )
    q = intern_question(Question("q", "text", "A", DELTA, branches))[0]
    s = ReplaySession(q, tuple(range(len(branches))))
    assert ConfidenceMomentum(0.5).solve(s) == "A"
    events = list(s.trace)
    opens = [e.branch for e in events if e.action == "open"]
    assert opens[5:7] == [5, 6]
    first_move_of_6 = next(i for i, e in enumerate(events) if e.action == "advance" and e.branch == 6)
    assert max(e.depth for e in events[:first_move_of_6] if e.branch == 5) == 3


def test_cmc_stops_when_the_momentum_reaches_the_threshold_exactly() -> None:
    # β = 0.7292: threshold 0.9375 = beta_confidence(5, 1), and with α = 0.4083 the EMA of a
    # constant 0.9375 lands on 0.9375 exactly (not just below), so "ema >= threshold" is
    # decided by the equality. Chain 5 finishes with "A" at depth 10, making the pool
    # 5 × A, 1 × B; the 50 long chains would cost far more if CMC did not stop there.
    cmc = ConfidenceMomentum(0.7292)
    assert (cmc.settings["conf_threshold"], cmc.settings["alpha"], cmc.settings["min_complete"]) == (0.9375, 0.4083, 4)
    branches = (
        *(Branch((), 100, "A") for _ in range(4)),
        Branch((), 100, "B"),
        Branch(("X",) * 10, DELTA * 11, "A"),
        *(Branch(("X",) * 300, DELTA * 301, "X") for _ in range(50)),
    )
    q = intern_question(Question("q", "text", "A", DELTA, branches))[0]
    s = ReplaySession(q, tuple(range(len(branches))))
    assert cmc.solve(s) == "A"
    assert s.alive(), "CMC read on past the step where the momentum reached its threshold"
    assert s.cost == 220_000
