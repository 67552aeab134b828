"""What the discovery judge costs: per-action round trips and a judged β sweep vs in-process replay.

The judge keeps a window of episodes running side by side (128 by default, one greenlet
each in the candidate process), so in a sweep one round trip carries one action of every
running episode of a group; the per-request table below is the unbatched worst case (a
single episode, one action per round trip).

Prints three tables:

1. per-action latency of a judged session (candidate process -> pipe -> judge -> pipe), median
   and p99, for ``advance``, ``open``/``read`` and one ``advance_many`` of 16 branches, next
   to the same calls on an in-process :class:`~autotts.env.session.ReplaySession`;
2. the wall time of a β sweep (11 β x 10 runs on one store) for a Python CMC and a Python
   Parallel-Probe written against the session API (the built-in modules' source, given a
   ``schedule(beta)`` where needed), judged (``run_sandbox``: process start, module load,
   seccomp, every action over the pipe) and replayed in-process with the same classes;
3. the ratio of the two, in wall and CPU seconds, and the CPU per session action (the
   judged CPU counts the judge and the candidate process, including its start).

Usage (from the repository root)::

    .venv/bin/python bench/judge.py [--store PATH] [--runs 10] [--repeats 3]

The store defaults to ``../shared/data/autotts-replay/Qwen3-4B/aime24.json``; without it a
synthetic store of the same shape is used. Per-action figures come from the judge's side:
the time between two consecutive requests of a candidate that does nothing but act.
"""

from __future__ import annotations

import argparse
import inspect
import itertools
import os
import resource
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

from autotts.controllers import cmc as cmc_mod
from autotts.controllers import parallel_probe as pp_mod
from autotts.discovery import sandbox as sb
from autotts.discovery.sandbox import SandboxJob, SandboxLimits, StorePayload, orders_for, run_sandbox
from autotts.env import speedups
from autotts.env.judged import Channel
from autotts.env.session import ReplaySession
from autotts.env.wire import decode_requests
from autotts.evaluation.protocols import Protocol
from autotts.store import load_stores
from autotts.store.schema import ReplayStore

BETAS = [round(i / 10, 1) for i in range(11)]
LIMITS = SandboxLimits(cpu_seconds=600, wall_seconds=900, memory_mb=2048)

PP_BETA = '''

class ParallelProbeBeta(ParallelProbe):
    """Parallel-Probe with one knob: more β, more chains and more patience."""

    def __init__(self, beta=1.0):
        s = self.schedule(beta)
        super().__init__(chains=s["chains"], T=s["T"])

    @staticmethod
    def schedule(beta):
        return {"chains": 4 + round(60 * beta), "T": 10 + round(30 * beta)}
'''

LOOP = """
class Spin:
    def solve(self, session):
        n = session.n_total
        for _ in range(n):
            r = session.open()
            if r is None:
                break
        for _ in range(60):
            for b in session.alive():
                session.advance(b)
        while session.read() is not None:
            pass
        return None
"""

MANY = """
class Batch:
    def solve(self, session):
        for _ in range(16):
            session.open()
        for _ in range(60):
            alive = session.alive()
            if not alive:
                break
            session.advance_many(alive[:16])
        return None
"""


class TimingChannel(Channel):
    """The judge's channel, noting when each request arrives and what it was."""

    log: ClassVar[list[tuple[int, bytes]]] = []

    def recv(self) -> bytes:
        body = super().recv()
        t = time.perf_counter_ns()
        tag = bytes(decode_requests(body)[1][:1]) if body[:1] == b"M" else body[:1]
        TimingChannel.log.append((t, tag))
        return body


def load_store(path: Path) -> ReplayStore:
    if path.exists():
        return load_stores([path])[0]
    from autotts.testing import synthetic_store  # type: ignore[attr-defined]

    return synthetic_store(seed=0)  # type: ignore[no-any-return]


