"""How answer canonicalisation changes each baseline's accuracy on the shared replay stores.

For every store under STORES (default ../shared/data/autotts-replay) three variants are
evaluated under the reference protocol (shuffle, 100 runs) with the paper-main
controllers (SC@64, ASC, ESC, Parallel-Probe, CMC β=0.5 and β=1.0):

* exact — the store as published (exact string grading);
* light — every answer and the gold through ``normalize_answer(..., "light")``;
* math  — light, then math-verify canonicalisation (``canonicalize_store``).

Prints one Markdown table (accuracy % and the change in points). math-verify is slow
(a few seconds per question); canonicalised stores are cached under --cache.

    python bench/equivalence.py [--stores DIR] [--benchmarks hmmt25,aime25] [--cache DIR] [--timeout 2]
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from autotts.collect.answers import normalize_answer
from autotts.collect.canonical import canonicalize_store
from autotts.evaluation import evaluate
from autotts.evaluation.presets import preset_specs
from autotts.store import Branch, Question, ReplayStore, find_stores, load_store, save_store


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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stores", default=str(Path(__file__).resolve().parents[1] / ".." / "shared/data/autotts-replay"))
    ap.add_argument("--benchmarks", default="", help="comma-separated benchmark names to keep (default: all)")
    ap.add_argument("--cache", default="/tmp/autotts-equivalence-cache")
    ap.add_argument("--timeout", type=float, default=2.0)
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--no-math", action="store_true", help="only exact and light")
    args = ap.parse_args()
    logging.getLogger("math_verify").setLevel(logging.CRITICAL)
    keep = {b for b in args.benchmarks.split(",") if b}
    specs = preset_specs("paper-main")
    cache = Path(args.cache)
    rows = []
    for path in find_stores(args.stores):
        store = load_store(path)
        if keep and store.meta.benchmark not in keep:
            continue
        variants = {"exact": store, "light": light(store)}
        if not args.no_math:
            cached = cache / store.meta.model / f"{store.meta.benchmark}.math.parquet"
            if cached.exists():
                variants["math"] = load_store(cached)
            else:
                t0 = time.monotonic()
                variants["math"] = canonicalize_store(variants["light"], timeout=args.timeout)
                cached.parent.mkdir(parents=True, exist_ok=True)
                save_store(variants["math"], cached)
                print(f"# canonicalised {store.name} in {time.monotonic() - t0:.0f} s", flush=True)
        results = {name: evaluate(st, specs, runs=args.runs, backend="serial") for name, st in variants.items()}
        for i, cell in enumerate(results["exact"]):
            label = cell.controller + "(" + ",".join(f"{k}={v}" for k, v in sorted(cell.params.items())) + ")"
            e = cell.accuracy
            row = f"| {store.name} | {label} | {e:.2f} | {results['light'][i].accuracy - e:+.2f}"
            if "math" in results:
                row += f" | {results['math'][i].accuracy - e:+.2f}"
            rows.append(row + " |")
            print(rows[-1], flush=True)
    header = "| store | controller | exact acc % | light Δ pts |" + ("" if args.no_math else " math Δ pts |")
    print("\n" + header)
    print("|" + "---|" * (header.count("|") - 1))
    print("\n".join(rows))


if __name__ == "__main__":
    main()
