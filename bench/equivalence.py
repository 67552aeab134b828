"""How answer canonicalisation changes each baseline's accuracy on the shared replay stores.

For every store under STORES (default ../shared/data/autotts-replay) three variants are
evaluated under the reference protocol (shuffle, 100 runs) with the paper-main
controllers (SC@64, ASC, ESC, Parallel-Probe, CMC β=0.5 and β=1.0):

* exact — the store as published (exact string grading);
* light — every answer and the gold through ``normalize_answer(..., "light")``;
* math  — light, then math-verify canonicalisation (``canonicalize_store``).

Each store's result is checkpointed as JSON under --cache (with the canonicalised store
as Parquet), so an interrupted run resumes where it stopped; --jobs runs stores in
parallel processes (math-verify's timeout uses SIGALRM, so each store runs on its
process's main thread). Prints one Markdown table: per store and baseline, exact
accuracy % and the change in points with light and with math-verify.

    python bench/equivalence.py [--stores DIR] [--benchmarks hmmt25,aime25] [--cache DIR] [--timeout 2] [--jobs 2]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from autotts.collect.answers import normalize_answer
from autotts.collect.canonical import MathCanonicalizer, canonicalize_questions
from autotts.evaluation import evaluate
from autotts.evaluation.presets import method_label, preset_specs
from autotts.store import Branch, Question, ReplayStore, find_stores, load_store, save_store

VERSION = 3  # bump when a checkpoint's meaning changes (3: answers with unbalanced braces stay unparsed)


def light(store: ReplayStore) -> ReplayStore:
    def n(a: str) -> str:
        return normalize_answer(a, "light") or a

    qs = tuple(
        Question(
            q.id,
            q.text,
            n(q.gold),
            q.delta,
            tuple(Branch(tuple(n(a) for a in b.probes), b.tokens, n(b.final)) for b in q.branches),
        )
        for q in store.questions
    )
    return ReplayStore(store.meta, qs)


def run_store(name: str, path: str, checkpoint: str, timeout: float, runs: int, math: bool) -> dict[str, Any]:
    """Evaluate one store's variants; write and return its checkpoint record (and the math store)."""
    logging.getLogger("math_verify").setLevel(logging.CRITICAL)
    store = load_store(path)
    variants = {"exact": store, "light": light(store)}
    record: dict[str, Any] = {"version": VERSION, "store": name, "runs": runs, "timeout": timeout}
    out = Path(checkpoint)
    out.parent.mkdir(parents=True, exist_ok=True)
    if math:
        canon = MathCanonicalizer(timeout)
        t0, c0 = time.monotonic(), time.process_time()
        questions, merged = canonicalize_questions(variants["light"].questions, canon)
        record["canonicalize"] = {
            "wall_s": round(time.monotonic() - t0, 1),
            "cpu_s": round(time.process_time() - c0, 1),
            "merged_answers": merged,
            "unparsed_answers": canon.timeouts,
            "unbalanced_answers": canon.unbalanced,
            "verify_calls": canon.verify_calls,
            "verify_skipped": canon.filtered,
            "load_average": os.getloadavg()[0],
        }
        variants["math"] = ReplayStore(store.meta, questions)
        save_store(variants["math"], out.with_suffix(".parquet"))  # for inspecting merges
    specs = preset_specs("paper-main")
    cells: dict[str, Any] = {}
    for name, st in variants.items():
        for cell in evaluate(st, specs, runs=runs, backend="serial"):
            row = cells.setdefault(method_label(cell.controller, dict(cell.params)), {})
            row[name] = cell.accuracy
            row[name + "_per_question"] = [round(float(x), 4) for x in cell.correct.mean(axis=0)]
    record["cells"] = cells
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=1))
    tmp.replace(out)  # atomic: a checkpoint is complete or absent
    return record


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stores", default=str(Path(__file__).resolve().parents[1] / ".." / "shared/data/autotts-replay"))
    ap.add_argument("--benchmarks", default="", help="comma-separated benchmark names to keep (default: all)")
    ap.add_argument("--cache", default="/tmp/autotts-equivalence-cache", help="per-store checkpoints")
    ap.add_argument("--timeout", type=float, default=2.0, help="math-verify per-answer timeout (s)")
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--jobs", type=int, default=1, help="stores canonicalised in parallel processes")
    ap.add_argument("--no-math", action="store_true", help="only exact and light")
    args = ap.parse_args()
    keep = {b for b in args.benchmarks.split(",") if b}
    cache = Path(args.cache)
    todo: list[tuple[str, str, Path]] = []
    records: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    for path in find_stores(args.stores):
        model, bench = path.parent.name, path.stem
        if keep and bench not in keep:
            continue
        name = f"{model}/{bench}"
        order.append(name)
        ck = cache / model / f"{bench}.{'light' if args.no_math else 'math'}-t{args.timeout:g}-r{args.runs}.json"
        if ck.exists() and json.loads(ck.read_text()).get("version") == VERSION:
            records[name] = json.loads(ck.read_text())
            print(f"# {name}: checkpoint {ck}", flush=True)
        else:
            todo.append((name, str(path), ck))
    todo.sort(key=lambda t: -Path(t[1]).stat().st_size)  # largest stores (the longest to canonicalise) first
    t0 = time.monotonic()
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = [
            pool.submit(run_store, n, str(p), str(ck), args.timeout, args.runs, not args.no_math) for n, p, ck in todo
        ]
        for fut in futures:
            rec = fut.result()
            records[rec["store"]] = rec
            info = rec.get("canonicalize")
            if info:
                print(
                    f"# {rec['store']}: canonicalised in {info['wall_s']} s wall / {info['cpu_s']} s CPU, "
                    f"{info['merged_answers']} merged, {info['verify_calls']} verify calls "
                    f"({info['verify_skipped']} skipped), load {info['load_average']:.1f}",
                    flush=True,
                )
    print(
        f"# {len(todo)} stores computed in {time.monotonic() - t0:.0f} s wall, "
        f"{len(records) - len(todo)} from checkpoints"
    )
    print_table([records[n] for n in order if n in records], math=not args.no_math)


def print_table(records: list[dict[str, Any]], *, math: bool) -> None:
    """Per store, per baseline: exact accuracy % (light Δ, math-verify Δ in points)."""
    if not records:
        return
    labels = list(records[0]["cells"])
    print("\n| store | " + " | ".join(labels) + " |")
    print("|---|" + "---|" * len(labels))
    for rec in records:
        cells = []
        for label in labels:
            c = rec["cells"][label]
            deltas = f"{c['light'] - c['exact']:+.2f}" + (f", {c['math'] - c['exact']:+.2f}" if math else "")
            cells.append(f"{c['exact']:.2f} ({deltas})")
        print(f"| {rec['store']} | " + " | ".join(cells) + " |")
    if math:
        print(
            "\n| store | canonicalise wall s | CPU s | load | merged | unparsed | unbalanced | verify calls | skipped |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        for rec in records:
            i = rec["canonicalize"]
            print(
                f"| {rec['store']} | {i['wall_s']} | {i['cpu_s']} | {i['load_average']:.1f} | "
                f"{i['merged_answers']} | {i['unparsed_answers']} | {i.get('unbalanced_answers', 0)} | "
                f"{i['verify_calls']} | {i['verify_skipped']} |"
            )


if __name__ == "__main__":
    main()
