"""First-evaluation latency: a one-shot Parallel-Probe@64 cell in a fresh process, against the reference code.

Each measurement runs in a fresh Python process, so nothing is warm except the operating
system's file cache and numba's on-disk kernel cache (run once beforehand to fill it).
Printed per repeat, then min / median:

* ``autotts``: time to import ``autotts.evaluation``, load the store, the first
  ``evaluate(store, "parallel-probe", runs=100, backend="serial")`` call (kernel loading
  included) and a second, warm call in the same process;
* ``reference``: the published AutoTTS evaluation code (``ModelandTask(...).evaluate`` of
  ``Parallel_Probe(num_chains=64, T=40, prune_patience=7, warm_up=15)``, 100 runs), timed
  the same way; give the directory holding its ``data_loader.py`` and ``method.py``
  with ``--reference DIR`` (a checkout of github.com/zhengkid/AutoTTS,
  ``efficient_reasoning_controller/eval``; nothing of it is copied here; its
  ``method.py`` ends in an unfinished template class, so only the code before it runs);
* ``cli``: wall time of ``autotts eval --store S --controller parallel-probe`` as a
  user runs it (default backend, and ``--backend serial``).

Both implementations must agree on accuracy and mean tokens; the script says so.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "autotts-replay"

OURS = r"""
import json, sys, time
t0, c0 = time.perf_counter(), time.process_time()
import autotts.evaluation as ev
from autotts.store import load_store
t1, c1 = time.perf_counter(), time.process_time()
store = load_store(sys.argv[1])
t2, c2 = time.perf_counter(), time.process_time()
r = ev.evaluate(store, "parallel-probe", runs=100, backend="serial")[0]
t3, c3 = time.perf_counter(), time.process_time()
ev.evaluate(store, "parallel-probe", runs=100, backend="serial")
t4, c4 = time.perf_counter(), time.process_time()
print(json.dumps({"import": t1 - t0, "load": t2 - t1, "first": t3 - t2, "warm": t4 - t3,
                  "first_cpu": c3 - c2, "warm_cpu": c4 - c3, "total_cpu": c3 - c0,
                  "accuracy": r.accuracy, "tokens": r.tokens}))
"""

REFERENCE = r"""
import json, os, sys, time
sys.path.insert(0, sys.argv[1])
os.chdir(sys.argv[2])
t0, c0 = time.perf_counter(), time.process_time()
from data_loader import ModelandTask
# The published method.py ends with an unfinished template class (a syntax error); run
# everything before it.
source = open(os.path.join(sys.argv[1], "method.py"), encoding="utf-8").read()
namespace = {"__name__": "method"}
exec(compile(source.split("\nclass OptimalController")[0], "method.py", "exec"), namespace)
Parallel_Probe = namespace["Parallel_Probe"]
t1 = time.perf_counter()
task = ModelandTask(sys.argv[3], sys.argv[4])
t2, c2 = time.perf_counter(), time.process_time()
res = task.evaluate(Parallel_Probe(num_chains=64, T=40, prune_patience=7, warm_up=15))
t3, c3 = time.perf_counter(), time.process_time()
print(json.dumps({"import": t1 - t0, "load": t2 - t1, "first": t3 - t2, "first_cpu": c3 - c2,
                  "total_cpu": c3 - c0, "accuracy": res["accuracy"], "tokens": res["avg_cost"]}))
"""


def run_json(args: list[str], env: dict[str, str] | None = None) -> dict[str, float]:
    out = subprocess.run(args, capture_output=True, text=True, check=True, env=env)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def wall(args: list[str]) -> tuple[float, float]:
    """Wall time and CPU time (user + system) of a child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(args, capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return seconds, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def summary(label: str, values: list[float]) -> str:
    return f"{label}: min {min(values):.3f} s, median {statistics.median(values):.3f} s ({len(values)} runs)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--store", default="Qwen3-4B/aime24")
    parser.add_argument("--reference", type=Path, help="directory with the reference data_loader.py and method.py")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--reference-repeats", type=int, default=1)
    args = parser.parse_args()
    model, bench = args.store.split("/")
    store_file = args.data / model / f"{bench}.json"
    print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; store {args.store}")

    ours = [run_json([sys.executable, "-c", OURS, str(store_file)]) for _ in range(args.repeats)]
    for k in ("import", "load", "first", "warm", "first_cpu", "warm_cpu", "total_cpu"):
        print("autotts " + summary(k, [o[k] for o in ours]))
    first = min(o["first"] for o in ours)
    first_cpu = min(o["first_cpu"] for o in ours)

    autotts_cli = str(Path(sys.executable).with_name("autotts"))
    command = [autotts_cli, "eval", "--store", str(store_file), "--controller", "parallel-probe"]
    for label, extra in (("default backend", []), ("--backend serial", ["--backend", "serial"])):
        runs = [wall(command + extra) for _ in range(args.repeats)]
        print(f"cli autotts eval ({label}) " + summary("wall", [w for w, _ in runs]))
        print(f"cli autotts eval ({label}) " + summary("cpu", [c for _, c in runs]))

    if args.reference is None:
        print("reference: not measured (give --reference DIR)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "test_environment").symlink_to(args.data.resolve())
        ref = [
            run_json([sys.executable, "-c", REFERENCE, str(args.reference.resolve()), tmp, model, bench])
            for _ in range(args.reference_repeats)
        ]
    print("reference " + summary("first", [r["first"] for r in ref]))
    print("reference " + summary("first_cpu", [r["first_cpu"] for r in ref]))
    # The reference reports accuracy rounded to two decimals.
    same = (
        round(ours[0]["accuracy"], 2) == round(ref[0]["accuracy"], 2)
        and abs(ours[0]["tokens"] - ref[0]["tokens"]) < 1e-6
    )
    print(
        f"accuracy: autotts {ours[0]['accuracy']:.4f} %, reference {ref[0]['accuracy']}; "
        f"tokens: autotts {ours[0]['tokens']:.2f}, reference {ref[0]['tokens']} -> {'same' if same else 'DIFFERENT'}"
    )
    ref_first = min(r["first"] for r in ref)
    ref_cpu = min(r["first_cpu"] for r in ref)
    print(f"one-shot speedup, wall (reference first call / autotts first call, best of each): {ref_first / first:.1f}x")
    print(f"one-shot speedup, CPU time (same calls): {ref_cpu / first_cpu:.1f}x")
    with_import = min(o["import"] + o["load"] + o["first"] for o in ours)
    ref_with_import = min(r["import"] + r["load"] + r["first"] for r in ref)
    print(f"including imports and store loading: {ref_with_import / with_import:.1f}x")


if __name__ == "__main__":
    main()
