"""Per-controller, per-store timings (trace recording off and on) and the session's per-call overhead.

Usage::

    .venv/bin/python bench/controllers.py [--stores all|Qwen3-4B/aime24,...] [--runs 100]
        [--repeats 3] [--reference] [--data DIR]

For each built-in controller at the settings the issue's naive figures were measured
with (SC@64, ASC@64, ESC@64, Parallel-Probe@64, CMC at every beta of the curve), the
time of one cell (30 questions x ``--runs`` runs) through ``run_cell`` on its compiled
kernel, best of ``--repeats``, with ``record=False`` and ``record=True`` (traces stay
compact until read; the "read" column also materializes every ``TraceEvent`` of the
cell, which only a consumer of every trace pays). Min and max over the stores are
printed with the speedup against the naive figure (its lower bound, so the speedup is
conservative; the target is 20x). ``--reference`` also times the Python reference
controllers (``fast=False``) once per cell.

Then the session a user-written controller talks to: nanoseconds per call of open /
advance / read / prune / alive, with recording off and on, and the cost of building a
session, on a 128-branch question with 40 probes per branch (no data needed).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "autotts-replay"
MODELS = ("Qwen3-0.6B", "Qwen3-1.7B", "Qwen3-4B", "Qwen3-8B")
BENCHMARKS = ("aime24", "aime25", "hmmt25")

#: (label, specs, naive seconds per store (lower bound of the issue's range)).
CONTROLLERS: list[tuple[str, list[str], float]] = [
    ("SC@64", ["sc:n=64"], 0.3),
    ("ASC@64", ["asc:max_samples=64,threshold=0.95"], 2.0),
    ("ESC@64", ["esc:max_samples=64,window=8"], 2.0),
    ("Parallel-Probe@64", ["parallel-probe:chains=64,T=40,warm_up=15,prune_patience=7,burst=1"], 20.0),
    ("CMC (per beta)", [f"cmc:beta={i / 10}" for i in range(11)], 9.0),
]


def best_of(fn: Callable[[], Any], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def controller_timings(stores: list[Any], runs: int, repeats: int, reference: bool) -> None:
    from autotts.controllers.spec import ControllerSpec
    from autotts.engine.dispatch import warm
    from autotts.evaluation import run_cell

    warm()
    for s in stores:  # lay out stores and build branch orders outside the timings
        run_cell(s, ControllerSpec.parse("sc:n=1"), runs=runs)
    header = (
        f"{'controller':<20} {'naive s':>8} {'off ms (min-max)':>18} {'on ms':>16} {'on/off':>7} "
        f"{'read all ms':>12} {'speedup':>8}"
    )
    if reference:
        header += f" {'python s':>14}"
    print(header)
    for label, specs, naive in CONTROLLERS:
        off: list[float] = []
        on: list[float] = []
        ratio: list[float] = []
        read_all: list[float] = []
        python: list[float] = []
        for spec_text in specs:
            spec = ControllerSpec.parse(spec_text)
            for store in stores:
                t_off = best_of(lambda store=store, spec=spec: run_cell(store, spec, runs=runs), repeats)
                t_on = best_of(lambda store=store, spec=spec: run_cell(store, spec, runs=runs, record=True), repeats)
                off.append(t_off)
                on.append(t_on)
                ratio.append(t_on / t_off)
                if store is stores[0] and spec_text == specs[0]:

                    def materialize(store: Any = store, spec: Any = spec) -> None:
                        for trace in run_cell(store, spec, runs=runs, record=True).traces:
                            tuple(trace.events)

                    read_all.append(best_of(materialize, 1))
                if reference:
                    reference_cell = lambda store=store, spec=spec: run_cell(store, spec, runs=runs, fast=False)  # noqa: E731
                    python.append(best_of(reference_cell, 1))
        line = (
            f"{label:<20} {naive:>8.1f} {min(off) * 1e3:>8.2f}-{max(off) * 1e3:<9.2f} "
            f"{min(on) * 1e3:>7.2f}-{max(on) * 1e3:<8.2f} {max(ratio):>7.2f} "
            f"{read_all[0] * 1e3:>12.0f} {naive / max(off):>7.0f}x"
        )
        if reference:
            line += f" {min(python):>6.2f}-{max(python):<7.2f}"
        print(line)
    print(
        "(off/on: one cell = 30 questions x runs, best of repeats, min-max over stores and betas; on/off: worst "
        "ratio; read all: record on + every TraceEvent built, first store; speedup: naive / slowest store)"
    )


def session_overhead(repeats: int) -> None:
    from autotts.env import ReplaySession
    from autotts.store.schema import ReplayQuestion

    n, k, reps = 128, 40, 200
    q = ReplayQuestion(
        vocab=tuple(str(i) for i in range(7)),
        probes=tuple(tuple((b + j) % 7 for j in range(k)) for b in range(n)),
        tokens=tuple(20_000 for _ in range(n)),
        finals=tuple(b % 7 for b in range(n)),
        delta=500,
    )
    order = tuple(range(n))

    def per_call(fn: Callable[[], None], calls: int) -> float:
        return best_of(lambda: [fn() for _ in range(reps)], max(repeats, 5)) / (reps * calls) * 1e9

    def empty_session(record: bool) -> None:
        ReplaySession(q, order, record=record)

    base = {rec: per_call(lambda rec=rec: empty_session(rec), 1) for rec in (False, True)}
    print(f"\nsession per-call overhead (ns, {n} branches x {k} probes; session construction subtracted)")
    print(f"{'call':<28} {'record off':>10} {'record on':>10}")
    rows: list[tuple[str, Callable[[bool], None], int]] = []

    def opens(record: bool) -> None:
        s = ReplaySession(q, order, record=record)
        for _ in range(n):
            s.open()

    def advances(record: bool) -> None:
        s = ReplaySession(q, order, record=record)
        s.open()
        for _ in range(k):
            s.advance(0)

    def reads(record: bool) -> None:
        s = ReplaySession(q, order, record=record)
        for _ in range(n):
            s.read()

    def prunes(record: bool) -> None:
        s = ReplaySession(q, order, record=record)
        for _ in range(16):
            s.open()
        for i in range(16):
            s.prune(i)

    def alive(record: bool) -> None:
        s = ReplaySession(q, order, record=record)
        for _ in range(16):
            s.open()
        for _ in range(k):
            s.alive()

    rows = [
        ("open()", opens, n),
        ("advance(i)", advances, k + 1),
        ("read()", reads, n),
        ("prune(i) (+16 opens)", prunes, 32),
        ("alive() with 16 open", alive, k + 16),
    ]
    for label, fn, calls in rows:
        cells = []
        for rec in (False, True):
            t = per_call(lambda fn=fn, rec=rec: fn(rec), 1)
            cells.append((t - base[rec]) / calls)
        print(f"{label:<28} {cells[0]:>10.0f} {cells[1]:>10.0f}")
    print(f"{'ReplaySession(...)':<28} {base[False]:>10.0f} {base[True]:>10.0f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stores", default="all", help="'all' or comma-separated model/benchmark names")
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--reference", action="store_true", help="also time the Python reference controllers")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--session-only", action="store_true", help="only the session overhead (no data needed)")
    args = parser.parse_args(argv)
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    if not args.session_only:
        names = [f"{m}/{b}" for m in MODELS for b in BENCHMARKS] if args.stores == "all" else args.stores.split(",")
        paths = [args.data / f"{name}.json" for name in names]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            print(f"shared data missing: {', '.join(missing)}", file=sys.stderr)
            return 1
        from autotts.store import load_store

        stores = [load_store(p) for p in paths]
        print(f"{len(stores)} stores, {args.runs} runs per cell")
        controller_timings(stores, args.runs, args.repeats, args.reference)
    session_overhead(args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
