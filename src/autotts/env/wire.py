"""The judge's wire format: framed messages over pipes, and the column-wise step frames.

A frame is ``u32 length`` + body; the body's first byte names the message. Both sides of
a judged run live on one machine (the candidate process is a child of the judge), so the
column arrays use the machine's byte order; lengths and scalars are little-endian.

Why this shape: a judged sweep plays ~100 episodes side by side and every step of the
candidate process carries one request per running episode, so a step frame holds many
small requests and its reply as many reveals. Packing each request field as one array
(``array.tobytes`` / ``frombytes``) and the replies as one ``marshal`` blob moves the
per-action cost of encoding and decoding into C; a per-item ``struct`` loop cost more
than the judge's own replay of the action.

Step frame, candidate → judge (``M``)::

    u32 n | u16 slot[n] | u8 op[n] | i32 arg[n] | payload

``op`` is the tag of the request (``a`` advance, ``o`` open, ``r`` read, ``p`` prune,
``n`` note, ``m`` advance_many, ``A`` answer, ``E`` failure). ``arg`` is the branch of
``a``/``p``, the number of ids of ``m`` (``4·arg`` payload bytes, i32 each), the byte
length of the UTF-8 payload of ``n``/``A``/``E`` (``A`` with ``-1``: no answer) and 0
otherwise. Payloads follow in request order.

Step reply, judge → candidate (``M``): one reply per request that is not ``A``/``E``, in
request order (so no slot ids), as ``marshal`` data — the judge is trusted, both processes
run the same interpreter, and ``marshal.loads`` builds the (shared) answer strings in C;
the judge never unmarshals what the candidate sends::

    (n, branches, answers, finished, charges, exceptions, starts)

The reveals ``(branch, answer, finished, charge)``, in order, as four columns: ``i32``
branch ids and charges (bytes), the answers (a list, so that marshal writes each shared
answer string once) and ``u8`` finished flags; the candidate turns them into
:class:`~autotts.env.session.Reveal` tuples in one pass (in C with the extension built:
:mod:`autotts.env._judgedc`), with no intermediate tuple per reveal. A reply not named among
the ``exceptions`` is exactly one reveal; an exception ``(index, status, count, message)``
says, for reply ``index``, its ``status`` (``v`` reveals, ``0`` nothing left to open, ``k``
done, ``x`` illegal), how many reveals it owns and a message (the illegal action that
stopped an ``advance_many``, or why an action was refused). ``starts`` lists the episodes
``(slot, β, n_total, Δ)`` the judge started in slots that answers freed.
"""

from __future__ import annotations

import marshal
import os
import select
import struct
import sys
from array import array
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from autotts.env import speedups
from autotts.env.session import Reveal

_LEN = struct.Struct("<I")
_EPISODE = struct.Struct("<dII")
_COUNT = struct.Struct("<H")
_SWAP = sys.byteorder != "little"
_MARSHAL_VERSION = 4
#: Largest frame either side accepts; anything bigger is a protocol violation.
MAX_FRAME = 1 << 24

OP_ADVANCE, OP_OPEN, OP_READ, OP_PRUNE, OP_NOTE, OP_MANY, OP_ANSWER, OP_FAIL = b"aorpnmAE"
ST_REVEALS, ST_EXHAUSTED, ST_DONE, ST_ILLEGAL = b"v0kx"

#: A request of one episode inside the candidate process: a bare ``int`` is ``advance(int)``
#: (the common case, so it costs no tuple), anything else is ``(op, arg, payload)``.
Request = int | tuple[int, int, bytes]
#: A reply as the episode sees it: a :class:`Reveal` (one reveal), ``None`` (nothing left to
#: open) or ``(status, reveals, message)``.
Reply = Reveal | None | tuple[int, list[Reveal], str]

_reveal = partial(tuple.__new__, Reveal)


def _py_make_reveals(branches: bytes, answers: list[str | None], finished: bytes, charges: bytes) -> list[Reveal]:
    """The :class:`Reveal` tuples of a step reply's columns (ValueError if they differ in length)."""
    n = len(answers)
    bs, _ = _unpack("i", branches, 0, n)
    cs, _ = _unpack("i", charges, 0, n)
    if len(branches) != 4 * n or len(charges) != 4 * n or len(finished) != n:
        raise ValueError("the reveal columns differ in length")
    return list(map(_reveal, zip(bs, answers, map(bool, finished), cs, strict=True)))


