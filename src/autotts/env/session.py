"""The controller-facing replay session: what controller code calls.

A session replays one question in one run's branch order. Controllers see branch ids
0, 1, 2, ... in the order they opened them; the ids are positions in the run's order,
never store indices. Under the reference protocol "advance" is the paper's CONTINUE
immediately followed by a free PROBE, and cost follows ``docs/replay-protocol.md``:

* advancing a branch whose cursor ``c`` is inside its ``K`` probes reveals probe ``c``
  and charges exactly Δ tokens (the last interval in full, even past the branch's end);
* advancing a branch whose probes are exhausted reveals its final answer, charges
  ``max(0, tokens - spent)`` and finishes it;
* a full read of a fresh branch charges its whole length and returns its final answer.

The session holds the question's data privately and never holds the gold answer;
grading happens outside. Every action is appended to an execution trace unless
``record=False``; recording never changes a result.

The names used by controller files of the original AutoTTS code base
(:meth:`probe_new`, :meth:`probe_more`, :meth:`get_new_branch_final_answer`,
:meth:`get_seq_and_total_tokens`) are provided too. With ``quirks=True`` the session
also reproduces the two accounting quirks of that code base (re-advancing a finished
branch charges its remainder again; the not-yet-opened branch just past the last
opened one may be advanced); by default both are illegal actions.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from autotts.errors import IllegalActionError, StoreExhaustedError
from autotts.store.schema import ReplayQuestion

# Trace action codes (kept as small ints in the hot path, named in TraceEvent).
OPEN, ADVANCE, READ, PRUNE = 0, 1, 2, 3
ACTION_NAMES = ("open", "advance", "read", "prune")


class Reveal(NamedTuple):
    """What one open/advance/read revealed."""

    branch: int
    """Controller-side id of the branch (position in this run's order)."""
    answer: str
    """The probed answer after the new interval, or the final answer when finished."""
    finished: bool
    """True once the branch has been read to its end."""
    cost: int
    """Tokens charged by this action."""


class TraceEvent(NamedTuple):
    """One recorded action of an execution trace."""

    step: int
    action: str
    branch: int
    depth: int
    answer: str | None
    cost: int
    total: int


@dataclass(frozen=True)
class QuestionTrace:
    """The execution trace of one (run, question) episode, as evaluation keeps it."""

    run: int
    question: int
    answer: str | None
    correct: bool
    events: Sequence[TraceEvent]
    notes: tuple[tuple[int, str], ...] = ()


class BranchView(NamedTuple):
    """Read-only state of one opened branch."""

    id: int
    depth: int
    """Intervals revealed so far (probes read)."""
    finished: bool
    pruned: bool
    answer: str | None
    """Latest revealed answer (final answer once finished)."""
    tokens: int
    """Tokens charged on this branch so far."""


# ``Reveal(...)`` goes through the Python-level ``__new__`` that NamedTuple generates;
# building the tuple directly gives the same object at half the cost, and every action
# of a user-written controller returns one.
_new_tuple = tuple.__new__


class ReplaySession:
    """Replay of one question in one run's branch order (see the module docstring).

    Hot-path layout (why it looks like this): per opened branch the session keeps only
    its cursor, latest answer code, a state flag (0 live, 1 finished, 2 pruned) and the
    tokens charged beyond ``cursor * Δ`` (the final remainder or a full read). The
    tokens spent inside the probes are always ``cursor * Δ``, so they are never stored,
    and the question's tuples are bound to slots once so that every action reads them
    without attribute chains. ``advance`` and ``open`` inline the shared step for the
    same reason; :meth:`_step` remains for the compatibility paths.
    """

    __slots__ = (
        "_cost",
        "_cursor",
        "_delta",
        "_events",
        "_extra",
        "_finals",
        "_latest",
        "_n_open",
        "_n_total",
        "_notes",
        "_order",
        "_probes",
        "_quirks",
        "_record",
        "_state",
        "_tokens",
        "_vocab",
    )

    def __init__(
        self,
        question: ReplayQuestion,
        order: Sequence[int],
        *,
        record: bool = True,
        quirks: bool = False,
    ) -> None:
        order = order if type(order) is tuple else tuple(order)
        n = len(order)
        self._probes = question.probes
        self._finals = question.finals
        self._tokens = question.tokens
        self._vocab = question.vocab
        self._delta = question.delta
        self._order = order
        self._n_total = n
        self._n_open = 0
        self._cursor = [0] * n
        self._extra = [0] * n
        self._state = [0] * n
        self._latest: list[int] = [-1] * n
        self._cost = 0
        self._record = record
        self._events: list[tuple[int, int, int, int, int, int]] = []
        self._notes: list[tuple[int, str]] = []
        self._quirks = quirks

    # ------------------------------------------------------------------ actions
    def open(self) -> Reveal | None:
        """Open the next branch in this run's order and advance it once.

        Returns ``None`` when every branch has been opened already.
        """
        i = self._n_open
        if i >= self._n_total:
            return None
        self._n_open = i + 1
        # Inlined _step(i, OPEN): see the class docstring.
        b = self._order[i]
        probes = self._probes[b]
        c = self._cursor[i]
        if c < len(probes):
            code = probes[c]
            c += 1
            self._cursor[i] = c
            charge = self._delta
            finished = False
        else:
            code = self._finals[b]
            charge = self._tokens[b] - c * self._delta
            if charge < 0:
                charge = 0
            self._extra[i] += charge
            self._state[i] = 1
            finished = True
        self._latest[i] = code
        cost = self._cost + charge
        self._cost = cost
        if self._record:
            self._events.append((OPEN, i, c, code, charge, cost))
        return _new_tuple(Reveal, (i, self._vocab[code], finished, charge))

    def advance(self, branch: int) -> Reveal:
        """Advance an opened, live branch by one interval and reveal its latest answer."""
        try:
            ok = 0 <= branch < self._n_open and not self._state[branch]
        except TypeError:
            ok = False
        if not ok:
            self._check_advance(branch)
            return self._step(branch, ADVANCE)
        # Inlined _step(branch, ADVANCE): see the class docstring.
        b = self._order[branch]
        probes = self._probes[b]
        c = self._cursor[branch]
        if c < len(probes):
            code = probes[c]
            c += 1
            self._cursor[branch] = c
            charge = self._delta
            finished = False
        else:
            code = self._finals[b]
            charge = self._tokens[b] - c * self._delta
            if charge < 0:
                charge = 0
            self._extra[branch] += charge
            self._state[branch] = 1
            finished = True
        self._latest[branch] = code
        cost = self._cost + charge
        self._cost = cost
        if self._record:
            self._events.append((ADVANCE, branch, c, code, charge, cost))
        return _new_tuple(Reveal, (branch, self._vocab[code], finished, charge))

    def advance_many(self, branches: Iterable[int]) -> list[Reveal]:
        """Advance several branches once each, in the given order."""
        advance = self.advance
        return [advance(b) for b in branches]

    def read(self) -> Reveal | None:
        """Full-read the next fresh branch: its final answer at its full length.

        Returns ``None`` when every branch has been opened already.
        """
        i = self._n_open
        if i >= self._n_total:
            return None
        self._n_open = i + 1
        b = self._order[i]
        charge = self._tokens[b]
        code = self._finals[b]
        self._state[i] = 1
        self._latest[i] = code
        # The branch's charged tokens become exactly its length (cursor * Δ + extra).
        self._extra[i] = charge - self._cursor[i] * self._delta
        cost = self._cost + charge
        self._cost = cost
        if self._record:
            self._events.append((READ, i, 0, code, charge, cost))
        return _new_tuple(Reveal, (i, self._vocab[code], True, charge))

    def prune(self, branch: int) -> None:
        """Stop a live branch for good; it costs nothing and can no longer be advanced."""
        if not (0 <= branch < self._n_open):
            raise IllegalActionError(
                f"PRUNE({branch}) is illegal: only branches 0..{self._n_open - 1} are open",
                action=("prune", branch),
                state=self.describe(),
            )
        state = self._state[branch]
        if state:
            why = "already pruned" if state == 2 else "already finished"
            raise IllegalActionError(
                f"PRUNE({branch}) is illegal: the branch is {why}",
                action=("prune", branch),
                state=self.describe(),
            )
        self._state[branch] = 2
        if self._record:
            self._events.append((PRUNE, branch, self._cursor[branch], -1, 0, self._cost))

    def note(self, text: str) -> None:
        """Attach a remark of the controller's own to the execution trace."""
        if self._record:
            self._notes.append((len(self._events), str(text)))

    # ---------------------------------------------------------------- internals
    def _check_advance(self, branch: int) -> None:
        if not isinstance(branch, int) or isinstance(branch, bool):
            raise IllegalActionError(
                f"ADVANCE({branch!r}) is illegal: branch ids are integers",
                action=("advance", branch),
                state=self.describe(),
            )
        if self._quirks and 0 <= branch < self._n_total and branch <= self._n_open and self._state[branch] != 2:
            return
        if not (0 <= branch < self._n_open):
            raise IllegalActionError(
                f"ADVANCE({branch}) is illegal: only branches 0..{self._n_open - 1} are open; "
                "open a new branch with open()",
                action=("advance", branch),
                state=self.describe(),
            )
        why = "pruned" if self._state[branch] == 2 else "finished (its final answer is already revealed)"
        raise IllegalActionError(
            f"ADVANCE({branch}) is illegal: the branch is {why}",
            action=("advance", branch),
            state=self.describe(),
        )

    def _step(self, i: int, action: int) -> Reveal:
        """One interval of branch ``i`` (any state: the compatibility paths use it too)."""
        b = self._order[i]
        probes = self._probes[b]
        c = self._cursor[i]
        if c < len(probes):
            code = probes[c]
            c += 1
            self._cursor[i] = c
            charge = self._delta
            finished = False
        else:
            code = self._finals[b]
            # Spent = the probes' intervals; the original code charges the remainder
            # against them only (so a quirk re-advance of a finished branch pays again).
            charge = self._tokens[b] - c * self._delta
            if charge < 0:
                charge = 0
            self._extra[i] += charge
            self._state[i] = 1
            finished = True
        self._latest[i] = code
        self._cost += charge
        if self._record:
            self._events.append((action, i, c, code, charge, self._cost))
        return _new_tuple(Reveal, (i, self._vocab[code], finished, charge))

    # ----------------------------------------------------------- read-only state
    @property
    def cost(self) -> int:
        """Tokens charged so far on this question."""
        return self._cost

    @property
    def sequential_tokens(self) -> int:
        """Tokens of the longest branch so far: latency when branches decode in parallel."""
        delta, cursor, extra = self._delta, self._cursor, self._extra
        return max((cursor[i] * delta + extra[i] for i in range(self._n_open)), default=0)

    @property
    def delta(self) -> int:
        """Tokens per interval (Δ)."""
        return self._delta

    @property
    def n_opened(self) -> int:
        """Branches opened (or read) so far."""
        return self._n_open

    @property
    def n_available(self) -> int:
        """Branches that can still be opened."""
        return self._n_total - self._n_open

    @property
    def n_total(self) -> int:
        """Branches this run offers for the question."""
        return self._n_total

    def depth(self, branch: int) -> int:
        """Intervals revealed on an opened branch."""
        self._check_opened(branch)
        return self._cursor[branch]

    def is_finished(self, branch: int) -> bool:
        """Whether an opened branch has been read to its end."""
        self._check_opened(branch)
        return self._state[branch] == 1

    def is_pruned(self, branch: int) -> bool:
        """Whether an opened branch has been pruned."""
        self._check_opened(branch)
        return self._state[branch] == 2

    def answer(self, branch: int) -> str | None:
        """Latest revealed answer of an opened branch."""
        self._check_opened(branch)
        code = self._latest[branch]
        return None if code < 0 else self._vocab[code]

    def alive(self) -> list[int]:
        """Opened branches that are neither finished nor pruned, in opening order."""
        state = self._state
        return [i for i in range(self._n_open) if not state[i]]

    @property
    def branches(self) -> tuple[BranchView, ...]:
        """A snapshot of every opened branch."""
        vocab, delta = self._vocab, self._delta
        return tuple(
            BranchView(
                i,
                self._cursor[i],
                self._state[i] == 1,
                self._state[i] == 2,
                None if self._latest[i] < 0 else vocab[self._latest[i]],
                self._cursor[i] * delta + self._extra[i],
            )
            for i in range(self._n_open)
        )

    @property
    def trace(self) -> tuple[TraceEvent, ...]:
        """The recorded execution trace (empty when recording is off)."""
        return self.trace_head(len(self._events))

    def trace_head(self, n: int) -> tuple[TraceEvent, ...]:
        """The first ``n`` events of :attr:`trace`, building only those (the judge keeps a few hundred)."""
        vocab = self._vocab
        names = ACTION_NAMES
        return tuple(
            _new_tuple(TraceEvent, (step, names[a], i, depth, None if code < 0 else vocab[code], charge, total))
            for step, (a, i, depth, code, charge, total) in enumerate(self._events[: max(0, n)])
        )

    @property
    def n_events(self) -> int:
        """Length of :attr:`trace`."""
        return len(self._events)

    def actions(self) -> list[tuple[str, int]]:
        """``(action name, branch)`` of every recorded event: what a trace's signature is made of."""
        names = ACTION_NAMES
        return [(names[e[0]], e[1]) for e in self._events]

    @property
    def notes(self) -> tuple[tuple[int, str], ...]:
        """Controller remarks as ``(number of trace events before it, text)``."""
        return tuple(self._notes)

    def describe(self) -> str:
        """A one-line summary of the state, used in error messages."""
        return (
            f"opened={self._n_open}/{self._n_total}, alive={self.alive()}, "
            f"finished={[i for i in range(self._n_open) if self._state[i] == 1]}, "
            f"pruned={[i for i in range(self._n_open) if self._state[i] == 2]}, cost={self._cost}"
        )

    def _check_opened(self, branch: int) -> None:
        if not (0 <= branch < self._n_open):
            raise IllegalActionError(
                f"branch {branch} is not open (open branches: 0..{self._n_open - 1})",
                action=("inspect", branch),
                state=self.describe(),
            )

    # ------------------------------------------- original AutoTTS compatibility
    def probe_new(self) -> tuple[str, int, bool]:
        """Open the next branch and advance it once: ``(answer, branch_id, finished)``.

        Raises :class:`~autotts.errors.StoreExhaustedError` (an ``IndexError``) when no
        branch is left, as running off the branch list did in the original code.
        """
        r = self.open()
        if r is None:
            raise StoreExhaustedError(f"all {self._n_total} branches have been opened")
        return r.answer, r.branch, r.finished

    def probe_more(self, index: int) -> tuple[str, bool]:
        """Advance branch ``index`` once: ``(answer, finished)``."""
        if self._quirks and index == self._n_open and index < self._n_total:
            r = self._step(index, ADVANCE)
        else:
            r = self.advance(index)
        return r.answer, r.finished

    def get_new_branch_final_answer(self) -> str:
        """Full-read the next branch and return its final answer."""
        r = self.read()
        if r is None:
            raise StoreExhaustedError(f"all {self._n_total} branches have been opened")
        return r.answer

    def get_seq_and_total_tokens(self) -> tuple[int, int]:
        """``(sequential tokens, total tokens)`` spent so far."""
        return self.sequential_tokens, self._cost
