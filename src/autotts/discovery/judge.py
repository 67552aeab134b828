"""The trusted judge: owns the stores, branch orders and accounting while a candidate plays.

The candidate's process (:mod:`autotts.discovery._child`) never receives replay data. For
every episode the judge sends ``(β, number of branches, Δ)``; the candidate's controller
then acts through a :class:`~autotts.env.judged.JudgedSession`, and each action arrives
here as a request that the judge applies to its *own*
:class:`~autotts.env.session.ReplaySession` and answers with exactly what it reveals. Cost,
sequential tokens, traces and notes are what this session recorded; the candidate only
contributes its answer per episode.

Episodes are played ``batch`` at a time (the *window*): the candidate process runs each
of them in a greenlet of its own, and one step frame carries the pending request of every
episode it resumed (one frame the replies, both column-wise: :mod:`autotts.env.wire`), so
a round trip costs the pipe once per step, not once per action, and the judge's work per
action is little more than its own replay of it. When an episode answers, the judge starts
the next one in its slot with the same reply, so the window stays full until the episodes
run out. The candidate process plays its window as a few groups whose frames are all in
flight, so the two processes work at the same time. Episodes are independent, so none of
this changes a result of a stateless controller.

Episode order: without a secret the episodes run store by store, β by β, run by run,
question by question (reversed for a reversed job). With a secret, every episode gets a
key drawn from it and the episodes run in key order (descending when reversed), so the
sweep's order is unpredictable to the candidate and the leak pass replays its episodes in
exactly the reverse of the order the sweep used — state carried from one question to the
next then shows.
"""

from __future__ import annotations

import hashlib
import json
import select
import struct
import sys
from array import array
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from autotts.discovery.leak import action_signature, perturb_question
from autotts.env.session import ReplaySession, Reveal
from autotts.env.wire import (
    OP_ADVANCE,
    OP_ANSWER,
    OP_FAIL,
    OP_MANY,
    OP_NOTE,
    OP_OPEN,
    OP_PRUNE,
    OP_READ,
    ST_DONE,
    ST_EXHAUSTED,
    ST_ILLEGAL,
    ST_REVEALS,
    Channel,
    decode_requests,
    encode_batch,
    encode_replies,
)
from autotts.errors import IllegalActionError
from autotts.store.schema import ReplayQuestion

_F64 = struct.Struct("<d")
_SWAP = sys.byteorder != "little"
_MAX_ANSWER_CHARS = 500
_MAX_NOTES = 50
_MAX_NOTE_CHARS = 200
_MAX_SETTINGS_CHARS = 400

#: ``(store index, β index, run, question)``
EpisodeKey = tuple[int, int, int, int]


class ProtocolError(Exception):
    """The candidate process sent something the protocol does not allow."""


class CandidateFailure(Exception):
    """The candidate reported an exception (``kind``: ``exception``, ``memory``, ``class``, ``isolation``)."""

    def __init__(self, kind: str, message: str, where: Mapping[str, Any]) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.where = where


def episode_key(secret: bytes, key: EpisodeKey) -> bytes:
    """The secret sort key of one episode (a keyed hash: unpredictable without the secret)."""
    return hashlib.blake2b(repr(key).encode(), key=secret[:64], digest_size=16).digest()


def episode_order(
    n_questions: Sequence[int],
    n_betas: int,
    runs: Sequence[int],
    *,
    secret: bytes | None,
    reverse: bool,
) -> list[EpisodeKey]:
    """Every ``(store, β, run, question)`` of a job, in the order the judge plays them."""
    keys = [
        (si, bi, run, qi)
        for si, nq in enumerate(n_questions)
        for bi in range(n_betas)
        for run in runs
        for qi in range(nq)
    ]
    if secret is not None:
        keys.sort(key=lambda k: episode_key(secret, k), reverse=reverse)
    elif reverse:
        keys.reverse()
    return keys


