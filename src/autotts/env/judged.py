"""The judged session: the controller-facing session of a process that holds no hidden data.

An untrusted controller (a discovery candidate) runs in a process of its own. A trusted
*judge* owns the question's data, the branch order and the accounting; every action of the
controller (:meth:`JudgedSession.open`, ``advance``, ``advance_many``, ``read``, ``prune``,
``note`` and the AutoTTS compatibility names) is one request over a pipe, answered with
exactly what the action reveals — branch id, answer, finished, charge — and nothing else.
Read-only state (``cost``, ``alive()``, ``depth(i)``, ``branches``, ``trace``, …) is kept
here from what was revealed, so it costs no round trip and can hold nothing hidden.
``advance_many`` is a single request.

The wire format is small and binary (little-endian): a frame is ``u32 length`` + body,
the body's first byte names the message.

========  ==================  ==========================================================
from      message             body after the tag
========  ==================  ==========================================================
child     ``o`` open          —
child     ``r`` read          —
child     ``a`` advance       ``i32 branch``
child     ``m`` advance_many  ``u32 n`` + ``n × i32``
child     ``p`` prune         ``i32 branch``
child     ``n`` note          UTF-8 text
child     ``A`` answer        ``u8 has_answer`` + UTF-8 text
child     ``E`` failure       UTF-8 JSON ``{"kind", "message"}``
child     ``S`` settings      UTF-8 text (``repr(schedule(beta))``)
child     ``R`` ready         UTF-8 isolation note
judge     ``e`` episode       ``f64 beta`` (NaN: none) + ``u32 n_total`` + ``u32 delta``
judge     ``v`` reveals       ``u16 n`` + n × (``i32 branch, u8 finished, u32 charge,
                              u16 len`` + answer) + optional ``x`` + illegal-action message
judge     ``0`` exhausted     — (``open``/``read`` with no branch left)
judge     ``x`` illegal       UTF-8 message
judge     ``k`` done          — (prune, note)
judge     ``s`` settings?     ``f64 beta``
judge     ``q`` quit          —
========  ==================  ==========================================================

The judge validates every request against its own session; the local checks here only give
the same error messages without a round trip.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable, Sequence
from typing import Protocol

from autotts.env.session import ACTION_NAMES, ADVANCE, OPEN, PRUNE, READ, BranchView, Reveal, TraceEvent
from autotts.errors import IllegalActionError, StoreExhaustedError

_LEN = struct.Struct("<I")
_I32 = struct.Struct("<i")
_REVEAL = struct.Struct("<iBIH")
_EPISODE = struct.Struct("<dII")
_COUNT = struct.Struct("<H")
_MAX_I32 = 2**31 - 1
#: Largest frame either side accepts; anything bigger is a protocol violation.
MAX_FRAME = 1 << 24
_MANY_CHUNK = 1024
_new_tuple = tuple.__new__


class ChannelClosed(EOFError):
    """The other side of the channel went away (or sent a malformed frame)."""


class Channel:
    """Framed messages over a pair of pipe descriptors (blocking, one request at a time)."""

    __slots__ = ("_buf", "_rfd", "_wfd")

    def __init__(self, rfd: int, wfd: int) -> None:
        self._rfd = rfd
        self._wfd = wfd
        self._buf = b""

    def send(self, body: bytes) -> None:
        """Write one frame."""
        data = _LEN.pack(len(body)) + body
        view = memoryview(data)
        while view:
            n = os.write(self._wfd, view)
            view = view[n:]

    def recv(self) -> bytes:
        """Read one frame; :class:`ChannelClosed` at end of file or on an oversized frame."""
        buf = self._buf
        while len(buf) < 4:
            chunk = os.read(self._rfd, 1 << 16)
            if not chunk:
                raise ChannelClosed("channel closed")
            buf += chunk
        (n,) = _LEN.unpack_from(buf)
        if n > MAX_FRAME:
            raise ChannelClosed(f"frame of {n} bytes exceeds the limit of {MAX_FRAME}")
        end = 4 + n
        while len(buf) < end:
            chunk = os.read(self._rfd, max(1 << 16, end - len(buf)))
            if not chunk:
                raise ChannelClosed("channel closed in the middle of a frame")
            buf += chunk
        self._buf = buf[end:]
        return buf[4:end]

    def request(self, body: bytes) -> bytes:
        """Send one frame and wait for the reply."""
        self.send(body)
        return self.recv()


def encode_reveals(reveals: Iterable[tuple[int, str, bool, int]], illegal: str = "") -> bytes:
    """The judge's ``v`` reply: reveals in order, then an illegal-action message if one stopped them."""
    parts = [b"v", b""]
    n = 0
    for branch, answer, finished, charge in reveals:
        raw = answer.encode("utf-8")[:65535]
        parts.append(_REVEAL.pack(branch, 1 if finished else 0, charge, len(raw)))
        parts.append(raw)
        n += 1
    parts[1] = _COUNT.pack(n)
    if illegal:
        parts.append(b"x" + illegal.encode("utf-8"))
    return b"".join(parts)


