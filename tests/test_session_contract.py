"""The session's compatibility paths and inspection methods, step by step.

``tests/test_session.py`` and ``tests/test_engine_session.py`` check the accounting on
the main paths and against a model; here every state a quirk advance leaves behind
(depth, answer, flags, charged tokens, trace) is written out, and so is every refusal
a controller can meet when it inspects or prunes a branch it does not hold.
"""

from __future__ import annotations

import pytest

from autotts.env import ReplaySession
from autotts.errors import IllegalActionError, StoreExhaustedError
from autotts.store.schema import ReplayQuestion

# Δ = 10. Store branch 0: probes A, B; 25 tokens; final C.
# Store branch 1: probes B, A, A; 28 tokens (less than its three intervals); final A.
# Store branch 2: no probes; 14 tokens; final B.
Q = ReplayQuestion(
    vocab=("A", "B", "C"), probes=((0, 1), (1, 0, 0), ()), tokens=(25, 28, 14), finals=(2, 0, 1), delta=10
)


def events(s: ReplaySession) -> list[tuple[str, int, int, str | None, int, int]]:
    return [(e.action, e.branch, e.depth, e.answer, e.cost, e.total) for e in s.trace]


def test_quirk_advances_of_the_next_branch_reveal_its_probes_then_its_final() -> None:
    s = ReplaySession(Q, (0, 1, 2), quirks=True)
    s.open()
    assert [s.probe_more(1) for _ in range(4)] == [("B", False), ("A", False), ("A", False), ("A", True)]
    assert events(s) == [
        ("open", 0, 1, "A", 10, 10),
        ("advance", 1, 1, "B", 10, 20),
        ("advance", 1, 2, "A", 10, 30),
        ("advance", 1, 3, "A", 10, 40),
        ("advance", 1, 3, "A", 0, 40),  # 28 tokens < 3 intervals: the remainder is 0, never negative
    ]
    assert s.cost == 40
    # the quirk-advanced branch is opened next with its state as the quirks left it
    s.open()
    assert s.is_finished(1) and not s.is_pruned(1) and s.depth(1) == 3 and s.answer(1) == "A"
    assert s.branches[1].tokens == 30
    assert s.alive() == [0]


def test_quirk_re_advance_of_a_finished_branch_charges_its_remainder_again() -> None:
    s = ReplaySession(Q, (0, 1, 2), quirks=True)
    s.open()
    s.advance(0)
    assert s.advance(0).finished  # 25 - 2 * 10 = 5 tokens
    assert s.branches[0].tokens == 25 and s.cost == 25
    r = s.advance(0)  # quirk: finished, yet advanced again
    assert (r.branch, r.answer, r.finished, r.cost) == (0, "C", True, 5)
    assert s.cost == 30 and s.branches[0].tokens == 30 and s.sequential_tokens == 30
    assert s.is_finished(0) and not s.is_pruned(0)
    assert events(s)[-1] == ("advance", 0, 2, "C", 5, 30)
    # a pruned branch stays pruned even with quirks
    s.open()
    s.prune(1)
    with pytest.raises(IllegalActionError, match=r"^ADVANCE\(1\) is illegal: the branch is pruned$"):
        s.advance(1)


def test_quirk_advance_beyond_the_next_branch_is_still_illegal() -> None:
    s = ReplaySession(Q, (0, 1, 2), quirks=True)
    s.open()
    with pytest.raises(IllegalActionError, match=r"^ADVANCE\(2\) is illegal: only branches 0\.\.0 are open"):
        s.probe_more(2)
    assert s.cost == 10


def test_advance_many_is_advance_in_order() -> None:
    s = ReplaySession(Q, (1, 0, 2))
    s.open(), s.open()
    reveals = s.advance_many([1, 0, 0])
    assert [(r.branch, r.answer, r.finished, r.cost) for r in reveals] == [
        (1, "B", False, 10),
        (0, "A", False, 10),
        (0, "A", False, 10),
    ]
    assert s.advance_many([]) == []


def test_inspection_of_opened_branches() -> None:
    s = ReplaySession(Q, (1, 2, 0))
    s.open()  # store branch 1: first probe B
    s.read()  # store branch 2: final B
    s.open()  # store branch 0: first probe A (code 0)
    s.prune(2)
    assert [s.answer(i) for i in range(3)] == ["B", "B", "A"]
    assert [s.is_pruned(i) for i in range(3)] == [False, False, True]
    assert [s.is_finished(i) for i in range(3)] == [False, True, False]
    assert [s.depth(i) for i in range(3)] == [1, 0, 1]