def perturbation_seed(secret: bytes, key: EpisodeKey) -> int:
    """The perturbation seed of one leak-pass episode, derived from the evaluation's secret."""
    return int.from_bytes(hashlib.blake2b(b"perturb" + repr(key).encode(), key=secret[:64]).digest()[:8], "little")


@dataclass
class _Cell:
    answers: list[list[str | None]]
    cost: list[list[int]]
    seq: list[list[int]]
    traces: list[dict[str, Any]]


def judge(
    chan: Channel | Sequence[Channel],
    *,
    stores: Sequence[Sequence[ReplayQuestion]],
    betas: Sequence[float | None],
    runs: Sequence[int],
    orders: Mapping[int, Mapping[int, tuple[int, ...]]],
    trace_runs: set[int],
    events_cap: int,
    n_questions: int | None = None,
    leak_masks: Mapping[EpisodeKey, Sequence[tuple[int, bool]]] | None = None,
    secret: bytes | None = None,
    reverse: bool = False,
    on_episode: Callable[[Mapping[str, Any]], None] | None = None,
    batch: int = 128,
    on_failure: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Play every episode of a job against the candidate on ``chan``; return the judged cells.

    ``chan`` may be several channels, one per process of the same candidate: the episodes
    are then dealt out among them in turn (``keys[i::n]``) and served as their frames
    arrive, in this thread; the books are the same. ``on_failure(i)`` is called as soon as
    the process on channel ``i`` fails (the caller kills the others).

    Raises :class:`CandidateFailure` when the candidate reports an error,
    :class:`ProtocolError` on a malformed request and
    :class:`~autotts.env.judged.ChannelClosed` when the process went away.
    """
    chans = [chan] if isinstance(chan, Channel) else list(chan)
    settings: dict[str, str] = {}
    for c in chans:
        settings = _handshake(c, betas)

    nqs = [len(qs) if n_questions is None else min(n_questions, len(qs)) for qs in stores]
    run_index = {run: ri for ri, run in enumerate(runs)}
    cells: dict[tuple[int, int], _Cell] = {
        (si, bi): _Cell(
            [[None] * nqs[si] for _ in runs], [[0] * nqs[si] for _ in runs], [[0] * nqs[si] for _ in runs], []
        )
        for si in range(len(stores))
        for bi in range(len(betas))
    }
    keys = episode_order(nqs, len(betas), runs, secret=secret, reverse=reverse)

    def start(key: EpisodeKey) -> ReplaySession:
        si, _bi, run, qi = key
        q = stores[si][qi]
        order = orders[q.n_branches][run]
        if leak_masks is not None:
            if secret is None:
                raise ValueError("a leak pass needs the evaluation's secret")
            q = perturb_question(q, order, leak_masks.get(key, ()), seed=perturbation_seed(secret, key))
        return ReplaySession(q, order, record=run in trace_runs)

    def finish(key: EpisodeKey, session: ReplaySession, answer: str | None) -> None:
        si, bi, run, qi = key
        cell = cells[(si, bi)]
        ri = run_index[run]
        cell.answers[ri][qi] = answer
        cell.cost[ri][qi] = session.cost
        cell.seq[ri][qi] = session.sequential_tokens
        if run in trace_runs:
            cell.traces.append(_trace_record(session, run, qi, answer, events_cap, full=leak_masks is None))

    if len(chans) == 1:
        _play(chans[0], keys, start, finish, betas, on_episode, batch)
    else:
        _play_shards(chans, keys, start, finish, betas, on_episode, batch, on_failure)
    for c in chans:
        c.send(b"q")
    out_cells = []
    for (si, bi), cell in sorted(cells.items()):
        cell.traces.sort(key=lambda t: (t["run"], t["question"]))
        out_cells.append(
            {
                "store": si,
                "beta_index": bi,
                "answers": cell.answers,
                "cost": cell.cost,
                "seq": cell.seq,
                "traces": cell.traces,
            }
        )
    return {"ok": True, "cells": out_cells, "settings": settings}


def _handshake(chan: Channel, betas: Sequence[float | None]) -> dict[str, str]:
    """Wait for the candidate process to be ready; ask its settings per β (what ``schedule(β)`` says)."""
    where: dict[str, Any] = {"stage": "import"}
    hello = chan.recv()
    _expect_ready(hello, where)
    settings: dict[str, str] = {}
    for bi, beta in enumerate(betas):
        if beta is None:
            continue
        where = {"stage": "construct", "beta": beta}
        reply = chan.request(b"s" + _F64.pack(beta))
        if reply[:1] == b"E":
            raise _failure(reply, where)
        if reply[:1] != b"S":
            raise ProtocolError(f"expected the settings of β={beta}, got {reply[:1]!r}")
        text = reply[1:].decode("utf-8", "replace")
        if text:
            settings[str(bi)] = text[:_MAX_SETTINGS_CHARS]
    return settings


def _play_shards(
    chans: Sequence[Channel],
    keys: Sequence[EpisodeKey],
    start: Callable[[EpisodeKey], ReplaySession],
    finish: Callable[[EpisodeKey, ReplaySession, str | None], None],
    betas: Sequence[float | None],
    on_episode: Callable[[Mapping[str, Any]], None] | None,
    window: int,
    on_failure: Callable[[int], None] | None,
) -> None:
    """:func:`_play` on every channel at once, ``keys[i::n]`` on channel ``i``, in this one thread.

    Why one thread: every judge of a discovery run shares this process's GIL, and judge
    threads handing it to each other cost more than serving the frames (two threads made
    the judge's CPU 1.5x). The channels are served in turn as their frames arrive
    (``select``). The first failure — the candidate's error, a broken protocol, a process
    gone — calls ``on_failure(i)`` (the caller kills the other processes) and is raised.
    """
    n = len(chans)
    players = [_Player(chans[i], keys[i::n], start, finish, betas, on_episode, window) for i in range(n)]
    active: dict[int, int] = {}  # read descriptor -> channel index
    try:
        i = 0
        for i, player in enumerate(players):
            if player.begin():
                active[chans[i].fileno()] = i
        while active:
            ready = [i for i in active.values() if chans[i].has_frame()]
            if not ready:
                readable, _w, _x = select.select(list(active), [], [])
                ready = [active[fd] for fd in readable]
            for i in ready:
                if not players[i].feed(chans[i].recv()):
                    del active[chans[i].fileno()]
    except BaseException:
        if on_failure is not None:
            on_failure(i)
        raise


def _where(key: EpisodeKey, betas: Sequence[float | None]) -> dict[str, Any]:
    si, bi, run, qi = key
    return {"stage": "solve", "store": si, "beta": betas[bi], "run": run, "question": qi}


def _play_batch(
    chan: Channel,
    group: Sequence[EpisodeKey],
    sessions: Sequence[ReplaySession],
    betas: Sequence[float | None],
    on_episode: Callable[[Mapping[str, Any]], None] | None,
) -> list[str | None]:
    """Play the given sessions side by side (all at once); return their answers."""
    by_key = dict(zip(group, sessions, strict=True))
    answers: dict[EpisodeKey, str | None] = {}
    _play(
        chan,
        list(group),
        by_key.__getitem__,
        lambda key, _s, answer: answers.__setitem__(key, answer),
        betas,
        on_episode,
        max(1, len(group)),
    )
    return [answers[k] for k in group]


def _play(
    chan: Channel,
    keys: Sequence[EpisodeKey],
    start: Callable[[EpisodeKey], ReplaySession],
    finish: Callable[[EpisodeKey, ReplaySession, str | None], None],
    betas: Sequence[float | None],
    on_episode: Callable[[Mapping[str, Any]], None] | None,
    window: int,
) -> None:
    """Play ``keys`` in order on one channel, ``window`` episodes side by side (see :class:`_Player`)."""
    player = _Player(chan, keys, start, finish, betas, on_episode, window)
    if player.begin():
        while player.feed(chan.recv()):
            pass


class _Player:
    """The judge's side of one channel: ``keys`` played in order, ``window`` episodes side by side.

    Over step frames (:mod:`autotts.env.wire`): a step frame carries a request of each
    episode the candidate resumed, and the answers of those that ended. The judge answers
    *every* frame, in order: the replies to its requests, plus new episodes (β, branches,
    Δ) started in the slots that answers freed — so the window stays full until the keys
    run out, and the candidate may keep several frames in flight. After the reply to the
    frame that holds the last answer the candidate sends nothing more.
    """

    def __init__(
        self,
        chan: Channel,
        keys: Sequence[EpisodeKey],
        start: Callable[[EpisodeKey], ReplaySession],
        finish: Callable[[EpisodeKey, ReplaySession, str | None], None],
        betas: Sequence[float | None],
        on_episode: Callable[[Mapping[str, Any]], None] | None,
        window: int,
    ) -> None:
        self.chan = chan
        self.keys = keys
        self.start = start
        self.finish = finish
        self.betas = betas
        self.on_episode = on_episode
        self.window = window
        self.live: list[ReplaySession | None] = []
        self.live_keys: list[EpisodeKey] = []
        self.nxt = 0
        self.running = 0
        self.where: EpisodeKey | None = None

    def begin(self) -> bool:
        """Start the first window of episodes; False when there are none."""
        keys = self.keys
        n0 = min(self.window, len(keys))
        if not n0:
            return False
        self.live = [self.start(k) for k in keys[:n0]]
        self.live_keys = list(keys[:n0])
        self.nxt = self.running = n0
        betas = self.betas
        pairs = zip(self.live_keys, self.live, strict=True)
        self.chan.send(encode_batch([(betas[k[1]], s.n_total, s.delta) for k, s in pairs if s]))
        self.where = self.live_keys[0]
        self._waiting()
        return True

    def _waiting(self) -> None:
        if self.on_episode is not None and self.where is not None:
            self.on_episode(_where(self.where, self.betas))

    def feed(self, frame: bytes) -> bool:
        """Serve one step frame and send its reply; False once every episode has answered."""
        betas = self.betas
        live = self.live
        live_keys = self.live_keys
        if frame[:1] == b"E":
            raise _failure(frame, _where(self.where or live_keys[0], betas))
        try:
            slots, ops, args, payload = decode_requests(frame)
        except ValueError as exc:
            raise ProtocolError(f"malformed frame: {exc}") from None
        if not slots:
            raise ProtocolError("an empty frame while episodes are still running")
        reveals: list[Reveal] = []
        exceptions: list[tuple[int, int, int, str]] = []
        freed: list[int] = []
        k = 0  # replies so far
        pos = 0  # payload consumed so far
        for slot, op, arg in zip(slots, ops, args, strict=True):
            try:
                session = live[slot]
            except IndexError:
                session = None
            if session is None:
                raise ProtocolError(f"request for episode slot {slot}, which is not running")
            if op == OP_ADVANCE:  # the hot path, inlined
                try:
                    reveals.append(session.advance(arg))
                except IllegalActionError as exc:
                    exceptions.append((k, ST_ILLEGAL, 0, str(exc)))
                k += 1
                continue
            data = b""
            if op == OP_NOTE or op == OP_ANSWER or op == OP_FAIL or op == OP_MANY:
                size = 4 * arg if op == OP_MANY else max(arg, 0)
                if arg < -1 or (arg == -1 and op != OP_ANSWER) or pos + size > len(payload):
                    raise ProtocolError(f"malformed request {bytes((op,))!r}: bad payload size {arg}")
                data = payload[pos : pos + size]
                pos += size
            if op == OP_ANSWER:
                self.finish(live_keys[slot], session, None if arg < 0 else _answer_text(data))
                live[slot] = None
                self.running -= 1
                freed.append(slot)
                continue
            if op == OP_FAIL:
                raise _failure(b"E" + data, _where(live_keys[slot], betas))
            _serve(session, op, arg, data, k, reveals, exceptions)
            k += 1
        if pos != len(payload):
            raise ProtocolError("malformed frame: trailing payload bytes")
        starts: list[tuple[int, float | None, int, int]] = []
        keys = self.keys
        for slot in freed:
            if self.nxt >= len(keys):
                break
            key = keys[self.nxt]
            self.nxt += 1
            fresh = self.start(key)
            live[slot] = fresh
            live_keys[slot] = key
            self.running += 1
            starts.append((slot, betas[key[1]], fresh.n_total, fresh.delta))
        self.chan.send(encode_replies(k, reveals, exceptions, starts))
        if not self.running:
            return False
        first = slots[0]
        if live[first] is not None:
            self.where = live_keys[first]
        elif starts:
            self.where = live_keys[starts[0][0]]
        self._waiting()
        return True


def _answer_text(raw: bytes) -> str:
    text = raw.decode("utf-8", "replace")
    return text if len(text) <= _MAX_ANSWER_CHARS else text[:_MAX_ANSWER_CHARS] + "\u2026"


def _expect_ready(hello: bytes, where: Mapping[str, Any]) -> None:
    if hello[:1] == b"E":
        raise _failure(hello, where)
    if hello[:1] != b"R":
        raise ProtocolError(f"expected the ready message, got {hello[:1]!r}")


def _failure(body: bytes, where: Mapping[str, Any]) -> CandidateFailure:
    try:
        data = json.loads(body[1:].decode("utf-8", "replace"))
        kind, message = str(data.get("kind", "exception")), str(data.get("message", ""))
    except (ValueError, AttributeError):
        kind, message = "exception", body[1:2000].decode("utf-8", "replace")
    return CandidateFailure(kind, message[-3000:], dict(where))


def _serve(
    session: ReplaySession,
    op: int,
    arg: int,
    data: bytes,
    k: int,
    reveals: list[Reveal],
    exceptions: list[tuple[int, int, int, str]],
) -> None:
    """Apply one request other than ``advance`` to the judge's session; add its reply (number ``k``)."""
    try:
        if op == OP_OPEN or op == OP_READ:
            got = session.open() if op == OP_OPEN else session.read()
            if got is None:
                exceptions.append((k, ST_EXHAUSTED, 0, ""))
            else:
                reveals.append(got)
            return
        if op == OP_MANY:
            done = 0
            illegal = ""
            ids = array("i", data)
            if _SWAP:
                ids.byteswap()
            for b in ids:
                try:
                    reveals.append(session.advance(b))
                except IllegalActionError as exc:
                    illegal = str(exc)
                    break
                done += 1
            exceptions.append((k, ST_REVEALS, done, illegal))
            return
        if op == OP_PRUNE:
            session.prune(arg)
            exceptions.append((k, ST_DONE, 0, ""))
            return
        if op == OP_NOTE:
            if len(session.notes) < _MAX_NOTES:
                session.note(data[: 4 * _MAX_NOTE_CHARS].decode("utf-8", "replace")[:_MAX_NOTE_CHARS])
            exceptions.append((k, ST_DONE, 0, ""))
            return
    except IllegalActionError as exc:
        exceptions.append((k, ST_ILLEGAL, 0, str(exc)))
        return
    raise ProtocolError(f"unknown request {bytes((op,))!r}")


def _trace_record(
    session: ReplaySession, run: int, qi: int, answer: str | None, events_cap: int, *, full: bool
) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "run": run,
        "question": qi,
        "answer": answer,
        "sig": action_signature(session.actions()),
        "n_events": session.n_events,
        "n_total": session.n_total,
        "branches": [[b.depth, b.finished, b.pruned] for b in session.branches],
    }
    if full:
        rec["events"] = [
            [e.action, e.branch, e.depth, e.answer, e.cost, e.total] for e in session.trace_head(events_cap)
        ]
        rec["notes"] = [[k, t] for k, t in session.notes]
    return rec
