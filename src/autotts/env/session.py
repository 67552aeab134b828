"""The controller-facing replay session: what controller code calls.

A session replays one question in one run's branch order. Controllers see branch ids
0, 1, 2, ... in the order they opened them; the ids are positions in the run's order,
never store indices. Under the reference protocol "advance" is the paper's CONTINUE
immediately followed by a free PROBE, and cost follows ``specs/replay-protocol.md``:

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


class ReplaySession:
    """Replay of one question in one run's branch order (see the module docstring)."""

    __slots__ = (
        "_charged",
        "_cost",
        "_cursor",
        "_events",
        "_finished",
        "_latest",
        "_n_open",
        "_n_total",
        "_notes",
        "_order",
        "_pruned",
        "_q",
        "_quirks",
        "_record",
        "_spent",
    )

    def __init__(
        self,
        question: ReplayQuestion,
        order: Sequence[int],
        *,
        record: bool = True,
        quirks: bool = False,
    ) -> None:
        n = len(order)
        self._q = question
        self._order = tuple(order)
        self._n_total = n
        self._n_open = 0
        self._cursor = [0] * n
        self._spent = [0] * n
        self._charged = [0] * n
        self._finished = [False] * n
        self._pruned = [False] * n
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
        return self._step(i, OPEN)

    def advance(self, branch: int) -> Reveal:
        """Advance an opened, live branch by one interval and reveal its latest answer."""
        try:
            ok = 0 <= branch < self._n_open and not self._finished[branch] and not self._pruned[branch]
        except TypeError:
            ok = False
        if not ok:
            self._check_advance(branch)
        return self._step(branch, ADVANCE)

    def advance_many(self, branches: Iterable[int]) -> list[Reveal]:
        """Advance several branches once each, in the given order."""
        return [self.advance(b) for b in branches]

    def read(self) -> Reveal | None:
        """Full-read the next fresh branch: its final answer at its full length.

        Returns ``None`` when every branch has been opened already.
        """
        i = self._n_open
        if i >= self._n_total:
            return None
        self._n_open = i + 1
        b = self._order[i]
        charge = self._q.tokens[b]
        code = self._q.finals[b]
        self._finished[i] = True
        self._latest[i] = code
        self._charged[i] = charge
        self._cost += charge
        if self._record:
            self._events.append((READ, i, 0, code, charge, self._cost))
        return Reveal(i, self._q.vocab[code], True, charge)

    def prune(self, branch: int) -> None:
        """Stop a live branch for good; it costs nothing and can no longer be advanced."""
        if not (0 <= branch < self._n_open):
            raise IllegalActionError(
                f"PRUNE({branch}) is illegal: only branches 0..{self._n_open - 1} are open",
                action=("prune", branch),
                state=self.describe(),
            )
        if self._pruned[branch] or self._finished[branch]:
            why = "already pruned" if self._pruned[branch] else "already finished"
            raise IllegalActionError(
                f"PRUNE({branch}) is illegal: the branch is {why}",
                action=("prune", branch),
                state=self.describe(),
            )
        self._pruned[branch] = True
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
        if self._quirks and 0 <= branch < self._n_total and branch <= self._n_open and not self._pruned[branch]:
            return
        if not (0 <= branch < self._n_open):
            raise IllegalActionError(
                f"ADVANCE({branch}) is illegal: only branches 0..{self._n_open - 1} are open; "
                "open a new branch with open()",
                action=("advance", branch),
                state=self.describe(),
            )
        why = "pruned" if self._pruned[branch] else "finished (its final answer is already revealed)"
        raise IllegalActionError(
            f"ADVANCE({branch}) is illegal: the branch is {why}",
            action=("advance", branch),
            state=self.describe(),
        )

    def _step(self, i: int, action: int) -> Reveal:
        b = self._order[i]
        q = self._q
        probes = q.probes[b]
        c = self._cursor[i]
        if c < len(probes):
            code = probes[c]
            self._cursor[i] = c + 1
            charge = q.delta
            self._spent[i] += charge
            finished = False
        else:
            code = q.finals[b]
            charge = q.tokens[b] - self._spent[i]
            if charge < 0:
                charge = 0
            self._finished[i] = True
            finished = True
        self._latest[i] = code
        self._charged[i] += charge
        self._cost += charge
        if self._record:
            self._events.append((action, i, self._cursor[i], code, charge, self._cost))
        return Reveal(i, q.vocab[code], finished, charge)

    # ----------------------------------------------------------- read-only state
    @property
    def cost(self) -> int:
        """Tokens charged so far on this question."""
        return self._cost

    @property
    def sequential_tokens(self) -> int:
        """Tokens of the longest branch so far: latency when branches decode in parallel."""
        return max(self._charged[: self._n_open], default=0)

    @property
    def delta(self) -> int:
        """Tokens per interval (Δ)."""
        return self._q.delta

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
        return self._finished[branch]

    def is_pruned(self, branch: int) -> bool:
        """Whether an opened branch has been pruned."""
        self._check_opened(branch)
        return self._pruned[branch]

    def answer(self, branch: int) -> str | None:
        """Latest revealed answer of an opened branch."""
        self._check_opened(branch)
        code = self._latest[branch]
        return None if code < 0 else self._q.vocab[code]

    def alive(self) -> list[int]:
        """Opened branches that are neither finished nor pruned, in opening order."""
        fin, pr = self._finished, self._pruned
        return [i for i in range(self._n_open) if not fin[i] and not pr[i]]

    @property
    def branches(self) -> tuple[BranchView, ...]:
        """A snapshot of every opened branch."""
        vocab = self._q.vocab
        return tuple(
            BranchView(
                i,
                self._cursor[i],
                self._finished[i],
                self._pruned[i],
                None if self._latest[i] < 0 else vocab[self._latest[i]],
                self._charged[i],
            )
            for i in range(self._n_open)
        )

    @property
    def trace(self) -> tuple[TraceEvent, ...]:
        """The recorded execution trace (empty when recording is off)."""
        vocab = self._q.vocab
        return tuple(
            TraceEvent(
                step,
                ACTION_NAMES[a],
                i,
                depth,
                None if code < 0 else vocab[code],
                charge,
                total,
            )
            for step, (a, i, depth, code, charge, total) in enumerate(self._events)
        )

    @property
    def notes(self) -> tuple[tuple[int, str], ...]:
        """Controller remarks as ``(number of trace events before it, text)``."""
        return tuple(self._notes)

    def describe(self) -> str:
        """A one-line summary of the state, used in error messages."""
        return (
            f"opened={self._n_open}/{self._n_total}, alive={self.alive()}, "
            f"finished={[i for i in range(self._n_open) if self._finished[i]]}, "
            f"pruned={[i for i in range(self._n_open) if self._pruned[i]]}, cost={self._cost}"
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
