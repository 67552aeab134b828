"""Compare synthetic profiles with the shared replay stores they imitate, side by side.

Usage::

    .venv/bin/python bench/calibrate_synthetic.py [--profile small|large|all] [--seeds 6]
        [--first-seed 0] [--runs 100] [--set knob=value ...] [--extra SPEC ...] [--data DIR]

For each profile the real side pools the three benchmarks (aime24, aime25, hmmt25) of
both models of its family (6 stores x 30 questions); the synthetic side pools ``--seeds``
synthetic stores of 30 questions. Printed: pass@1 over questions (mean, quantiles,
share never/always solved), SC@N accuracy for N = 1..64 (reference shuffle protocol,
``autotts.evaluation.evaluate``), branch lengths, probe statistics (ERR rate overall and
by fifth of a branch, settle depth) and answer spread. ``--extra cmc:beta=0.5`` also
evaluates other controllers on both sides (an out-of-sample realism check).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from autotts.evaluation import evaluate
from autotts.store import load_store
from autotts.store.schema import ERR, ReplayStore
from autotts.store.synthetic import PROFILES, parse_knob, synthesize

FAMILIES = {"small": ("Qwen3-0.6B", "Qwen3-1.7B"), "large": ("Qwen3-4B", "Qwen3-8B")}
BENCHMARKS = ("aime24", "aime25", "hmmt25")
SC_N = (1, 4, 8, 16, 32, 64)
DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "autotts-replay"


def store_stats(stores: list[ReplayStore]) -> dict[str, Any]:
    """Descriptive statistics pooled over the questions of ``stores``."""
    p1, tok, tok_ok, tok_bad, k_all, settle_ok, settle_bad, settle_abs = [], [], [], [], [], [], [], []
    n_probe = n_err = 0
    err_fifth = np.zeros(5)
    cnt_fifth = np.zeros(5)
    distinct, top_wrong = [], []
    for store in stores:
        for q in store.questions:
            finals = [b.final for b in q.branches]
            ok = [f == q.gold for f in finals]
            p1.append(float(np.mean(ok)))
            wrong = Counter(f for f in finals if f != q.gold)
            distinct.append(len(set(finals)))
            top_wrong.append(max(wrong.values()) / len(finals) if wrong else 0.0)
            for b, good in zip(q.branches, ok, strict=True):
                tok.append(b.tokens)
                (tok_ok if good else tok_bad).append(b.tokens)
                K = len(b.probes)
                k_all.append(K)
                if K == 0:
                    continue
                s = K
                while s > 0 and b.probes[s - 1] == b.final:
                    s -= 1
                (settle_ok if good else settle_bad).append(s / K)
                settle_abs.append(s)
                errs = np.fromiter((a == ERR for a in b.probes), dtype=bool, count=K)
                n_probe += K
                n_err += int(errs.sum())
                fifth = np.minimum((np.arange(K) * 5) // K, 4)
                err_fifth += np.bincount(fifth, weights=errs, minlength=5)
                cnt_fifth += np.bincount(fifth, minlength=5)
    p = np.array(p1)
    return {
        "questions": len(p),
        "pass1_mean": 100 * p.mean(),
        "pass1_q": 100 * np.quantile(p, [0.1, 0.25, 0.5, 0.75, 0.9]),
        "never": 100 * float(np.mean(p == 0)),
        "always": 100 * float(np.mean(p == 1)),
        "tokens": float(np.mean(tok)),
        "tokens_ok": float(np.mean(tok_ok)) if tok_ok else float("nan"),
        "tokens_wrong": float(np.mean(tok_bad)) if tok_bad else float("nan"),
        "tokens_p99": float(np.quantile(tok, 0.99)),
        "probes": float(np.mean(k_all)),
        "err": 100 * n_err / max(n_probe, 1),
        "err_fifth": 100 * err_fifth / np.maximum(cnt_fifth, 1),
        "settle_ok": np.quantile(settle_ok, [0.25, 0.5, 0.75]) if settle_ok else np.full(3, np.nan),
        "settle_bad": np.quantile(settle_bad, [0.25, 0.5, 0.75]) if settle_bad else np.full(3, np.nan),
        "settle_abs": float(np.median(settle_abs)),
        "distinct": float(np.median(distinct)),
        "top_wrong": 100 * float(np.mean(top_wrong)),
    }


def accuracy_curve(stores: list[ReplayStore], specs: list[str], runs: int) -> list[tuple[float, float]]:
    """(accuracy %, tokens/question) per spec, averaged over stores weighted by questions."""
    out = []
    for spec in specs:
        results = evaluate(stores, spec, runs=runs)
        weights = np.array([r.questions for r in results], dtype=float)
        acc = float(np.average([r.accuracy for r in results], weights=weights))
        tok = float(np.average([r.tokens for r in results], weights=weights))
        out.append((acc, tok))
    return out


def fmt(values: Any, spec: str = ".1f") -> str:
    return " ".join(format(float(v), spec) for v in np.atleast_1d(values))


def compare(profile: str, real: list[ReplayStore], synth: list[ReplayStore], runs: int, extra: list[str]) -> None:
    r, s = store_stats(real), store_stats(synth)
    sc_specs = [f"sc:n={n}" for n in SC_N]
    r_sc, s_sc = accuracy_curve(real, sc_specs + extra, runs), accuracy_curve(synth, sc_specs + extra, runs)
    rows = [
        ("questions pooled", str(r["questions"]), str(s["questions"])),
        ("pass@1 mean %", fmt(r["pass1_mean"]), fmt(s["pass1_mean"])),
        ("pass@1 q10/25/50/75/90 %", fmt(r["pass1_q"], ".0f"), fmt(s["pass1_q"], ".0f")),
        ("never / always solved %", fmt([r["never"], r["always"]], ".0f"), fmt([s["never"], s["always"]], ".0f")),
    ]
    for n, (ra, _), (sa, _) in zip(SC_N, r_sc, s_sc, strict=False):
        rows.append((f"SC@{n} accuracy %", fmt(ra), fmt(sa)))
    worst = max(abs(a[0] - b[0]) for a, b in zip(r_sc[:6], s_sc[:6], strict=True))
    rows.append(("SC curve max |diff| pts", "", fmt(worst)))
    for spec, (ra, rt), (sa, st) in zip(extra, r_sc[6:], s_sc[6:], strict=True):
        rows.append((f"{spec} acc % / ktok", f"{ra:.1f} / {rt / 1000:.0f}", f"{sa:.1f} / {st / 1000:.0f}"))
    rows += [
        ("tokens/branch mean", fmt(r["tokens"], ".0f"), fmt(s["tokens"], ".0f")),
        (
            "  correct / wrong",
            fmt([r["tokens_ok"], r["tokens_wrong"]], ".0f"),
            fmt([s["tokens_ok"], s["tokens_wrong"]], ".0f"),
        ),
        ("  p99", fmt(r["tokens_p99"], ".0f"), fmt(s["tokens_p99"], ".0f")),
        ("probes/branch mean", fmt(r["probes"]), fmt(s["probes"])),
        ("ERR % of probes", fmt(r["err"]), fmt(s["err"])),
        ("  by fifth of branch", fmt(r["err_fifth"]), fmt(s["err_fifth"])),
        ("settle rel q25/50/75 correct", fmt(r["settle_ok"], ".2f"), fmt(s["settle_ok"], ".2f")),
        ("settle rel q25/50/75 wrong", fmt(r["settle_bad"], ".2f"), fmt(s["settle_bad"], ".2f")),
        ("settle depth median (probes)", fmt(r["settle_abs"], ".0f"), fmt(s["settle_abs"], ".0f")),
        ("distinct finals/question med", fmt(r["distinct"], ".0f"), fmt(s["distinct"], ".0f")),
        ("top wrong answer share %", fmt(r["top_wrong"]), fmt(s["top_wrong"])),
    ]
    width = max(len(a) for a, _, _ in rows)
    print(f"\n== profile {profile!r} vs {' + '.join(FAMILIES[profile])} ({', '.join(BENCHMARKS)})")
    print(f"{'':<{width}}  {'real':>28}  {'synthetic':>28}")
    for name, a, b in rows:
        print(f"{name:<{width}}  {a:>28}  {b:>28}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="all", choices=[*FAMILIES, "all"])
    parser.add_argument("--seeds", type=int, default=6, help="synthetic stores (30 questions each) per profile")
    parser.add_argument("--first-seed", type=int, default=0, help="seed of the first synthetic store")
    parser.add_argument("--runs", type=int, default=100, help="runs per SC@N cell")
    parser.add_argument("--set", action="append", default=[], metavar="KNOB=VALUE", help="override a knob")
    parser.add_argument("--extra", action="append", default=[], metavar="SPEC", help="also evaluate this controller")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="shared autotts-replay directory")
    args = parser.parse_args(argv)
    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        overrides[key.strip()] = parse_knob(key.strip(), value.strip())
    t0 = time.perf_counter()
    for profile in FAMILIES if args.profile == "all" else (args.profile,):
        if profile not in PROFILES:
            continue
        paths = [args.data / m / f"{b}.json" for m in FAMILIES[profile] for b in BENCHMARKS]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            print(f"shared data missing: {', '.join(missing)}", file=sys.stderr)
            return 1
        real = [load_store(p) for p in paths]
        timings = []
        synth = []
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            t = time.perf_counter()
            synth.append(synthesize(profile, seed=seed, **overrides))
            timings.append(time.perf_counter() - t)
        compare(profile, real, synth, args.runs, args.extra)
        print(f"generation of one 30 x 128 store: median {1000 * float(np.median(timings)):.0f} ms")
    print(f"\n({time.perf_counter() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
