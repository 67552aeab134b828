"""Invariants every built-in controller keeps on arbitrary small stores (hypothesis)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from autotts.controllers import ControllerSpec
from autotts.env.session import ReplaySession
from autotts.store.schema import Branch, Question, intern_question

DELTA = 500
ANSWERS = st.sampled_from(["A", "B", "C", "ERR"])
BRANCH = st.builds(
    Branch,
    probes=st.lists(ANSWERS, max_size=6).map(tuple),
    tokens=st.integers(0, 4000),
    final=ANSWERS,
)
QUESTION = st.lists(BRANCH, min_size=1, max_size=7).map(lambda bs: Question("q", "t", "A", DELTA, tuple(bs)))

SPECS = st.one_of(
    st.builds(lambda n: f"sc:n={n}", st.integers(1, 8)),
    st.builds(lambda n, t: f"asc:max_samples={n},threshold={t}", st.integers(1, 8), st.floats(0.0, 1.0)),
    st.builds(lambda w, m: f"esc:max_samples={w * m},window={w}", st.integers(1, 3), st.integers(1, 3)),
    st.builds(
        lambda c, t, w, p, b, m: (
            f"parallel-probe:chains={c},T={t},warm_up={w},prune_patience={p},burst={b},max_steps={m}"
        ),
        st.integers(1, 8),
        st.integers(1, 5),
        st.integers(0, 4),
        st.integers(1, 3),
        st.integers(1, 3),
        st.integers(0, 12),
    ),
    st.builds(lambda b: f"cmc:beta={b}", st.floats(0.0, 1.0)),
    st.builds(
        lambda c, k, m: f"consistency-exit:chains={c},k={k}" + (f",max_intervals={m}" if m else ""),
        st.integers(1, 8),
        st.integers(1, 4),
        st.integers(0, 4),
    ),
    st.builds(lambda w, d: f"wide-commit:width={w},depth={d}", st.integers(1, 8), st.integers(1, 5)),
)


def _run(spec: str, question: Question, order: tuple[int, ...]) -> tuple[Any, ReplaySession]:
    replay = intern_question(question)[0]
    session = ReplaySession(replay, order)
    answer = ControllerSpec.parse(spec).build().solve(session)
    return answer, session


@settings(max_examples=300, deadline=None)
@given(SPECS, QUESTION, st.randoms(use_true_random=False))
def test_controllers_act_legally_deterministically_and_within_the_data(spec: str, question: Question, rnd: Any) -> None:
    order = list(range(len(question.branches)))
    rnd.shuffle(order)
    answer, session = _run(spec, question, tuple(order))  # an illegal action would raise here
    # Each branch costs at most its full price: all its intervals in full, or its length.
    ceiling = sum(max(b.tokens, len(b.probes) * DELTA) for b in question.branches)
    assert 0 <= session.cost <= ceiling
    # The answer is something the data holds (or no answer at all).
    revealed = {a for b in question.branches for a in (*b.probes, b.final)}
    assert answer is None or answer in revealed
    # Same order, same everything.
    again, session2 = _run(spec, question, tuple(order))
    assert again == answer
    assert session2.cost == session.cost
    assert session2.trace == session.trace


@settings(max_examples=100, deadline=None)
@given(QUESTION, st.floats(0.0, 1.0))
def test_cmc_never_abandons_below_two_alive(question: Question, beta: float) -> None:
    _, session = _run(f"cmc:beta={beta}", question, tuple(range(len(question.branches))))
    pruned = [v for v in session.branches if v.pruned]
    assert len(session.branches) - len(pruned) >= min(2, len(session.branches))
