"""The full paper grid on the 12 shared stores: wall time, episodes per second, peak memory.

Usage::

    .venv/bin/python bench/grid.py [--runs 100] [--backend processes] [--workers N]
        [--data DIR] [--verify] [--json OUT]

Grid (issue 5): 12 stores x (SC, ASC, Parallel-Probe at budgets 1, 4, 8, 16, 32, 64;
ESC at 16, 32, 64; CMC at beta 0.0 .. 1.0) x ``--runs`` runs = 384 cells, evaluated with
``autotts.evaluation.evaluate(..., backend=...)`` exactly as a user would.

Printed: store loading time and resident memory with all 12 stores (and their kernel
layouts) in memory; the time ``engine.prepare`` takes (kernel compilation, or loading
from numba's cache: run once with ``NUMBA_CACHE_DIR=$(mktemp -d)`` to see a cold
compile); the grid's wall time, cells, episodes and episodes per second; peak RSS of
the parent and of the largest worker. ``--verify`` also runs every cell with the
Python reference controllers (``run_cell(..., fast=False)``, in a fork pool on all
cores) and checks that answers, costs, sequential tokens and correctness are identical
cell by cell, then prints the reference's wall time.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "autotts-replay"
MODELS = ("Qwen3-0.6B", "Qwen3-1.7B", "Qwen3-4B", "Qwen3-8B")
BENCHMARKS = ("aime24", "aime25", "hmmt25")
BUDGETS = (1, 4, 8, 16, 32, 64)
PP = {"T": 40, "warm_up": 15, "prune_patience": 7, "burst": 1, "max_steps": 100}


def grid_specs() -> list[Any]:
    from autotts.controllers.spec import ControllerSpec

    specs = [ControllerSpec("sc", {"n": b}) for b in BUDGETS]
    specs += [ControllerSpec("asc", {"max_samples": b, "threshold": 0.95}) for b in BUDGETS]
    specs += [ControllerSpec("parallel-probe", {"chains": b, **PP}) for b in BUDGETS]
    specs += [ControllerSpec("esc", {"max_samples": b, "window": 8}) for b in (16, 32, 64)]
    specs += [ControllerSpec("cmc", {"beta": i / 10}) for i in range(11)]
    return specs


def rss_mb() -> tuple[float, float]:
    """(current RSS, peak RSS) of this process in MB, from /proc (Linux)."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields.get("VmRSS", float("nan")), fields.get("VmHWM", float("nan"))


_REF_STORES: list[Any] = []


def _reference(task: tuple[int, Any, int]) -> tuple[Any, ...]:
    from autotts.evaluation import run_cell

    si, spec, runs = task
    r = run_cell(_REF_STORES[si], spec, runs=runs, fast=False)
    return r.answers, r.cost, r.sequential, r.correct


def verify(stores: list[Any], specs: list[Any], results: list[Any], runs: int, workers: int | None) -> None:
    """Re-run every cell with the Python controllers and compare arrays cell by cell."""
    global _REF_STORES
    _REF_STORES = stores
    tasks = [(si, spec, runs) for si in range(len(stores)) for spec in specs]
    t0 = time.perf_counter()
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(workers or os.cpu_count() or 1) as pool:
        refs = pool.map(_reference, tasks, chunksize=1)
    wall = time.perf_counter() - t0
    same = 0
    for fast, (answers, cost, seq, correct) in zip(results, refs, strict=True):
        ok = (
            fast.answers == answers
            and np.array_equal(fast.cost, cost)
            and np.array_equal(fast.sequential, seq)
            and np.array_equal(fast.correct, correct)
        )
        same += ok
        if not ok:
            print(f"  MISMATCH: {fast.store} {fast.label}")
    print(
        f"verify      : {same}/{len(results)} cells identical to the Python reference "
        f"(reference wall {wall:.1f} s on {workers or os.cpu_count()} processes)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--backend", default="processes", choices=["serial", "processes", "ray"])
    parser.add_argument("--workers", type=int, default=None, help="default: all cores")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--verify", action="store_true", help="compare every cell with the Python reference")
    parser.add_argument("--json", type=Path, default=None, help="write the cell records here")
    args = parser.parse_args(argv)

    paths = [args.data / m / f"{b}.json" for m in MODELS for b in BENCHMARKS]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        print(f"shared data missing: {', '.join(missing)}", file=sys.stderr)
        return 1
    load = os.getloadavg()
    print(f"machine     : {os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")

    t0 = time.perf_counter()
    import autotts  # noqa: F401
    from autotts import engine
    from autotts.evaluation import evaluate, records
    from autotts.evaluation.protocols import Protocol
    from autotts.store import load_store

    base_rss, _ = rss_mb()
    stores = [load_store(p) for p in paths]
    for s in stores:
        s.replay  # noqa: B018
    t_load = time.perf_counter() - t0
    rss_stores, _ = rss_mb()
    specs = grid_specs()

    t0 = time.perf_counter()
    engine.prepare(stores, [s.build() for s in specs], runs=args.runs, protocol=Protocol())
    t_prepare = time.perf_counter() - t0
    rss_ready, _ = rss_mb()
    print(
        f"stores      : {len(stores)} loaded in {t_load:.2f} s; RSS {base_rss:.0f} MB after imports, "
        f"{rss_stores:.0f} MB with the stores, {rss_ready:.0f} MB with kernel layouts"
    )
    print(
        f"kernels     : prepare (compile or load cached, lay out, orders) {t_prepare:.2f} s; "
        f"numba available: {engine.available()}"
    )

    cells = len(stores) * len(specs)
    t0 = time.perf_counter()
    results = evaluate(stores, specs, runs=args.runs, backend=args.backend, workers=args.workers)
    wall = time.perf_counter() - t0
    episodes = sum(r.runs * r.questions for r in results)
    cpu_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    _, peak_parent = rss_mb()
    peak_child = cpu_children.ru_maxrss / 1024
    print(
        f"grid        : {cells} cells x {args.runs} runs = {episodes:,} episodes in {wall:.2f} s wall "
        f"({args.backend}, workers={args.workers or os.cpu_count()}) -> {episodes / wall:,.0f} episodes/s"
    )
    print(f"cpu         : workers {cpu_children.ru_utime + cpu_children.ru_stime:.2f} s")
    print(f"peak RSS    : parent {peak_parent:.0f} MB, largest worker {peak_child:.0f} MB")
    per_family: dict[str, float] = {}
    for r in results:
        per_family[r.controller] = per_family.get(r.controller, 0.0) + r.seconds
    print(
        "cell time   : "
        + ", ".join(f"{name} {sec:.2f} s" for name, sec in per_family.items())
        + " (summed over cells, inside run_cell)"
    )
    slowest = max(results, key=lambda r: r.seconds)
    print(f"slowest cell: {slowest.store} {slowest.label} {slowest.seconds * 1000:.0f} ms")
    if args.json is not None:
        args.json.write_text(json.dumps(records(results), indent=1) + "\n")
        print(f"wrote {len(results)} records to {args.json}")
    if args.verify:
        verify(stores, specs, results, args.runs, args.workers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