def decode_reveals(body: bytes) -> tuple[list[tuple[int, str, bool, int]], str]:
    """Inverse of :func:`encode_reveals` (body without the leading ``v``)."""
    (n,) = _COUNT.unpack_from(body, 0)
    pos = 2
    out = []
    for _ in range(n):
        branch, finished, charge, ln = _REVEAL.unpack_from(body, pos)
        pos += _REVEAL.size
        out.append((branch, body[pos : pos + ln].decode("utf-8", "replace"), bool(finished), charge))
        pos += ln
    illegal = body[pos + 1 :].decode("utf-8", "replace") if pos < len(body) and body[pos : pos + 1] == b"x" else ""
    return out, illegal


def encode_episode(beta: float | None, n_total: int, delta: int) -> bytes:
    """The judge's ``e`` message starting an episode."""
    return b"e" + _EPISODE.pack(float("nan") if beta is None else float(beta), n_total, delta)


def decode_episode(body: bytes) -> tuple[float | None, int, int]:
    """Inverse of :func:`encode_episode` (body without the leading ``e``)."""
    beta, n_total, delta = _EPISODE.unpack(body)
    return (None if beta != beta else beta), n_total, delta


def encode_advance_many(branches: list[int]) -> bytes:
    """The child's ``m`` request."""
    return b"m" + _LEN.pack(len(branches)) + struct.pack(f"<{len(branches)}i", *branches)


def decode_branches(body: bytes) -> list[int]:
    """Branch ids of an ``m`` request (body without the ``m``)."""
    (n,) = _LEN.unpack_from(body, 0)
    if len(body) != 4 + 4 * n:
        raise ValueError("malformed advance_many request")
    return list(struct.unpack_from(f"<{n}i", body, 4))


class Requester(Protocol):
    """Anything that sends one request to the judge and returns its reply."""

    def request(self, body: bytes) -> bytes:
        """One round trip."""
        ...


_MUX = struct.Struct("<HI")


def encode_mux(items: Sequence[tuple[int, bytes]]) -> bytes:
    """``M`` frame: several episodes' messages at once, ``u16 n`` + n × (``u16 slot, u32 len`` + body)."""
    parts = [b"M", _COUNT.pack(len(items))]
    for slot, body in items:
        parts.append(_MUX.pack(slot, len(body)))
        parts.append(body)
    return b"".join(parts)


def decode_mux(body: bytes) -> list[tuple[int, bytes]]:
    """Inverse of :func:`encode_mux` (body without the leading ``M``)."""
    (n,) = _COUNT.unpack_from(body, 0)
    pos = 2
    out = []
    for _ in range(n):
        slot, ln = _MUX.unpack_from(body, pos)
        pos += _MUX.size
        if pos + ln > len(body):
            raise ValueError("truncated multiplexed frame")
        out.append((slot, body[pos : pos + ln]))
        pos += ln
    if pos != len(body):
        raise ValueError("trailing bytes in a multiplexed frame")
    return out


def encode_batch(episodes: Sequence[tuple[float | None, int, int]]) -> bytes:
    """``b`` frame: start several episodes at once (slot = position), each ``f64 β, u32 n_total, u32 Δ``."""
    return b"b" + _COUNT.pack(len(episodes)) + b"".join(encode_episode(*e)[1:] for e in episodes)


def decode_batch(body: bytes) -> list[tuple[float | None, int, int]]:
    """Inverse of :func:`encode_batch` (body without the leading ``b``)."""
    (n,) = _COUNT.unpack_from(body, 0)
    size = _EPISODE.size
    if len(body) != 2 + n * size:
        raise ValueError("malformed batch")
    return [decode_episode(body[2 + i * size : 2 + (i + 1) * size]) for i in range(n)]


