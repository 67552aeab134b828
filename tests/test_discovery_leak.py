"""The leak test's perturbation, cell by cell, and the action signature it compares.

An honest controller sees exactly the same session on the perturbed question (every
revealed cell is kept); everything it was not shown differs, and the perturbed question
still looks like real data (a probe count its length allows, answers from the question's
own vocabulary), so a candidate cannot tell that it is being tested.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from autotts.discovery.leak import action_signature, perturb_question
from autotts.store.schema import ReplayQuestion

VOCAB = ("A", "B", "C", "D")


@st.composite
def questions(draw: st.DrawFn) -> ReplayQuestion:
    v = draw(st.integers(1, 4))
    delta = draw(st.integers(1, 50))
    n = draw(st.integers(1, 6))
    probes, tokens, finals = [], [], []
    for _ in range(n):
        k = draw(st.integers(0, 6))
        probes.append(tuple(draw(st.lists(st.integers(0, v - 1), min_size=k, max_size=k))))
        tokens.append(k * delta + draw(st.integers(1, delta)))
        finals.append(draw(st.integers(0, v - 1)))
    return ReplayQuestion(
        vocab=VOCAB[:v], probes=tuple(probes), tokens=tuple(tokens), finals=tuple(finals), delta=delta
    )


@st.composite
def episodes(draw: st.DrawFn) -> tuple[ReplayQuestion, tuple[int, ...], list[tuple[int, bool]], int]:
    q = draw(questions())
    order = tuple(draw(st.permutations(range(q.n_branches))))
    opened = draw(st.integers(0, q.n_branches))
    revealed = []
    for i in range(opened):
        k = len(q.probes[order[i]])
        how = draw(st.sampled_from(["partial", "advanced to the end", "read"]))
        if how == "partial":
            revealed.append((draw(st.integers(0, k)), False))
        elif how == "advanced to the end":
            revealed.append((k, True))
        else:  # a full read reveals the final answer and length at the current depth
            revealed.append((draw(st.integers(0, k)), True))
    return q, order, revealed, draw(st.integers(0, 2**32))


@settings(max_examples=300, deadline=None)
@given(episodes())
def test_revealed_cells_are_kept_and_hidden_ones_differ(
    case: tuple[ReplayQuestion, tuple[int, ...], list[tuple[int, bool]], int],
) -> None:
    q, order, revealed, seed = case
    p = perturb_question(q, order, revealed, seed=seed)
    assert p.vocab == q.vocab and p.delta == q.delta and p.n_branches == q.n_branches
    state = {order[i]: r for i, r in enumerate(revealed)}
    for b in range(q.n_branches):
        depth, finished = state.get(b, (0, False))
        k = len(q.probes[b])
        if finished and depth == k:  # advanced to the end: everything about it was shown
            assert (p.probes[b], p.finals[b], p.tokens[b]) == (q.probes[b], q.finals[b], q.tokens[b])
            continue
        assert p.probes[b][:depth] == q.probes[b][:depth]
        hidden = k - depth
        extra = len(p.probes[b]) - depth
        assert 0 <= extra <= hidden + 2  # how many probes remain is hidden too
        for j in range(min(extra, hidden)):
            if len(q.vocab) > 1:
                assert p.probes[b][depth + j] != q.probes[b][depth + j]
        assert all(0 <= c < len(q.vocab) for c in p.probes[b])
        if finished:  # a full read: final answer and length were shown
            assert (p.finals[b], p.tokens[b]) == (q.finals[b], q.tokens[b])
        else:
            assert p.tokens[b] != q.tokens[b]
            if len(q.vocab) > 1:
                assert p.finals[b] != q.finals[b]
            else:
                assert p.finals[b] == q.finals[b]  # the only answer there is
            assert 0 <= p.finals[b] < len(q.vocab)
            # still real-looking: a length its probe count fits (K < ceil(tokens / Δ) <= K + 2)
            ceil = -(-p.tokens[b] // q.delta)
            assert len(p.probes[b]) < ceil <= len(p.probes[b]) + 2


@settings(max_examples=100, deadline=None)
@given(episodes())
def test_the_perturbation_is_a_function_of_the_seed(
    case: tuple[ReplayQuestion, tuple[int, ...], list[tuple[int, bool]], int],
) -> None:
    q, order, revealed, seed = case
    assert perturb_question(q, order, revealed, seed=seed) == perturb_question(q, order, revealed, seed=seed)


def test_every_hidden_cell_changes_over_many_seeds() -> None:
    # One unopened branch of a 3-answer question: over seeds, the drawn values cover the
    # alternatives and the hidden tail's length varies from 0 to hidden + 2.
    q = ReplayQuestion(vocab=("A", "B", "C"), probes=((0, 1, 2), (2, 2)), tokens=(35, 25), finals=(1, 0), delta=10)
    finals, tails, firsts, lengths = set(), set(), set(), set()
    for seed in range(300):
        p = perturb_question(q, (1, 0), [(1, False)], seed=seed)
        assert p.probes[1][:1] == (2,)
        finals.add(p.finals[0])
        tails.add(len(p.probes[0]))
        lengths.add(p.tokens[0] - 10 * len(p.probes[0]))
        if p.probes[0]:
            firsts.add(p.probes[0][0])
    assert finals == {0, 2}
    assert tails == {0, 1, 2, 3, 4, 5}
    assert firsts == {1, 2}
    assert lengths <= set(range(1, 21)) and len(lengths) >= 10


def test_revealed_entries_beyond_the_order_and_zero_delta_are_tolerated() -> None:
    q = ReplayQuestion(vocab=("A", "B"), probes=((0,), (1,)), tokens=(3, 4), finals=(0, 1), delta=0)
    p = perturb_question(q, (0,), [(1, True), (1, True)], seed=5)
    assert (p.probes[0], p.finals[0], p.tokens[0]) == ((0,), 0, 3)  # branch 0: advanced to the end
    assert p.finals[1] == 0 and p.tokens[1] != 4 and p.tokens[1] >= 1  # branch 1 never opened


def test_the_action_signature_tells_every_sequence_apart() -> None:
    seqs = [
        [],
        [("open", 0)],
        [("open", 1)],
        [("read", 0)],
        [("open", 1), ("open", 1)],
        [("open", 11)],
        [("open", 1), ("advance", 1)],
        [("advance", 1), ("open", 1)],
    ]
    sigs = [action_signature(s) for s in seqs]
    assert len(set(sigs)) == len(sigs)
    assert action_signature([("open", 1), ("advance", 1)]) == sigs[6]
    assert all(len(s) == 40 and int(s, 16) >= 0 for s in sigs)


def test_a_drawn_length_equal_to_the_true_one_is_redrawn_even_with_delta_one() -> None:
    # Δ = 1: the drawn length of the unopened branch collides with its true length (2)
    # whenever one hidden probe is drawn; the redraw must still give another length.
    q = ReplayQuestion(vocab=("A", "B"), probes=((0,), (1,)), tokens=(2, 3), finals=(0, 1), delta=1)
    lengths = set()
    for seed in range(60):
        p = perturb_question(q, (1, 0), [(0, False)], seed=seed)
        assert p.tokens[0] != 2
        lengths.add(p.tokens[0])
    assert lengths == {1, 3, 4}  # 1 + 0..3 drawn probes; the colliding 2 was redrawn to 3