@pytest.mark.parametrize("inspect", ["depth", "is_finished", "is_pruned", "answer"])
@pytest.mark.parametrize("branch", [1, -1, 7])
def test_inspecting_a_branch_that_is_not_open_is_refused(inspect: str, branch: int) -> None:
    s = ReplaySession(Q, (0, 1, 2))
    s.open()
    with pytest.raises(IllegalActionError) as info:
        getattr(s, inspect)(branch)
    assert str(info.value) == f"branch {branch} is not open (open branches: 0..0)"
    assert info.value.action == ("inspect", branch)
    assert info.value.state == s.describe() == "opened=1/3, alive=[0], finished=[], pruned=[], cost=10"


@pytest.mark.parametrize("branch", [1, -1])
def test_pruning_a_branch_that_is_not_open_is_refused(branch: int) -> None:
    s = ReplaySession(Q, (0, 1, 2))
    s.open()
    with pytest.raises(IllegalActionError) as info:
        s.prune(branch)
    assert str(info.value) == f"PRUNE({branch}) is illegal: only branches 0..0 are open"
    assert info.value.action == ("prune", branch)
    assert info.value.state == "opened=1/3, alive=[0], finished=[], pruned=[], cost=10"


def test_compatibility_names_say_how_many_branches_were_used_up() -> None:
    s = ReplaySession(Q, (0, 1, 2))
    s.probe_new(), s.probe_new(), s.probe_new()
    with pytest.raises(StoreExhaustedError, match=r"^all 3 branches have been opened$"):
        s.probe_new()
    with pytest.raises(StoreExhaustedError, match=r"^all 3 branches have been opened$"):
        s.get_new_branch_final_answer()


def test_opening_a_quirk_advanced_branch_continues_where_the_quirks_left_it() -> None:
    s = ReplaySession(Q, (0, 1, 2), quirks=True)
    s.open()
    assert s.probe_more(1) == ("B", False)  # quirk: store branch 1 advanced before it is opened
    r = s.open()  # opening it reveals its second probe, not its first again
    assert r is not None and (r.branch, r.answer, r.finished) == (1, "A", False)
    assert s.depth(1) == 2 and s.cost == 30


def test_opening_a_quirk_finished_branch_charges_its_remainder_again() -> None:
    s = ReplaySession(Q, (1, 0, 2), quirks=True)
    s.open()  # store branch 1
    assert [s.probe_more(1) for _ in range(3)] == [("A", False), ("B", False), ("C", True)]  # store branch 0
    r = s.open()  # store branch 0 again: its remainder (25 - 20 = 5) is charged a second time
    assert r is not None and (r.answer, r.finished, r.cost) == ("C", True, 5)
    assert s.branches[1].tokens == 30 and s.cost == 10 + 25 + 5


def test_the_session_keeps_its_own_copy_of_the_order() -> None:
    order = [2, 0, 1]
    s = ReplaySession(Q, order)
    order[0] = 1  # the caller's list changes after the session was made
    r = s.read()
    assert r is not None and (r.answer, r.cost) == ("B", 14)  # still store branch 2


def test_every_refused_advance_and_prune_says_why_in_full() -> None:
    s = ReplaySession(Q, (0, 2, 1))
    s.open(), s.read(), s.open()
    s.prune(2)
    cases = [
        (
            lambda: s.advance(3),
            ("advance", 3),
            "ADVANCE(3) is illegal: only branches 0..2 are open; open a new branch with open()",
        ),
        (lambda: s.advance("1"), ("advance", "1"), "ADVANCE('1') is illegal: branch ids are integers"),
        (
            lambda: s.advance(1),
            ("advance", 1),
            "ADVANCE(1) is illegal: the branch is finished (its final answer is already revealed)",
        ),
        (lambda: s.advance(2), ("advance", 2), "ADVANCE(2) is illegal: the branch is pruned"),
        (lambda: s.prune(1), ("prune", 1), "PRUNE(1) is illegal: the branch is already finished"),
        (lambda: s.prune(2), ("prune", 2), "PRUNE(2) is illegal: the branch is already pruned"),
    ]
    for act, action, message in cases:
        with pytest.raises(IllegalActionError) as info:
            act()
        assert (str(info.value), info.value.action) == (message, action)
        assert info.value.state == "opened=3/3, alive=[0], finished=[1], pruned=[2], cost=34"