class JudgedSession:
    """The session API of :class:`~autotts.env.session.ReplaySession`, answered by a judge.

    State is mirrored from the reveals: per opened branch its depth (intervals revealed),
    a state flag (0 live, 1 finished, 2 pruned), its latest answer and its tokens (the sum
    of its charges). The judge's own session is the authority; this copy only saves round
    trips and can never know more than the controller was told.
    """

    __slots__ = (
        "_answers",
        "_chan",
        "_cost",
        "_delta",
        "_depth",
        "_events",
        "_n_open",
        "_n_total",
        "_notes",
        "_state",
        "_tokens",
    )

    def __init__(self, channel: Requester, n_total: int, delta: int) -> None:
        self._chan = channel
        self._n_total = n_total
        self._delta = delta
        self._n_open = 0
        self._depth: list[int] = []
        self._state: list[int] = []
        self._answers: list[str] = []
        self._tokens: list[int] = []
        self._cost = 0
        self._events: list[tuple[int, int, int, str | None, int, int]] = []
        self._notes: list[tuple[int, str]] = []

    # ------------------------------------------------------------------ actions
    def _apply(self, action: int, branch: int, answer: str, finished: bool, charge: int) -> Reveal:
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
        return _new_tuple(Reveal, (branch, answer, finished, charge))

    def _fresh(self, tag: bytes, action: int) -> Reveal | None:
        if self._n_open >= self._n_total:
            return None
        reply = self._chan.request(tag)
        if reply[:1] == b"0":
            return None
        reveals, illegal = self._reveals(reply)
        if illegal or len(reveals) != 1:
            raise IllegalActionError(illegal or "the judge refused the action", state=self.describe())
        branch, answer, finished, charge = reveals[0]
        return self._apply(action, branch, answer, finished, charge)

    def open(self) -> Reveal | None:
        """Open the next branch in this run's order and advance it once (None when none is left)."""
        return self._fresh(b"o", OPEN)

    def read(self) -> Reveal | None:
        """Full-read the next fresh branch: its final answer at its full length (None when none is left)."""
        return self._fresh(b"r", READ)

    def advance(self, branch: int) -> Reveal:
        """Advance an opened, live branch by one interval and reveal its latest answer."""
        self._check_advance(branch)
        reveals, illegal = self._reveals(self._chan.request(b"a" + _I32.pack(branch)))
        if illegal or len(reveals) != 1:
            raise IllegalActionError(illegal or "the judge refused the action", action=("advance", branch))
        b, answer, finished, charge = reveals[0]
        return self._apply(ADVANCE, b, answer, finished, charge)

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
            legal.append(b)
            state[b] = -1  # may finish; the judge decides, a repeat is checked by it
        out: list[Reveal] = []
        # At most _MANY_CHUNK ids per request, so that no frame outgrows MAX_FRAME.
        for start in range(0, len(legal), _MANY_CHUNK):
            chunk = legal[start : start + _MANY_CHUNK]
            reveals, illegal = self._reveals(self._chan.request(encode_advance_many(chunk)))
            for b, answer, finished, charge in reveals:
                out.append(self._apply(ADVANCE, b, answer, finished, charge))
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
        reply = self._chan.request(b"p" + _I32.pack(branch))
        if reply[:1] != b"k":
            raise IllegalActionError(reply[1:].decode("utf-8", "replace"), action=("prune", branch))
        self._state[branch] = 2
        self._events.append((PRUNE, branch, self._depth[branch], None, 0, self._cost))

    def note(self, text: str) -> None:
        """Attach a remark of the controller's own to the execution trace (the judge records it)."""
        text = str(text)
        self._chan.request(b"n" + text.encode("utf-8", "replace")[:4000])
        self._notes.append((len(self._events), text))

    # ---------------------------------------------------------------- internals
    @staticmethod
    def _reveals(reply: bytes) -> tuple[list[tuple[int, str, bool, int]], str]:
        tag = reply[:1]
        if tag == b"v":
            return decode_reveals(reply[1:])
        if tag == b"x":
            return [], reply[1:].decode("utf-8", "replace")
        raise ChannelClosed(f"unexpected reply {tag!r} from the judge")

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
        return tuple(
            _new_tuple(TraceEvent, (step, ACTION_NAMES[a], i, depth, answer, charge, total))
            for step, (a, i, depth, answer, charge, total) in enumerate(self._events)
        )

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
