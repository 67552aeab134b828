"""The optimized ReplaySession against a plain model of the replay protocol, action by action.

The session keeps a compact hot-path state (no spent/charged lists, one state flag per
branch, inlined steps); this model keeps every quantity of ``docs/replay-protocol.md``
explicitly, including the two quirks of the original code. Random action sequences,
legal and illegal, must give the same reveals, errors, costs, snapshots and traces.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from autotts.env.session import ReplaySession, Reveal, TraceEvent
from autotts.errors import IllegalActionError, StoreExhaustedError
from autotts.store.schema import ReplayQuestion

NAMES = ("open", "advance", "read", "prune")


class Model:
    """The protocol with every counter spelled out (spent, charged, finished, pruned)."""

    def __init__(self, q: ReplayQuestion, order: tuple[int, ...], quirks: bool) -> None:
        n = len(order)
        self.q, self.order, self.quirks = q, order, quirks
        self.cursor, self.spent, self.charged = [0] * n, [0] * n, [0] * n
        self.finished, self.pruned = [False] * n, [False] * n
        self.latest: list[str | None] = [None] * n
        self.n_open = 0
        self.cost = 0
        self.events: list[TraceEvent] = []

    def _event(self, action: int, i: int, depth: int, answer: str | None, charge: int) -> None:
        self.events.append(TraceEvent(len(self.events), NAMES[action], i, depth, answer, charge, self.cost))

    def step(self, i: int, action: int) -> Reveal:
        b = self.order[i]
        probes = self.q.probes[b]
        if self.cursor[i] < len(probes):
            answer = self.q.vocab[probes[self.cursor[i]]]
            self.cursor[i] += 1
            charge = self.q.delta
            self.spent[i] += charge
            finished = False
        else:
            answer = self.q.vocab[self.q.finals[b]]
            charge = max(0, self.q.tokens[b] - self.spent[i])
            self.finished[i] = True
            finished = True
        self.latest[i] = answer
        self.charged[i] += charge
        self.cost += charge
        self._event(action, i, self.cursor[i], answer, charge)
        return Reveal(i, answer, finished, charge)

    def open(self) -> Reveal | None:
        if self.n_open >= len(self.order):
            return None
        self.n_open += 1
        return self.step(self.n_open - 1, 0)

    def read(self) -> Reveal | None:
        if self.n_open >= len(self.order):
            return None
        i = self.n_open
        self.n_open += 1
        b = self.order[i]
        answer = self.q.vocab[self.q.finals[b]]
        charge = self.q.tokens[b]
        self.finished[i] = True
        self.latest[i] = answer
        self.charged[i] = charge
        self.cost += charge
        self._event(2, i, 0, answer, charge)
        return Reveal(i, answer, True, charge)

    def advance(self, i: Any) -> Reveal:
        # A live opened branch may be named by any int-like id (even a bool, as in the
        # original); everything else must be a true int, and only quirks widen the rule.
        if 0 <= i < self.n_open and not self.finished[i] and not self.pruned[i]:
            return self.step(i, 1)
        if not isinstance(i, int) or isinstance(i, bool):
            raise IllegalActionError("branch ids are integers")
        if self.quirks and 0 <= i < len(self.order) and i <= self.n_open and not self.pruned[i]:
            return self.step(i, 1)
        raise IllegalActionError("illegal advance")

    def prune(self, i: int) -> None:
        if not (0 <= i < self.n_open) or self.pruned[i] or self.finished[i]:
            raise IllegalActionError("illegal prune")
        self.pruned[i] = True
        self._event(3, i, self.cursor[i], None, 0)

    def probe_more(self, i: int) -> tuple[str, bool]:
        r = self.step(i, 1) if self.quirks and i == self.n_open < len(self.order) else self.advance(i)
        return r.answer, r.finished

    def snapshot(self) -> tuple[Any, ...]:
        opened = range(self.n_open)
        return (
            self.cost,
            max(self.charged[: self.n_open], default=0),
            self.n_open,
            [(i, self.cursor[i], self.finished[i], self.pruned[i], self.latest[i], self.charged[i]) for i in opened],
            [i for i in opened if not self.finished[i] and not self.pruned[i]],
        )


def session_snapshot(s: ReplaySession) -> tuple[Any, ...]:
    return (s.cost, s.sequential_tokens, s.n_opened, [tuple(b) for b in s.branches], s.alive())


vocab = ("A", "B", "ERR", "C")
question_strategy = st.integers(1, 6).flatmap(
    lambda n: st.builds(
        lambda probes, tokens, finals, delta: ReplayQuestion(vocab, tuple(probes), tuple(tokens), tuple(finals), delta),
        st.lists(st.lists(st.integers(0, 3), max_size=5).map(tuple), min_size=n, max_size=n),
        st.lists(st.integers(-50, 3000), min_size=n, max_size=n),
        st.lists(st.integers(0, 3), min_size=n, max_size=n),
        st.sampled_from([1, 400, 500]),
    )
)
actions = st.lists(
    st.tuples(st.sampled_from(["open", "read", "advance", "prune", "probe_more", "advance_bool"]), st.integers(-1, 7)),
    max_size=40,
)


def _do(target: Any, name: str, arg: int) -> tuple[str, Any]:
    try:
        if name == "open":
            return "ok", target.open()
        if name == "read":
            return "ok", target.read()
        if name == "advance":
            return "ok", target.advance(arg)
        if name == "advance_bool":
            return "ok", target.advance(arg % 2 == 1)
        if name == "prune":
            return "ok", target.prune(arg)
        return "ok", target.probe_more(arg)
    except (IllegalActionError, StoreExhaustedError) as exc:
        return "error", type(exc).__name__


@settings(max_examples=400, deadline=None)
@given(question_strategy, st.data(), actions, st.booleans(), st.booleans())
def test_session_matches_the_protocol_model(q, data, steps, quirks, record) -> None:  # type: ignore[no-untyped-def]
    order = tuple(data.draw(st.permutations(range(q.n_branches))))
    model = Model(q, order, quirks)
    session = ReplaySession(q, list(order), record=record, quirks=quirks)
    for name, arg in steps:
        expected = _do(model, name, arg)
        got = _do(session, name, arg)
        assert got == expected, (name, arg)
        assert session_snapshot(session) == model.snapshot()
    assert session.trace == (tuple(model.events) if record else ())
    assert session.get_seq_and_total_tokens() == (model.snapshot()[1], model.cost)


def test_quirk_advance_of_the_next_branch_then_full_read_charges_its_length() -> None:
    q = ReplayQuestion(vocab, ((0, 1, 1), (2,)), (1800, 300), (1, 3), 500)
    for make in (lambda: Model(q, (0, 1), True), lambda: ReplaySession(q, (0, 1), quirks=True)):
        s = make()
        s.open()
        s.advance(1)  # quirk: the not-yet-opened branch just past the last opened one
        s.read()  # reads branch 1 after its quirk advance
        tokens = s.snapshot()[3][1][5] if isinstance(s, Model) else s.branches[1].tokens
        assert tokens == 300
        assert s.cost == 500 + 500 + 300
