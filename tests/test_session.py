"""The controller-facing session: cost accounting, legality, compatibility names, privacy."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autotts.env import ReplaySession, Reveal, check_session
from autotts.errors import IllegalActionError, StoreExhaustedError
from autotts.store.schema import Branch, Question, ReplayStore, StoreMeta, intern_question

DELTA = 500


def make_question(branches: list[tuple[list[str], int, str]], gold: str = "7", delta: int = DELTA) -> Question:
    return Question(
        id="q",
        text="what?",
        gold=gold,
        delta=delta,
        branches=tuple(Branch(tuple(p), t, f) for p, t, f in branches),
    )


def session_for(branches, order=None, **kw) -> ReplaySession:  # type: ignore[no-untyped-def]
    replay, _ = intern_question(make_question(branches))
    return ReplaySession(replay, order if order is not None else list(range(len(branches))), **kw)


# Branch 0: 3 probes, 1200 tokens (shorter than 3 full intervals); branch 1: no probes;
# branch 2: 2 probes, 1800 tokens (longer than 2 intervals).
BRANCHES = [
    (["ERR", "5", "7"], 1200, "7"),
    ([], 300, "9"),
    (["1", "7"], 1800, "7"),
]


def test_advance_charges_full_intervals_then_remainder() -> None:
    s = session_for(BRANCHES)
    assert s.open() == Reveal(0, "ERR", False, 500)
    assert s.advance(0) == Reveal(0, "5", False, 500)
    assert s.advance(0) == Reveal(0, "7", False, 500)  # third interval charged in full past the end
    assert s.cost == 1500
    # Probes exhausted: finishing reveals the final answer and charges max(0, 1200 - 1500) = 0.
    assert s.advance(0) == Reveal(0, "7", True, 0)
    assert s.cost == 1500
    assert s.is_finished(0) and s.depth(0) == 3


def test_branch_without_probes_finishes_on_open_at_its_length() -> None:
    s = session_for(BRANCHES)
    s.open()
    assert s.open() == Reveal(1, "9", True, 300)
    assert s.cost == 500 + 300


def test_remainder_after_probes() -> None:
    s = session_for(BRANCHES)
    s.read()
    s.read()
    r = s.open()
    assert r == Reveal(2, "1", False, 500)
    s.advance(2)
    assert s.advance(2) == Reveal(2, "7", True, 800)  # 1800 - 2*500
    assert s.cost == 1200 + 300 + 1800
    assert s.sequential_tokens == 1800
    assert s.get_seq_and_total_tokens() == (1800, 3300)


def test_full_read_charges_whole_branch_without_probes() -> None:
    s = session_for(BRANCHES)
    assert s.read() == Reveal(0, "7", True, 1200)
    assert s.depth(0) == 0
    assert s.trace[0].action == "read"


def test_order_maps_controller_ids_to_store_branches() -> None:
    s = session_for(BRANCHES, order=[2, 0, 1])
    assert s.open() == Reveal(0, "1", False, 500)  # id 0 is store branch 2
    assert s.read() == Reveal(1, "7", True, 1200)  # id 1 is store branch 0
    assert s.open() == Reveal(2, "9", True, 300)
    assert s.open() is None and s.read() is None
    assert s.n_available == 0


@pytest.mark.parametrize(
    ("setup", "action", "fragment"),
    [
        (lambda s: None, lambda s: s.advance(0), "only branches"),
        (lambda s: s.open(), lambda s: s.advance(1), "only branches 0..0"),
        (lambda s: s.read(), lambda s: s.advance(0), "finished"),
        (lambda s: (s.open(), s.prune(0)), lambda s: s.advance(0), "pruned"),
        (lambda s: (s.open(), s.prune(0)), lambda s: s.prune(0), "already pruned"),
        (lambda s: s.read(), lambda s: s.prune(0), "already finished"),
        (lambda s: s.open(), lambda s: s.advance("0"), "integers"),
    ],
)
def test_illegal_actions_are_refused_and_leave_state(setup, action, fragment) -> None:  # type: ignore[no-untyped-def]
    s = session_for(BRANCHES)
    setup(s)
    before = (s.cost, s.n_opened, s.branches, s.trace)
    with pytest.raises(IllegalActionError, match=fragment) as info:
        action(s)
    assert "cost=" in str(info.value.state)
    assert info.value.action is not None
    assert (s.cost, s.n_opened, s.branches, s.trace) == before


def test_reference_quirks_only_in_compat_mode() -> None:
    strict = session_for(BRANCHES)
    strict.probe_new()
    with pytest.raises(IllegalActionError):
        strict.probe_more(1)  # the not-yet-opened branch just past the last opened one
    quirky = session_for(BRANCHES, quirks=True)
    quirky.probe_new()
    assert quirky.probe_more(1) == ("9", True)  # allowed: advances branch 1 without opening it
    assert quirky.cost == 800
    # Re-advancing a finished branch charges its remainder again each time.
    q2 = session_for(BRANCHES, quirks=True)
    q2.read(), q2.read()
    q2.open(), q2.advance(2), q2.advance(2)
    cost = q2.cost
    assert q2.probe_more(2) == ("7", True)
    assert q2.cost == cost + 800


def test_compat_names() -> None:
    s = session_for(BRANCHES)
    assert s.probe_new() == ("ERR", 0, False)
    assert s.probe_more(0) == ("5", False)
    assert s.get_new_branch_final_answer() == "9"
    s.probe_new()
    with pytest.raises(StoreExhaustedError):
        s.probe_new()
    with pytest.raises(IndexError):  # files written for the original code catch IndexError
        s.get_new_branch_final_answer()


def test_trace_records_every_action_and_notes() -> None:
    s = session_for(BRANCHES)
    s.open()
    s.note("looks promising")
    s.advance(0)
    s.prune(0)
    s.read()
    assert [(e.action, e.branch, e.depth, e.answer, e.cost) for e in s.trace] == [
        ("open", 0, 1, "ERR", 500),
        ("advance", 0, 2, "5", 500),
        ("prune", 0, 2, None, 0),
        ("read", 1, 0, "9", 300),
    ]
    assert s.trace[-1].total == s.cost
    assert s.notes == ((1, "looks promising"),)


def _public_values(obj: object) -> list[object]:
    values = []
    for name in dir(obj):
        if name.startswith("_"):
            continue
        value = getattr(obj, name)
        if not callable(value):
            values.append(value)
    return values


def _flatten(value: object) -> set[str]:
    found: set[str] = set()
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            found.add(v)
        elif isinstance(v, (tuple, list, set, frozenset)):
            stack.extend(v)
        elif isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
    return found


def test_controller_cannot_see_gold_or_unrevealed_probes() -> None:
    q = make_question(
        [(["a1", "SECRET-PROBE"], 1500, "SECRET-FINAL"), (["b1"], 800, "b-final")],
        gold="SECRET-GOLD",
    )
    replay, _ = intern_question(q)
    s = ReplaySession(replay, [0, 1])
    s.open()
    s.open()
    seen = set().union(*(_flatten(v) for v in _public_values(s)))
    assert "a1" in seen and "b1" in seen
    assert not {"SECRET-PROBE", "SECRET-FINAL", "SECRET-GOLD"} & seen
    assert not any(hasattr(s, n) for n in ("gold", "gold_answer", "question", "store"))


def test_store_replay_view_has_no_gold() -> None:
    store = ReplayStore(StoreMeta("m", "b"), (make_question(BRANCHES, gold="SECRET"),))
    assert "SECRET" not in _flatten([getattr(store.replay[0], f) for f in store.replay[0].__slots__])
    assert store.golds == ("SECRET",)


def test_session_checker_passes_on_hand_built_question() -> None:
    replay, _ = intern_question(make_question(BRANCHES * 5))
    check_session(lambda rec: ReplaySession(replay, list(range(15))[::-1], record=rec), episodes=10)


branch_strategy = st.tuples(
    st.lists(st.sampled_from(["1", "2", "ERR"]), max_size=6),
    st.integers(min_value=0, max_value=4000),
    st.sampled_from(["1", "2", "3"]),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(branch_strategy, min_size=1, max_size=6), st.lists(st.integers(0, 10), max_size=40))
def test_cost_invariants(branches, choices) -> None:  # type: ignore[no-untyped-def]
    """Cost never decreases, equals the sum of charges, never exceeds what the data holds."""
    s = session_for(branches)
    last = 0
    for c in choices:
        alive = s.alive()
        if c < 3 or not alive:
            if s.open() is None and not alive:
                break
        else:
            s.advance(alive[c % len(alive)])
        assert s.cost >= last
        last = s.cost
    cap = sum(max(t, len(p) * DELTA) for p, t, _ in branches)
    assert s.cost <= cap
    assert s.cost == sum(e.cost for e in s.trace)