def per_action(store: ReplayStore) -> None:
    """Round trip per request, judge side, for a candidate that only acts."""
    # Batches of one episode, so every frame is one action.
    payload = [StorePayload(store.name, tuple(store.replay[:10]))]
    orders = orders_for(payload, [0], Protocol().order)
    rows = []
    for name, code, cls, kinds in (
        ("advance / open / read", LOOP, "Spin", {b"a": "advance", b"o": "open", b"r": "read"}),
        ("advance_many(16)", MANY, "Batch", {b"m": "advance_many(16)"}),
    ):
        TimingChannel.log = []
        sb.Channel = TimingChannel  # type: ignore[misc]
        try:
            out = run_sandbox(SandboxJob(code, cls, payload, [None], [0], orders, batch=1), LIMITS)
        finally:
            sb.Channel = Channel  # type: ignore[misc]
        assert out.kind == "ok", out.message
        log = TimingChannel.log
        gaps: dict[str, list[float]] = {}
        for (t0, _), (t1, tag) in itertools.pairwise(log):
            if tag in kinds:
                gaps.setdefault(kinds[tag], []).append((t1 - t0) / 1000.0)
        for kind, xs in gaps.items():
            xs.sort()
            rows.append((kind, len(xs), statistics.median(xs), xs[int(0.99 * (len(xs) - 1))]))
        del name
    # The same calls in-process.
    q = store.replay[0]
    order = Protocol().order(q.n_branches, 0)
    inproc: dict[str, list[float]] = {"advance": [], "open": [], "read": [], "advance_many(16)": []}
    for _ in range(200):
        s = ReplaySession(q, order, record=True)
        t = time.perf_counter_ns()
        for _ in range(16):
            s.open()
        inproc["open"].append((time.perf_counter_ns() - t) / 16000.0)
        alive = s.alive()
        t = time.perf_counter_ns()
        s.advance_many(alive[:16])
        inproc["advance_many(16)"].append((time.perf_counter_ns() - t) / 1000.0)
        alive = s.alive()
        if alive:
            t = time.perf_counter_ns()
            for b in alive:
                s.advance(b)
            inproc["advance"].append((time.perf_counter_ns() - t) / 1000.0 / len(alive))
        t = time.perf_counter_ns()
        s.read()
        inproc["read"].append((time.perf_counter_ns() - t) / 1000.0)
    print("\nPer request, judged (candidate process <-> judge over pipes) vs in-process ReplaySession, microseconds")
    print(f"{'request':<18} {'n':>7} {'judged median':>14} {'judged p99':>11} {'in-process median':>18}")
    for kind, n, med, p99 in rows:
        print(f"{kind:<18} {n:>7} {med:>14.1f} {p99:>11.1f} {statistics.median(inproc[kind]):>18.2f}")


def in_process(cls: Any, store: ReplayStore, runs: int) -> tuple[float, float]:
    """(wall, CPU) seconds of the sweep replayed in this process."""
    proto = Protocol()
    t, c = time.perf_counter(), time.process_time()
    for beta in BETAS:
        for run in range(runs):
            for q in store.replay:
                cls(beta=beta).solve(ReplaySession(q, proto.order(q.n_branches, run), record=False))
    return time.perf_counter() - t, time.process_time() - c


class _Counting(ReplaySession):
    """A replay session that counts the controller's actions (for the per-action figures)."""

    actions = 0

    def open(self) -> Any:
        _Counting.actions += 1
        return super().open()

    def read(self) -> Any:
        _Counting.actions += 1
        return super().read()

    def advance(self, branch: int) -> Any:
        _Counting.actions += 1
        return super().advance(branch)

    def advance_many(self, branches: Any) -> Any:
        ids = list(branches)
        _Counting.actions += len(ids) - 1  # one request: count it as its branches, minus the call below
        return super().advance_many(ids)

    def prune(self, branch: int) -> None:
        _Counting.actions += 1
        super().prune(branch)


def count_actions(cls: Any, store: ReplayStore, runs: int) -> int:
    """Session actions the sweep takes (advance_many counted per branch)."""
    proto = Protocol()
    _Counting.actions = 0
    for beta in BETAS:
        for run in range(runs):
            for q in store.replay:
                cls(beta=beta).solve(_Counting(q, proto.order(q.n_branches, run), record=False))
    return _Counting.actions


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def judged(code: str, cls_name: str, store: ReplayStore, runs: int, processes: int = 1) -> tuple[float, float, float]:
    """(wall, judge CPU, candidate-process CPU) seconds of the judged sweep."""
    payload = [StorePayload(store.name, tuple(store.replay))]
    orders = orders_for(payload, range(runs), Protocol().order)
    t, c, k = time.perf_counter(), time.process_time(), _children_cpu()
    out = run_sandbox(
        SandboxJob(
            code, cls_name, payload, BETAS, list(range(runs)), orders, secret=os.urandom(32), processes=processes
        ),
        LIMITS,
    )
    took = time.perf_counter() - t, time.process_time() - c, _children_cpu() - k
    if out.kind != "ok":
        raise SystemExit(f"{cls_name}: {out.kind}: {out.message}")
    if out.cpu_seconds is not None:  # forked by the fork server: not a child of this process
        took = (took[0], took[1], out.cpu_seconds)
    return took


