"""The trusted judge: owns the stores, branch orders and accounting while a candidate plays.

The candidate's process (:mod:`autotts.discovery._child`) never receives replay data. For
every episode the judge sends ``(β, number of branches, Δ)``; the candidate's controller
then acts through a :class:`~autotts.env.judged.JudgedSession`, and each action arrives
here as a request that the judge applies to its *own*
:class:`~autotts.env.session.ReplaySession` and answers with exactly what it reveals. Cost,
sequential tokens, traces and notes are what this session recorded; the candidate only
contributes its answer per episode.

Episodes are played ``batch`` at a time: the candidate process runs each of them in a
greenlet of its own, and one frame carries the pending request of every episode of the
batch (one frame the replies), so a round trip costs the pipe once per step of the
batch, not once per action. Episodes are independent, so the batching changes no result
of a stateless controller.

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
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from autotts.discovery.leak import action_signature, perturb_question
from autotts.env.judged import Channel, decode_branches, decode_mux, encode_batch, encode_mux, encode_reveals
from autotts.env.session import ReplaySession
from autotts.errors import IllegalActionError
from autotts.store.schema import ReplayQuestion

_I32 = struct.Struct("<i")
_F64 = struct.Struct("<d")
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
    chan: Channel,
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
    batch: int = 1024,
) -> dict[str, Any]:
    """Play every episode of a job against the candidate on ``chan``; return the judged cells.

    Raises :class:`CandidateFailure` when the candidate reports an error,
    :class:`ProtocolError` on a malformed request and
    :class:`~autotts.env.judged.ChannelClosed` when the process went away.
    """
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
    for start in range(0, len(keys), batch):
        group = keys[start : start + batch]
        sessions: list[ReplaySession] = []
        for key in group:
            si, bi, run, qi = key
            q = stores[si][qi]
            order = orders[q.n_branches][run]
            if leak_masks is not None:
                if secret is None:
                    raise ValueError("a leak pass needs the evaluation's secret")
                q = perturb_question(q, order, leak_masks.get(key, ()), seed=perturbation_seed(secret, key))
            sessions.append(ReplaySession(q, order, record=run in trace_runs))
        answers = _play_batch(chan, group, sessions, betas, on_episode)
        for key, session, answer in zip(group, sessions, answers, strict=True):
            si, bi, run, qi = key
            cell = cells[(si, bi)]
            ri = run_index[run]
            cell.answers[ri][qi] = answer
            cell.cost[ri][qi] = session.cost
            cell.seq[ri][qi] = session.sequential_tokens
            if run in trace_runs:
                cell.traces.append(_trace_record(session, run, qi, answer, events_cap, full=leak_masks is None))
    chan.send(b"q")
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
    """Run several episodes at once: one frame carries every waiting episode's request, one frame the replies."""
    chan.send(encode_batch([(betas[k[1]], s.n_total, s.delta) for k, s in zip(group, sessions, strict=True)]))
    answers: list[str | None] = [None] * len(group)
    remaining = set(range(len(group)))
    while True:
        if on_episode is not None:
            on_episode(_where(group[min(remaining)], betas))
        frame = chan.recv()
        if frame[:1] != b"M":
            if frame[:1] == b"E":
                raise _failure(frame, _where(group[min(remaining)], betas))
            raise ProtocolError(f"expected a multiplexed frame, got {frame[:1]!r}")
        try:
            items = decode_mux(frame[1:])
        except (ValueError, struct.error) as exc:
            raise ProtocolError(f"malformed frame: {exc}") from None
        replies: list[tuple[int, bytes]] = []
        for slot, body in items:
            if slot not in remaining:
                raise ProtocolError(f"request for episode slot {slot}, which is not running")
            tag = body[:1]
            if tag == b"A":
                answers[slot] = _answer(body)
                remaining.discard(slot)
            elif tag == b"E":
                raise _failure(body, _where(group[slot], betas))
            else:
                replies.append((slot, _serve(sessions[slot], body)))
        if not remaining:
            if replies:
                raise ProtocolError("requests after every episode of the batch had answered")
            return answers
        if not replies:
            raise ProtocolError("a frame without requests while episodes are still running")
        chan.send(encode_mux(replies))


def _answer(body: bytes) -> str | None:
    if body[1:2] == b"\x00":
        return None
    text = body[2:].decode("utf-8", "replace")
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


def _serve(session: ReplaySession, body: bytes) -> bytes:
    """Apply one action request to the judge's session and return the reply."""
    tag = body[:1]
    try:
        if tag == b"a":
            (b,) = _I32.unpack(body[1:])
            r = session.advance(b)
            return encode_reveals(((r.branch, r.answer, r.finished, r.cost),))
        if tag == b"m":
            done: list[tuple[int, str, bool, int]] = []
            illegal = ""
            for b in decode_branches(body[1:]):
                try:
                    r = session.advance(b)
                except IllegalActionError as exc:
                    illegal = str(exc)
                    break
                done.append((r.branch, r.answer, r.finished, r.cost))
            return encode_reveals(done, illegal)
        if tag == b"o" or tag == b"r":
            got = session.open() if tag == b"o" else session.read()
            return b"0" if got is None else encode_reveals(((got.branch, got.answer, got.finished, got.cost),))
        if tag == b"p":
            (b,) = _I32.unpack(body[1:])
            session.prune(b)
            return b"k"
        if tag == b"n":
            if len(session.notes) < _MAX_NOTES:
                session.note(body[1 : 1 + 4 * _MAX_NOTE_CHARS].decode("utf-8", "replace")[:_MAX_NOTE_CHARS])
            return b"k"
    except IllegalActionError as exc:
        return b"x" + str(exc).encode("utf-8")
    except (struct.error, ValueError) as exc:
        raise ProtocolError(f"malformed request {tag!r}: {exc}") from None
    raise ProtocolError(f"unknown request {tag!r}")


def _trace_record(
    session: ReplaySession, run: int, qi: int, answer: str | None, events_cap: int, *, full: bool
) -> dict[str, Any]:
    events = session.trace
    rec: dict[str, Any] = {
        "run": run,
        "question": qi,
        "answer": answer,
        "sig": action_signature([(e.action, e.branch) for e in events]),
        "n_events": len(events),
        "n_total": session.n_total,
        "branches": [[b.depth, b.finished, b.pruned] for b in session.branches],
    }
    if full:
        rec["events"] = [[e.action, e.branch, e.depth, e.answer, e.cost, e.total] for e in events[:events_cap]]
        rec["notes"] = [[k, t] for k, t in session.notes]
    return rec
