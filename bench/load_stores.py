"""Time and peak memory to load all shared replay stores, AutoTTS JSON vs native Parquet.

Usage: .venv/bin/python bench/load_stores.py [--data DIR] [--repeats N]

The Parquet copies are written to a temporary directory first. Every measurement runs
in a fresh process so that its peak RSS (VmHWM) belongs to that load alone. "base" is
the RSS right after importing autotts.store, numpy and pyarrow; "held" is how much the
RSS grew while the loaded stores are alive; "peak" is the process high-water mark
(it includes transient parse buffers). "load" is ``load_stores``; "+views" adds
building the interned replay views every evaluation needs (the JSON path computes
them, the Parquet reader hands over the ones stored in the file). Linux only.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "autotts-replay"


def _status_mb(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(f"{key} not in /proc/self/status")


def child(directory: str) -> None:
    import pyarrow.parquet  # noqa: F401  (import cost is not load cost)

    from autotts.store import load_stores

    baseline = _status_mb("VmRSS")
    t0 = time.perf_counter()
    stores = load_stores([directory])
    t1 = time.perf_counter()
    for store in stores:
        _ = store.replay
    t2 = time.perf_counter()
    print(
        json.dumps(
            {
                "stores": len(stores),
                "load_s": t1 - t0,
                "views_s": t2 - t0,
                "baseline_mb": baseline,
                "held_mb": _status_mb("VmRSS") - baseline,
                "peak_mb": _status_mb("VmHWM"),
            }
        )
    )


def measure(directory: Path, repeats: int) -> dict[str, float]:
    runs = []
    for _ in range(repeats):
        done = subprocess.run(
            [sys.executable, __file__, "--child", str(directory)], check=True, capture_output=True, text=True
        )
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return {
        "stores": runs[0]["stores"],
        "load_s": statistics.median(r["load_s"] for r in runs),
        "views_s": statistics.median(r["views_s"] for r in runs),
        "load_best_s": min(r["load_s"] for r in runs),
        "views_best_s": min(r["views_s"] for r in runs),
        "baseline_mb": statistics.median(r["baseline_mb"] for r in runs),
        "held_mb": statistics.median(r["held_mb"] for r in runs),
        "peak_mb": statistics.median(r["peak_mb"] for r in runs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return

    from autotts.store import find_stores, load_store, write_parquet

    sources = find_stores(args.data)
    with tempfile.TemporaryDirectory() as tmp:
        native = Path(tmp)
        for src in sources:
            store = load_store(src)
            write_parquet(store, native / store.meta.model / f"{store.meta.benchmark}.parquet")
        json_bytes = sum(p.stat().st_size for p in sources)
        native_bytes = sum(p.stat().st_size for p in native.rglob("*.parquet"))
        results = {"AutoTTS JSON": measure(args.data, args.repeats), "Parquet": measure(native, args.repeats)}
    sizes = {"AutoTTS JSON": json_bytes, "Parquet": native_bytes}
    print(f"{len(sources)} stores, {args.repeats} fresh processes each; times as best / median seconds")
    print(f"{'format':<14}{'files MB':>9}{'load s':>15}{'+views s':>15}{'base MB':>9}{'held MB':>9}{'peak MB':>9}")
    for name, r in results.items():
        load = f"{r['load_best_s']:.3f} / {r['load_s']:.3f}"
        views = f"{r['views_best_s']:.3f} / {r['views_s']:.3f}"
        print(
            f"{name:<14}{sizes[name] / 1e6:>9.1f}{load:>15}{views:>15}"
            f"{r['baseline_mb']:>9.0f}{r['held_mb']:>9.0f}{r['peak_mb']:>9.0f}"
        )


if __name__ == "__main__":
    main()