make_reveals: Callable[[bytes, list[str | None], bytes, bytes], list[Reveal]] = (
    _py_make_reveals if speedups.EXTENSION is None else speedups.EXTENSION.make_reveals
)


class ChannelClosed(EOFError):
    """The other side of the channel went away (or sent a malformed frame)."""


class Channel:
    """Framed messages over a pair of pipe descriptors (blocking, one request at a time)."""

    __slots__ = ("_buf", "_rfd", "_wfd")

    #: Most bytes :meth:`drain_while_sending` holds for the other side; a peer that keeps
    #: sending without reading is cut off instead of filling the judge's memory.
    max_buffered = 4 * MAX_FRAME

    def __init__(self, rfd: int, wfd: int) -> None:
        self._rfd = rfd
        self._wfd = wfd
        self._buf = b""

    def send(self, body: bytes) -> None:
        """Write one frame (see :meth:`drain_while_sending`)."""
        data = _LEN.pack(len(body)) + body
        view = memoryview(data)
        while view:
            try:
                n = os.write(self._wfd, view)
            except BlockingIOError:
                self._wait_writable()
                continue
            view = view[n:]

    def drain_while_sending(self) -> None:
        """Never block in :meth:`send` while the other side may be blocked writing to us.

        The candidate process keeps several step frames in flight. If both pipes filled up
        — the judge writing a large reply, the candidate writing its next frame — each side
        would wait for the other for ever. The judge's channel therefore writes without
        blocking and, while its pipe is full, reads what the other side sends into its
        buffer; :meth:`recv` then takes frames from the buffer first.
        """
        os.set_blocking(self._wfd, False)

    def _wait_writable(self) -> None:
        readable, _w, _x = select.select([self._rfd], [self._wfd], [])
        if readable:
            chunk = os.read(self._rfd, 1 << 16)
            if not chunk:
                raise ChannelClosed("channel closed")
            self._buf += chunk
            if len(self._buf) > self.max_buffered:
                raise ChannelClosed(f"the other side sent over {self.max_buffered} bytes without reading")

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
        if len(buf) < end:
            parts = [buf]
            have = len(buf)
            while have < end:
                chunk = os.read(self._rfd, max(1 << 16, end - have))
                if not chunk:
                    raise ChannelClosed("channel closed in the middle of a frame")
                parts.append(chunk)
                have += len(chunk)
            buf = b"".join(parts)
        self._buf = buf[end:]
        return buf[4:end]

    def fileno(self) -> int:
        """The descriptor frames arrive on (for ``select``)."""
        return self._rfd

    def has_frame(self) -> bool:
        """Whether a whole frame is already buffered (``select`` would not report it)."""
        buf = self._buf
        return len(buf) >= 4 and len(buf) >= 4 + _LEN.unpack_from(buf)[0]

    def request(self, body: bytes) -> bytes:
        """Send one frame and wait for the reply."""
        self.send(body)
        return self.recv()


def _pack(code: str, values: Any) -> bytes:
    arr = array(code, values)
    if _SWAP:
        arr.byteswap()
    return arr.tobytes()


def _unpack(code: str, body: bytes, start: int, n: int) -> tuple[list[int], int]:
    """``n`` items of type ``code`` at ``start``; ValueError when the body is too short."""
    arr = array(code)
    end = start + n * arr.itemsize
    if end > len(body):
        raise ValueError("truncated frame")
    arr.frombytes(body[start:end])
    if _SWAP:
        arr.byteswap()
    return arr.tolist(), end


def _u32(body: bytes, pos: int) -> tuple[int, int]:
    if pos + 4 > len(body):
        raise ValueError("truncated frame")
    return _LEN.unpack_from(body, pos)[0], pos + 4


# ------------------------------------------------------------------ episode starts
def encode_episode(beta: float | None, n_total: int, delta: int) -> bytes:
    """``f64 β`` (NaN: none) + ``u32 n_total`` + ``u32 Δ`` of one episode."""
    return _EPISODE.pack(float("nan") if beta is None else float(beta), n_total, delta)


def decode_episode(body: bytes) -> tuple[float | None, int, int]:
    """Inverse of :func:`encode_episode`."""
    beta, n_total, delta = _EPISODE.unpack(body)
    return (None if beta != beta else beta), n_total, delta


def encode_batch(episodes: Sequence[tuple[float | None, int, int]]) -> bytes:
    """``b`` frame: start several episodes at once (slot = position), each ``f64 β, u32 n_total, u32 Δ``."""
    return b"b" + _COUNT.pack(len(episodes)) + b"".join(encode_episode(*e) for e in episodes)


