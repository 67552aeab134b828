"""The judged session and the judge: same behaviour as the in-process session, books kept by the judge."""

from __future__ import annotations

import dataclasses
import os
import random
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autotts.discovery.judge import _play_batch
from autotts.env.judged import Channel, ChannelClosed, JudgedSession
from autotts.env.session import ReplaySession
from autotts.env.wire import (
    OP_ANSWER,
    Reply,
    Request,
    decode_batch,
    decode_replies,
    encode_requests,
    request_columns,
)
from autotts.errors import ConfigError, IllegalActionError, StoreExhaustedError
from autotts.evaluation.protocols import Protocol
from tests.discovery_support import make_store

STORE = make_store(n_questions=3, n_branches=12)


class OneSlot:
    """The candidate's side for a batch of one episode: each request travels in a one-item step frame."""

    def __init__(self, chan: Channel) -> None:
        self.chan = chan
        self.sent: list[bytes] = []

    def __call__(self, request: Request) -> Reply:
        ops, args, payload = request_columns([request])
        self.sent.append(bytes(ops))
        reply = self.chan.request(encode_requests([0], ops, args, payload))
        (got,), starts = decode_replies(reply)
        assert not starts
        return got

    def send(self, request: tuple[int, int, bytes]) -> None:
        ops, args, payload = request_columns([request])
        self.sent.append(bytes(ops))
        self.chan.send(encode_requests([0], ops, args, payload))


class Pair:
    """A judge thread serving one episode on pipes, and the candidate-side session talking to it."""

    def __init__(self, qi: int, run: int) -> None:
        q = STORE.replay[qi]
        order = Protocol().order(q.n_branches, run)
        self.judge_session = ReplaySession(q, order, record=True)
        a_r, a_w = os.pipe()
        b_r, b_w = os.pipe()
        self.fds = (a_r, a_w, b_r, b_w)
        judge_chan = Channel(a_r, b_w)
        self.raw = Channel(b_r, a_w)
        self.cand_chan = OneSlot(self.raw)
        self.answer: list[Any] = []
        key = (0, 0, run, qi)
        self.thread = threading.Thread(
            target=lambda: self.answer.extend(_play_batch(judge_chan, [key], [self.judge_session], [0.5], None)),
            daemon=True,
        )
        self.thread.start()
        ((beta, n_total, delta),) = decode_batch(self.raw.recv()[1:])
        assert beta == 0.5 and n_total == q.n_branches and delta == q.delta
        self.session = JudgedSession(self.cand_chan, n_total, delta)
        self.reference = ReplaySession(q, order, record=True)

    def finish(self, answer: str | None) -> None:
        raw = b"" if answer is None else answer.encode()
        self.cand_chan.send((OP_ANSWER, -1 if answer is None else len(raw), raw))
        self.thread.join(timeout=10)
        for fd in self.fds:
            os.close(fd)


def _do(session: Any, action: str, arg: Any) -> Any:
    try:
        if action == "open":
            return ("ok", session.open())
        if action == "read":
            return ("ok", session.read())
        if action == "advance":
            return ("ok", session.advance(arg))
        if action == "many":
            return ("ok", session.advance_many(arg))
        if action == "prune":
            return ("ok", session.prune(arg))
        if action == "probe_new":
            return ("ok", session.probe_new())
        if action == "note":
            return ("ok", session.note(arg))
        raise AssertionError(action)
    except IllegalActionError as exc:
        return ("illegal", str(exc))
    except StoreExhaustedError as exc:
        return ("exhausted", str(exc))


def _state(s: Any) -> tuple[Any, ...]:
    depth = [s.depth(i) for i in range(s.n_opened)]
    return (
        s.cost,
        s.sequential_tokens,
        s.n_opened,
        s.n_available,
        s.alive(),
        depth,
        s.branches,
        [(e.action, e.branch, e.depth, e.answer, e.cost, e.total) for e in s.trace],
        s.notes,
        s.get_seq_and_total_tokens(),
        s.describe(),
    )


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), steps=st.integers(1, 60))
def test_judged_session_behaves_like_the_replay_session(seed: int, steps: int) -> None:
    """Random action sequences (illegal ones included): same reveals, errors, state and trace on both sides."""
    rng = random.Random(seed)
    pair = Pair(seed % len(STORE), seed % 4)
    try:
        for _ in range(steps):
            n = pair.reference.n_opened
            pick = rng.random()
            if pick < 0.2:
                action, arg = "open", None
            elif pick < 0.3:
                action, arg = "read", None
            elif pick < 0.6:
                action, arg = "advance", rng.randrange(-1, n + 2)
            elif pick < 0.75:
                action, arg = "many", [rng.randrange(-1, n + 1) for _ in range(rng.randrange(0, 5))]
            elif pick < 0.85:
                action, arg = "prune", rng.randrange(-1, n + 1)
            elif pick < 0.95:
                action, arg = "probe_new", None
            else:
                action, arg = "note", f"remark {rng.random()}"
            got = _do(pair.session, action, arg)
            want = _do(pair.reference, action, arg)
            assert got == want, (action, arg)
            assert _state(pair.session) == _state(pair.reference)
        # The judge's books are the reference's.
        assert pair.judge_session.cost == pair.reference.cost
        assert pair.judge_session.trace == pair.reference.trace
        assert pair.judge_session.notes == pair.reference.notes
    finally:
        pair.finish("x")
    assert pair.answer == ["x"]


