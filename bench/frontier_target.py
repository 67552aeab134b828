"""The issue-14 target: the discovered held-out curve against CMC's, from a finished discovery run.

Reads ``final.json`` of a run whose held-out stores were evaluated (e.g. with
``examples/discover_evolve_frontier.toml``: eight aime25/hmmt25 stores, 20 runs), averages
each controller's curve over the held-out stores (accuracy and tokens per β), and checks:
at every budget from ``--lo`` to ``--hi`` tokens per question the discovered curve is at or
above CMC's within ``--tolerance`` points, and above it by ``--margin`` points somewhere
(both linearly interpolated on log tokens). Prints the figures; ``--plot`` writes a PNG
(needs matplotlib, the ``plot`` extra).

    python bench/frontier_target.py runs/evolve-frontier --plot docs/img/evolve-frontier.png
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from autotts.discovery.final_frontier import compare, mean_curve


def curves(final: dict[str, Any], role: str) -> dict[str, list[dict[str, Any]]]:
    names = [s["name"] for s in final["stores"] if s["role"] == role]
    out = {}
    disc = final.get("discovered") or {}
    if disc.get("status") == "ok":
        out["discovered"] = mean_curve([disc["curves"][n] for n in names])
    for spec, ev in (final.get("baselines") or {}).items():
        if all(ev.get("curves", {}).get(n) for n in names):
            out[spec] = mean_curve([ev["curves"][n] for n in names])
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--role", default="heldout", choices=("heldout", "search"))
    ap.add_argument("--baseline", default="cmc")
    ap.add_argument("--lo", type=float, default=60_000)
    ap.add_argument("--hi", type=float, default=650_000)
    ap.add_argument("--tolerance", type=float, default=0.3)
    ap.add_argument("--margin", type=float, default=0.5)
    ap.add_argument("--plot", type=Path)
    args = ap.parse_args()
    final = json.loads((args.run_dir / "final.json").read_text(encoding="utf-8"))
    cs = curves(final, args.role)
    if "discovered" not in cs or args.baseline not in cs:
        print(f"final.json lacks the discovered controller or {args.baseline} on the {args.role} stores")
        return 1
    for name in ("discovered", args.baseline):
        pts = " | ".join(f"β={p['beta']:g} {p['accuracy']:.2f}% {p['tokens'] / 1000:,.0f}k" for p in cs[name])
        print(f"{name:>10}: {pts}")
    c = compare(cs["discovered"], cs[args.baseline], token_range=(args.lo, args.hi), samples=400)
    if not c.get("compared"):
        print("the curves do not overlap in the budget range")
        return 1
    print(
        f"budget range {args.lo / 1000:,.0f}k–{args.hi / 1000:,.0f}k, covered {100 * c['covered']:.0f} %: "
        f"min difference {c['min_difference']:+.2f} at {c['min_at_tokens'] / 1000:,.0f}k, "
        f"max {c['max_difference']:+.2f} at {c['max_at_tokens'] / 1000:,.0f}k, mean {c['mean_difference']:+.2f}"
    )
    for b in c["at_budgets"]:
        d = b["difference"]
        print(f"  at {b['tokens'] / 1000:,.0f}k: " + ("not covered" if d is None else f"{d:+.2f}"))
    ok = c["covered"] >= 1.0 and c["min_difference"] >= -args.tolerance and c["max_difference"] >= args.margin
    print(f"target met: {'yes' if ok else 'no'}")
    if args.plot is not None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 4.5))
        others = iter(("C0", "C1", "C2", "C4", "C5", "C6", "C7", "C8", "C9") * 4)
        for name, pts in cs.items():
            xs = [p["tokens"] for p in pts]
            ys = [p["accuracy"] for p in pts]
            style = {"lw": 2.4, "color": "C3"} if name == "discovered" else {"lw": 1.2, "color": next(others)}
            ax.plot(xs, ys, marker="o", ms=3, label=name, **style)
        ax.axvspan(args.lo, args.hi, color="0.93", zorder=0)
        ax.set_xscale("log")
        ax.set_xlabel("tokens per question")
        ax.set_ylabel(f"accuracy % (mean over {args.role} stores)")
        ax.legend()
        ax.grid(alpha=0.3)
        fig.tight_layout()
        args.plot.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.plot, dpi=120)
        print(f"plot: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