def decode_batch(body: bytes) -> list[tuple[float | None, int, int]]:
    """Inverse of :func:`encode_batch` (body without the leading ``b``)."""
    (n,) = _COUNT.unpack_from(body, 0)
    size = _EPISODE.size
    if len(body) != 2 + n * size:
        raise ValueError("malformed batch")
    return [decode_episode(body[2 + i * size : 2 + (i + 1) * size]) for i in range(n)]


# ------------------------------------------------------------------ step frames
def encode_requests(slots: Sequence[int], ops: bytes | bytearray, args: Sequence[int], payload: bytes) -> bytes:
    """The candidate's ``M`` step frame (see the module docstring)."""
    return b"".join((b"M", _LEN.pack(len(slots)), _pack("H", slots), bytes(ops), _pack("i", args), payload))


def decode_requests(body: bytes) -> tuple[list[int], bytes, list[int], bytes]:
    """``(slots, ops, args, payload)`` of an ``M`` step frame (body with its tag); ValueError if malformed."""
    if body[:1] != b"M":
        raise ValueError(f"expected a step frame, got {body[:1]!r}")
    n, pos = _u32(body, 1)
    slots, pos = _unpack("H", body, pos, n)
    if pos + n > len(body):
        raise ValueError("truncated frame")
    ops = body[pos : pos + n]
    args, pos = _unpack("i", body, pos + n, n)
    return slots, ops, args, body[pos:]


def request_columns(requests: Sequence[Request]) -> tuple[bytearray, list[int], bytes]:
    """``(ops, args, payload)`` of requests in the candidate's in-process form."""
    ops = bytearray()
    args: list[int] = []
    payload: list[bytes] = []
    for req in requests:
        if type(req) is int:
            ops.append(OP_ADVANCE)
            args.append(req)
        else:
            op, arg, data = req  # type: ignore[misc]
            ops.append(op)
            args.append(arg)
            if data:
                payload.append(data)
    return ops, args, b"".join(payload)


def encode_replies(
    n: int,
    reveals: Sequence[tuple[int, str, bool, int]],
    exceptions: Sequence[tuple[int, int, int, str]],
    starts: Sequence[tuple[int, float | None, int, int]] = (),
) -> bytes:
    """The judge's ``M`` step reply (see the module docstring).

    ``n`` replies, their reveals, the exceptions ``(index, status, count, message)`` and the
    episodes started in freed slots ``(slot, β, n_total, Δ)``.
    """
    if reveals:
        branches, answers, finished, charges = zip(*reveals, strict=True)
        cols: tuple[bytes, list[str | None], bytes, bytes] = (
            _pack("i", branches),
            list(answers),
            bytes(finished),
            _pack("i", charges),
        )
    else:
        cols = (b"", [], b"", b"")
    return b"M" + marshal.dumps((n, *cols, list(exceptions), list(starts)), _MARSHAL_VERSION)


def decode_replies(body: bytes) -> tuple[list[Reply], list[tuple[int, float | None, int, int]]]:
    """``(replies in request order, started episodes)`` of a step reply (body with its tag); ValueError if malformed."""
    if body[:1] != b"M":
        raise ValueError(f"expected a step reply, got {body[:1]!r}")
    try:
        n, branches, answers, finished, charges, exceptions, starts = marshal.loads(memoryview(body)[1:])
        reveals: list[Reveal] = make_reveals(branches, answers, finished, charges)
    except (EOFError, TypeError) as exc:
        raise ValueError(f"malformed step reply: {exc}") from None
    r = len(reveals)
    if not exceptions:
        if r != n:
            raise ValueError("reveals and replies disagree")
        return reveals, starts  # type: ignore[return-value]
    # Replies between two exceptions are single reveals: splice them in as runs.
    out: list[Reply] = []
    ri = 0
    prev = 0
    for i, st, c, msg in exceptions:
        if i < prev or i >= n:
            raise ValueError("exceptions out of order")
        run = i - prev
        out += reveals[ri : ri + run]
        ri += run
        out.append(None if st == ST_EXHAUSTED else (st, reveals[ri : ri + c], msg))
        ri += c
        prev = i + 1
    run = n - prev
    out += reveals[ri : ri + run]
    ri += run
    if ri != r or len(out) != n:
        raise ValueError("reveals and replies disagree")
    return out, starts