def test_advance_many_is_one_request() -> None:
    pair = Pair(0, 0)
    try:
        for _ in range(5):
            pair.session.open()
        alive = pair.session.alive()
        pair.session.advance_many(alive)
    finally:
        pair.finish(None)
    assert pair.cand_chan.sent == [b"o"] * 5 + [b"m", b"A"]
    assert pair.answer == [None]


def test_local_state_cannot_lower_the_judges_cost() -> None:
    """Whatever the candidate does to its copy, the judge's session keeps the books."""
    pair = Pair(1, 0)
    try:
        pair.session.read()
        pair.session._cost = 0  # what a patched candidate could do to its own copy
        type(pair.session)  # the class is the candidate's too, but not the judge's
    finally:
        pair.finish("a")
    assert pair.judge_session.cost > 0 and pair.judge_session.cost == pair.reference.read().cost  # type: ignore[union-attr]


def _judge_one(body: bytes) -> BaseException | None:
    """Serve one episode with a judge thread, send ``body`` as the candidate, return what the judge raised."""
    a_r, a_w = os.pipe()
    b_r, b_w = os.pipe()
    q = STORE.replay[0]
    session = ReplaySession(q, Protocol().order(q.n_branches, 0))
    judge_chan = Channel(a_r, b_w)
    out: list[BaseException] = []

    def serve() -> None:
        try:
            _play_batch(judge_chan, [(0, 0, 0, 0)], [session], [None], None)
        except BaseException as exc:
            out.append(exc)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    cand = Channel(b_r, a_w)
    cand.recv()
    cand.send(body)
    t.join(timeout=10)
    for fd in (a_r, a_w, b_r, b_w):
        os.close(fd)
    return out[0] if out else None


@pytest.mark.parametrize(
    "body",
    [
        encode_requests([0], b"?", [0], b""),  # unknown request
        encode_requests([0], b"a", [1], b"")[:-1],  # truncated
        encode_requests([0], b"m", [5], b"\x01\x00\x00\x00"),  # advance_many of 5 ids with 1 id
        encode_requests([0], b"n", [-3], b""),  # negative payload size
        encode_requests([0], b"o", [0], b"xx"),  # trailing payload
        encode_requests([3], b"o", [0], b""),  # a slot that is not running
        encode_requests([0, 0], b"AA", [-1, -1], b""),  # answered twice
        b"M\x01\x00\x00\x00\x00\x00",  # truncated columns
        encode_requests([], b"", [], b""),  # an empty step
        b"o",  # not a step frame
    ],
)
def test_malformed_requests_are_protocol_errors(body: bytes) -> None:
    from autotts.discovery.judge import ProtocolError

    assert isinstance(_judge_one(body), ProtocolError)


def test_process_only_isolation_is_accepted_and_warned_about(tmp_path: Path) -> None:
    """``sandbox.isolation = "process-only"`` runs, and the summary says so; other values are config errors."""
    from autotts.discovery.config import load_config
    from autotts.discovery.loop import DiscoveryLoop
    from tests.discovery_support import fast_tables, tiny_setup, write_config

    search, _heldout = tiny_setup(tmp_path)
    bad = write_config(tmp_path / "bad.toml", {"name": "x"}, fast_tables(search, None, sandbox={"isolation": "none"}))
    with pytest.raises(ConfigError, match="isolation must be one of seccomp, process-only"):
        load_config(bad)
    cfg_path = write_config(
        tmp_path / "po.toml",
        {"name": "po", "rounds": 1},
        fast_tables(search, None, sandbox={"isolation": "process-only"}, evaluation={"final_runs": 2, "seeds": ["sc"]}),
    )
    outcome = DiscoveryLoop.start(load_config(cfg_path), run_dir=tmp_path / "run").run()
    assert outcome.summary["isolation"] == "process-only"
    assert "process-only" in (tmp_path / "run" / "summary.md").read_text()
    records = DiscoveryLoop.resume(tmp_path / "run").run_dir.candidates()
    assert [r.status.value for r in records] == ["ok"]
    assert (tmp_path / "run" / "rounds" / "r01" / "c01" / "judge.json").is_file()