def start_fork_servers(code: str) -> float:
    """Start the fork server ``code`` is forked from (once per discovering process); its wall seconds."""
    t = time.perf_counter()
    payload = [StorePayload("none", ())]
    out = run_sandbox(SandboxJob(code, "Absent", payload, [None], [0], {}), LIMITS)
    if out.kind != "error" or "Absent is not defined" not in out.message:
        raise SystemExit(f"fork server warm-up: {out.kind}: {out.message}")
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", type=Path, default=Path("../shared/data/autotts-replay/Qwen3-4B/aime24.json"))
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-actions", action="store_true", help="only the β sweeps")
    ap.add_argument("--only", choices=("cmc", "pp"), help="one controller only")
    ap.add_argument(
        "--processes",
        type=int,
        nargs="+",
        default=[1, 2],
        help="candidate processes per judged sweep (SandboxJob.processes); one row each",
    )
    ap.add_argument(
        "--start", choices=sb.START_MODES, default="fork-server", help="how candidate processes start (sandbox.start)"
    )
    args = ap.parse_args()
    store = load_store(args.store)
    global LIMITS
    LIMITS = replace(LIMITS, start=args.start)
    load = os.getloadavg()[0]
    print(f"store {store.name}: {len(store)} questions; load average {load:.1f}; python {sys.version.split()[0]}")
    print(f"candidate-side session path: {speedups.describe()}")
    if not args.skip_actions:
        per_action(store)

    cmc_code = inspect.getsource(cmc_mod)
    pp_code = inspect.getsource(pp_mod) + PP_BETA
    ns: dict[str, Any] = {}
    exec(compile(pp_code, "pp_beta", "exec"), ns)
    print(f"\nβ sweep: {len(BETAS)} β x {args.runs} runs x {len(store)} questions, best of {args.repeats}, seconds")
    print(
        f"{'controller, candidate processes':<32} {'in-process wall':>15} {'judged wall':>11} {'ratio':>6} "
        f"{'in-process CPU':>14} {'judged CPU (judge + candidate)':>30} {'ratio':>6} "
        f"{'actions':>9} {'CPU us/action in-process / judged':>34}"
    )
    for label, code, cls_name, cls in (
        ("CMC (Python)", cmc_code, "ConfidenceMomentum", cmc_mod.ConfidenceMomentum),
        ("Parallel-Probe (Python)", pp_code, "ParallelProbeBeta", ns["ParallelProbeBeta"]),
    ):
        if args.only and not label.lower().startswith({"cmc": "cmc", "pp": "parallel"}[args.only]):
            continue
        n_actions = count_actions(cls, store, args.runs)
        if args.start == "fork-server":
            print(
                f"{'':<24} (fork server started first, once per discovering process: {start_fork_servers(code):.2f} s)"
            )
        a = min(in_process(cls, store, args.runs) for _ in range(args.repeats))
        for procs in args.processes:
            b = min(judged(code, cls_name, store, args.runs, procs) for _ in range(args.repeats))
            cpu = b[1] + b[2]
            name = f"{label}, {procs} proc{'s' if procs > 1 else ''}"
            print(
                f"{name:<32} {a[0]:>15.2f} {b[0]:>11.2f} {b[0] / a[0]:>5.1f}x {a[1]:>14.2f} "
                f"{cpu:>18.2f} ({b[1]:.2f} + {b[2]:.2f}) {cpu / a[1]:>5.1f}x "
                f"{n_actions:>9,} {1e6 * a[1] / n_actions:>17.2f} / {1e6 * cpu / n_actions:.2f}"
            )
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
