"""The judged session: the controller-facing session of a process that holds no hidden data.

An untrusted controller (a discovery candidate) runs in a process of its own. A trusted
*judge* owns the question's data, the branch order and the accounting; every action of the
controller (:meth:`JudgedSession.open`, ``advance``, ``advance_many``, ``read``, ``prune``,
``note`` and the AutoTTS compatibility names) is one request to the judge, answered with
exactly what the action reveals — branch id, answer, finished, charge — and nothing else.
Read-only state (``cost``, ``alive()``, ``depth(i)``, ``branches``, ``trace``, …) is kept
here from what was revealed, so it costs no round trip and can hold nothing hidden.
``advance_many`` is a single request (per 1,024 ids).

The session talks to a *link*: a callable taking a :data:`~autotts.env.wire.Request` and
returning the judge's :data:`~autotts.env.wire.Reply`. In the candidate process the link
is the switch into the dispatcher greenlet, which gathers the requests of every running
episode into one step frame (:mod:`autotts.env.wire`); the request of ``advance(i)`` is
the bare ``int`` ``i`` and its reply the :class:`Reveal` itself, so the hot path builds
no message objects of its own.

The judge validates every request against its own session; the local checks here only give
the same error messages without a round trip.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, NoReturn

from autotts.env import speedups
from autotts.env.session import ACTION_NAMES, ADVANCE, OPEN, PRUNE, READ, BranchView, Reveal, TraceEvent
from autotts.env.wire import (
    MAX_FRAME,
    OP_MANY,
    OP_NOTE,
    OP_OPEN,
    OP_PRUNE,
    OP_READ,
    ST_DONE,
    Channel,
    ChannelClosed,
    Reply,
    Request,
)
from autotts.errors import IllegalActionError, StoreExhaustedError

__all__ = ["MAX_FRAME", "Channel", "ChannelClosed", "JudgedSession", "Link"]

_MANY_CHUNK = 1024
_new_tuple = tuple.__new__
_OPEN_REQ: Request = (OP_OPEN, 0, b"")
_READ_REQ: Request = (OP_READ, 0, b"")

#: What a session sends its requests through (see the module docstring).
Link = Callable[[Request], Reply]


class _SessionState:
    """The fields of a judged session (pure Python; the C extension's ``SessionCore`` has the same)."""

    __slots__ = (
        "_answers",
        "_cost",
        "_delta",
        "_depth",
        "_events",
        "_link",
        "_n_events",
        "_n_open",
        "_n_total",
        "_notes",
        "_state",
        "_tokens",
    )


_C_CORE: Any = None if speedups.EXTENSION is None else speedups.EXTENSION.SessionCore
if TYPE_CHECKING:
    _Base = _SessionState
else:
    _Base = _SessionState if _C_CORE is None else _C_CORE


class JudgedSession(_Base):
    """The session API of :class:`~autotts.env.session.ReplaySession`, answered by a judge.

    State is mirrored from the reveals: per opened branch its depth (intervals revealed),
    a state flag (0 live, 1 finished, 2 pruned), its latest answer and its tokens (the sum
    of its charges). The judge's own session is the authority; this copy only saves round
    trips and can never know more than the controller was told.

    With the C extension built (:data:`autotts.env.speedups.ENABLED`), the fields live in
    its ``SessionCore`` and ``advance`` of a live branch named by a plain ``int`` runs in C;
    every other case comes back to :meth:`_advance_py`, the method the pure-Python class
    uses throughout.
    """

    __slots__ = ()

    def __init__(self, link: Link, n_total: int, delta: int) -> None:
        self._link = link
        self._n_total = n_total
        self._delta = delta
        self._n_open = 0
        self._depth: list[int] = []
        self._state: list[int] = []
        self._answers: list[str] = []
        self._tokens: list[int] = []
        self._cost = 0
        # ADVANCE events are kept flat, from their reveal's own objects: ``branch, answer``
        # for an interval that did not finish the branch and was charged Δ (nearly all of
        # them), else ``-1 - branch, answer, finished, charge``. Nothing is allocated on the
        # hot path and the Reveal is freed as soon as the controller drops it (keeping ~500
        # of them alive per episode cost a quarter of this process's time). Other actions are
        # one tuple ``(action, branch, depth, answer, charge, total)``; :attr:`trace` expands all.
        self._events: list[Any] = []
        self._n_events = 0
        self._notes: list[tuple[int, str]] = []

    # ------------------------------------------------------------------ actions
    def _apply(self, action: int, reveal: Reveal) -> Reveal:
        branch, answer, finished, charge = reveal
        if action != ADVANCE:
            self._n_open += 1
            self._depth.append(0)
            self._state.append(0)
            self._answers.append(answer)
            self._tokens.append(0)
        if action == READ:
            finished = True
        elif not finished:
            self._depth[branch] += 1
        if finished:
            self._state[branch] = 1
        self._answers[branch] = answer
        self._tokens[branch] += charge
        self._cost += charge
        self._events.append((action, branch, self._depth[branch] if action != READ else 0, answer, charge, self._cost))
        self._n_events += 1
        return reveal

    def _fresh(self, request: Request, action: int) -> Reveal | None:
        if self._n_open >= self._n_total:
            return None
        reply = self._link(request)
        if reply is None:
            return None
        if type(reply) is not Reveal:
            raise IllegalActionError(_refusal(reply), state=self.describe())
        return self._apply(action, reply)

    def open(self) -> Reveal | None:
        """Open the next branch in this run's order and advance it once (None when none is left)."""
        return self._fresh(_OPEN_REQ, OPEN)

    def read(self) -> Reveal | None:
        """Full-read the next fresh branch: its final answer at its full length (None when none is left)."""
        return self._fresh(_READ_REQ, READ)

    def _advance_py(self, branch: int) -> Reveal:
        """Advance an opened, live branch by one interval and reveal its latest answer."""
        state = self._state
        if type(branch) is not int or not 0 <= branch < self._n_open or state[branch]:
            self._check_advance(branch)  # raises, unless an int subclass names a live branch
            branch = int(branch)
        reply = self._link(branch)
        if type(reply) is not Reveal:
            self._refused(reply, branch)
        # Inlined _apply(ADVANCE, reply): this is the hot path of every controller.
        b, answer, finished, charge = reply
        depth = self._depth
        if finished:
            state[b] = 1
        else:
            depth[b] += 1
        self._answers[b] = answer
        self._tokens[b] += charge
        cost = self._cost + charge
        self._cost = cost
        if finished or charge != self._delta:
            self._events += (-1 - b, answer, finished, charge)
        else:
            self._events += (b, answer)
        self._n_events += 1
        return reply

    if TYPE_CHECKING or _C_CORE is None:
        # With the C core, its ``advance`` is inherited (and calls back into _advance_py).
        advance = _advance_py

    def _refused(self, reply: Reply, branch: int) -> NoReturn:
        raise IllegalActionError(_refusal(reply), action=("advance", branch))

    def advance_many(self, branches: Iterable[int]) -> list[Reveal]:
        """Advance several branches once each, in the given order — one request per 1,024 branches."""
        ids = list(branches)
        # Check locally in order, as a sequence of advance() calls would: the ones before an
        # illegal id are still applied, then the error is raised.
        state = list(self._state)
        legal: list[int] = []
        error: IllegalActionError | None = None
        for b in ids:
            try:
                self._check_advance(b, state)
            except IllegalActionError as exc:
                error = exc
                break
            legal.append(int(b))
            state[b] = -1  # may finish; the judge decides, a repeat is checked by it
        out: list[Reveal] = []
        # At most _MANY_CHUNK ids per request, so that no frame outgrows MAX_FRAME.
        for start in range(0, len(legal), _MANY_CHUNK):
            chunk = legal[start : start + _MANY_CHUNK]
            reply = self._link((OP_MANY, len(chunk), array("i", chunk).tobytes()))
            reveals, illegal = _reveals(reply)
            for r in reveals:
                out.append(self._apply(ADVANCE, r))
            if illegal:
                at = chunk[len(reveals)] if len(reveals) < len(chunk) else None
                raise IllegalActionError(illegal, action=("advance", at))
        if error is not None:
            raise error
        return out

    def prune(self, branch: int) -> None:
        """Stop a live branch for good; it costs nothing and can no longer be advanced."""
        if not isinstance(branch, int) or not (0 <= branch < self._n_open):
            raise IllegalActionError(
                f"PRUNE({branch}) is illegal: only branches 0..{self._n_open - 1} are open",
                action=("prune", branch),
                state=self.describe(),
            )
        state = self._state[branch]
        if state:
            why = "already pruned" if state == 2 else "already finished"
            raise IllegalActionError(
                f"PRUNE({branch}) is illegal: the branch is {why}", action=("prune", branch), state=self.describe()
            )
        reply = self._link((OP_PRUNE, int(branch), b""))
        if reply is None or isinstance(reply, Reveal) or reply[0] != ST_DONE:
            raise IllegalActionError(_refusal(reply), action=("prune", branch))
        self._state[branch] = 2
        self._events.append((PRUNE, branch, self._depth[branch], None, 0, self._cost))
        self._n_events += 1

    def note(self, text: str) -> None:
        """Attach a remark of the controller's own to the execution trace (the judge records it)."""
        text = str(text)
        raw = text.encode("utf-8", "replace")[:4000]
        self._link((OP_NOTE, len(raw), raw))
        self._notes.append((self._n_events, text))

    # ---------------------------------------------------------------- internals
    def _check_advance(self, branch: int, state: list[int] | None = None) -> None:
        state = self._state if state is None else state
        if not isinstance(branch, int) or isinstance(branch, bool):
            raise IllegalActionError(
                f"ADVANCE({branch!r}) is illegal: branch ids are integers",
                action=("advance", branch),
                state=self.describe(),
            )
        if not (0 <= branch < self._n_open):
            raise IllegalActionError(
                f"ADVANCE({branch}) is illegal: only branches 0..{self._n_open - 1} are open; "
                "open a new branch with open()",
                action=("advance", branch),
                state=self.describe(),
            )
        if state[branch] > 0:
            why = "pruned" if state[branch] == 2 else "finished (its final answer is already revealed)"
            raise IllegalActionError(
                f"ADVANCE({branch}) is illegal: the branch is {why}", action=("advance", branch), state=self.describe()
            )

    def _check_opened(self, branch: int) -> None:
        if not isinstance(branch, int) or not (0 <= branch < self._n_open):
            raise IllegalActionError(
                f"branch {branch} is not open (open branches: 0..{self._n_open - 1})",
                action=("inspect", branch),
                state=self.describe(),
            )

    # ----------------------------------------------------------- read-only state
    @property
    def cost(self) -> int:
        """Tokens charged so far on this question (as revealed; the judge keeps the books)."""
        return self._cost

    @property
    def sequential_tokens(self) -> int:
        """Tokens of the longest branch so far: latency when branches decode in parallel."""
        return max(self._tokens, default=0)

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
        return self._depth[branch]

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
        return self._answers[branch]

    def alive(self) -> list[int]:
        """Opened branches that are neither finished nor pruned, in opening order."""
        state = self._state
        return [i for i in range(self._n_open) if not state[i]]

    @property
    def branches(self) -> tuple[BranchView, ...]:
        """A snapshot of every opened branch."""
        return tuple(
            BranchView(i, self._depth[i], self._state[i] == 1, self._state[i] == 2, self._answers[i], self._tokens[i])
            for i in range(self._n_open)
        )

    @property
    def trace(self) -> tuple[TraceEvent, ...]:
        """The actions of this episode as seen from here (the judge records its own copy)."""
        out: list[TraceEvent] = []
        depth: dict[int, int] = {}
        total = 0
        events = self._events
        i = 0
        while i < len(events):
            e = events[i]
            step = len(out)
            if type(e) is tuple:
                a, b, d, ans, charge, total = e
                if a != READ:
                    depth[b] = d
                out.append(_new_tuple(TraceEvent, (step, ACTION_NAMES[a], b, d, ans, charge, total)))
                i += 1
            else:
                if e >= 0:
                    b, answer, finished, charge = e, events[i + 1], False, self._delta
                    i += 2
                else:
                    b, answer, finished, charge = -1 - e, *events[i + 1 : i + 4]
                    i += 4
                d = depth.get(b, 0) + (0 if finished else 1)
                depth[b] = d
                total += charge
                out.append(_new_tuple(TraceEvent, (step, "advance", b, d, answer, charge, total)))
        return tuple(out)

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

    # ------------------------------------------- original AutoTTS compatibility
    def probe_new(self) -> tuple[str, int, bool]:
        """Open the next branch and advance it once: ``(answer, branch_id, finished)``."""
        r = self.open()
        if r is None:
            raise StoreExhaustedError(f"all {self._n_total} branches have been opened")
        return r.answer, r.branch, r.finished

    def probe_more(self, index: int) -> tuple[str, bool]:
        """Advance branch ``index`` once: ``(answer, finished)``."""
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


def _reveals(reply: Reply) -> tuple[list[Reveal], str]:
    """Reveals and illegal-action message of a reply to ``advance_many``."""
    if isinstance(reply, Reveal):
        return [reply], ""
    if reply is not None:
        _status, reveals, message = reply
        return reveals, message
    raise ChannelClosed(f"unexpected reply {reply!r} from the judge")


def _refusal(reply: Reply) -> str:
    """The judge's message for a refused action."""
    if reply is not None and not isinstance(reply, Reveal) and reply[2]:
        return reply[2]
    return "the judge refused the action"