def test_ray_backend_gives_the_local_results() -> None:
    """Judge/candidate pairs as Ray tasks: the same statuses, curves and traces as local, for a fixed secret."""
    ray = pytest.importorskip("ray", reason="the ray extra is not installed")
    from autotts.discovery import remote
    from autotts.discovery.evaluate import EvalContext, evaluate_candidate
    from autotts.discovery.records import Status
    from autotts.discovery.sandbox import SandboxLimits
    from tests.discovery_support import GOOD, PEEKER

    base = EvalContext(
        stores=[STORE],
        betas=[0.0, 1.0],
        runs=2,
        protocol=Protocol(),
        limits=SandboxLimits(cpu_seconds=5, wall_seconds=60, memory_mb=600),
        secret=b"s" * 32,
    )
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        local = evaluate_candidate(GOOD, base)
        on_ray = evaluate_candidate(GOOD, dataclasses.replace(base, backend="ray"))
        assert local.status is on_ray.status is Status.OK, (local.message, on_ray.message)
        assert (local.curves, local.episodes, local.settings) == (on_ray.curves, on_ray.episodes, on_ray.settings)
        # The peeker's reads depend on object addresses in its own process: leaked on both.
        assert evaluate_candidate(PEEKER, dataclasses.replace(base, backend="ray")).status is Status.LEAKED
    finally:
        remote.shutdown()
        ray.shutdown()


def test_a_long_advance_many_is_chunked_and_still_exact() -> None:
    """3,000 ids (one branch, repeated past its end): same reveals and same error as the in-process session."""
    pair = Pair(2, 1)
    try:
        for s in (pair.session, pair.reference):
            s.open()
        got = _do(pair.session, "many", [0] * 3000)
        want = _do(pair.reference, "many", [0] * 3000)
        assert got == want and got[0] == "illegal"
        assert _state(pair.session) == _state(pair.reference)
    finally:
        pair.finish(None)


def test_the_judge_channel_drains_while_its_pipe_is_full() -> None:
    """Both sides write more than a pipe holds before reading: no deadlock (the candidate keeps frames in flight)."""
    a_r, a_w = os.pipe()
    b_r, b_w = os.pipe()
    judge_chan = Channel(a_r, b_w)
    judge_chan.drain_while_sending()
    peer = Channel(b_r, a_w)
    big = b"x" * (1 << 20)
    got: list[bytes] = []

    def candidate() -> None:
        peer.send(b"1" + big)
        peer.send(b"2" + big)
        got.append(peer.recv())

    seen: list[bytes] = []

    def judge_side() -> None:
        judge_chan.send(b"r" + big)  # the candidate is not reading yet: the judge must read meanwhile
        seen.extend(judge_chan.recv()[:1] for _ in range(2))

    threads = [threading.Thread(target=f, daemon=True) for f in (candidate, judge_side)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    deadlocked = any(t.is_alive() for t in threads)
    for fd in (a_r, a_w, b_r, b_w):
        os.close(fd)
    assert not deadlocked
    assert seen == [b"1", b"2"] and got == [b"r" + big]


def test_a_peer_that_only_writes_is_cut_off() -> None:
    a_r, a_w = os.pipe()
    b_r, b_w = os.pipe()

    class SmallBuffer(Channel):
        max_buffered = 1 << 20

    judge_chan = SmallBuffer(a_r, b_w)
    judge_chan.drain_while_sending()
    peer = Channel(b_r, a_w)
    stop = threading.Event()

    def flood() -> None:
        try:
            while not stop.is_set():
                peer.send(b"z" * (1 << 16))
        except OSError:
            pass

    t = threading.Thread(target=flood, daemon=True)
    t.start()
    with pytest.raises(ChannelClosed, match="without reading"):
        judge_chan.send(b"r" * (4 << 20))
    stop.set()
    os.close(a_r)  # the flooder's next write fails
    t.join(timeout=20)
    for fd in (a_w, b_r, b_w):
        os.close(fd)
