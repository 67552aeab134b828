"""The run summary: JSON for machines, Markdown for people, and the discovered controller file.

Written at the end of a run (and rewritten by a resumed one) from what the run
directory holds: candidates and their statuses, the selection, the final evaluation
against the baselines on search and held-out stores, explorer money and tokens, and
wall-clock time per phase.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from autotts._atomic import write_text_atomic
from autotts.discovery.config import DiscoverConfig
from autotts.discovery.final_frontier import markdown as frontier_markdown
from autotts.discovery.history import RunDir
from autotts.discovery.records import CandidateRecord
from autotts.discovery.selection import Choice, best_point

DISCOVERED_FILE = "discovered_controller.py"


def _pick(points: Sequence[Mapping[str, Any]], beta: float | None) -> Mapping[str, Any] | None:
    for p in points:
        if p.get("beta") == beta:
            return p
    return None


def _rows(final: Mapping[str, Any], choice: Choice | None) -> list[dict[str, Any]]:
    """Comparison rows: the discovered controller at the selected and the largest β, baselines likewise."""
    rows: list[dict[str, Any]] = []
    stores = [s["name"] for s in final.get("stores", [])]
    roles = {s["name"]: s["role"] for s in final.get("stores", [])}
    disc = final.get("discovered") or {}
    for store in stores:
        wanted: list[float | None] = []
        if choice is not None:
            wanted.append(choice.beta)
        pts = (disc.get("curves") or {}).get(store, [])
        top = max((p["beta"] for p in pts if p.get("beta") is not None), default=None)
        if top is not None and top not in wanted:
            wanted.append(top)
        for beta in wanted:
            p = _pick(pts, beta)
            if p is not None:
                rows.append({"store": store, "role": roles[store], "controller": "discovered", **p})
        for spec, ev in (final.get("baselines") or {}).items():
            bpts = (ev.get("curves") or {}).get(store, [])
            if not bpts:
                continue
            if all(p.get("beta") is None for p in bpts):
                rows.append({"store": store, "role": roles[store], "controller": spec, **bpts[0]})
                continue
            for beta in wanted or [bpts[-1]["beta"]]:
                p = _pick(bpts, beta)
                if p is not None:
                    rows.append({"store": store, "role": roles[store], "controller": spec, **p})
    return rows


def build_summary(
    run: RunDir,
    config: DiscoverConfig,
    records: Sequence[CandidateRecord],
    choice: Choice | None,
    final: Mapping[str, Any],
) -> dict[str, Any]:
    """The summary as a JSON-able dict."""
    manifest = run.manifest()
    usage = run.usage_total()
    counts = Counter(r.status.value for r in records)
    candidates = []
    for r in records:
        p = best_point(r, config.selection)
        candidates.append(
            {
                "id": r.id,
                "status": r.status.value,
                "message": (r.message.strip().splitlines() or [""])[0][:300],
                "findings": [f.code for f in r.findings],
                "best": None if p is None else p.to_json(),
                "money": round(r.usage.money, 6),
            }
        )
    return {
        "name": config.name,
        "run_dir": str(run.path),
        "created": manifest.get("created"),
        "finished": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "stop_reason": manifest.get("stop_reason"),
        "isolation": manifest.get("isolation", config.sandbox.isolation),
        "proposer": {"kind": config.proposer.kind, "model": config.proposer.model},
        "settings": {
            "rounds": config.rounds,
            "candidates_per_round": config.candidates_per_round,
            "betas": list(config.betas),
            "search_runs": config.search_runs,
            "final_runs": config.final_runs,
            "protocol": config.protocol,
            "selection": {"rule": config.selection.rule, "gamma": config.selection.gamma},
            "ablation": {"traces": config.traces, "require_beta": config.require_beta},
        },
        "search_stores": [s["name"] for s in final.get("stores", []) if s.get("role") == "search"],
        "heldout_stores": [s["name"] for s in final.get("stores", []) if s.get("role") == "heldout"],
        "status_counts": dict(sorted(counts.items())),
        "candidates": candidates,
        "selection": None
        if choice is None
        else {
            "candidate": choice.candidate,
            "beta": choice.beta,
            "search_accuracy": choice.accuracy,
            "search_tokens": choice.tokens,
            "score": choice.score,
            "rule": choice.rule,
        },
        "discovered_controller": DISCOVERED_FILE if choice is not None else None,
        "final": {
            "runs": final.get("runs"),
            "discovered_status": (final.get("discovered") or {}).get("status"),
            "discovered_message": (final.get("discovered") or {}).get("message", ""),
            "rows": _rows(final, choice),
            "frontier": final.get("frontier") or {},
        },
        "usage": usage.to_json(),
        "money": round(usage.money, 6),
        "wall_clock_seconds": dict(manifest.get("phase_seconds") or {}),
    }


def _fmt_ci(p: Mapping[str, Any]) -> str:
    ci = p.get("accuracy_ci95")
    return f"[{ci[0]:.1f}, {ci[1]:.1f}]" if ci else ""


def render_markdown(summary: Mapping[str, Any]) -> str:
    """The Markdown report of a summary."""
    lines = [f"# Discovery run `{summary['name']}`", ""]
    prop = summary["proposer"]
    lines.append(f"- proposer: {prop['kind']}" + (f" ({prop['model']})" if prop.get("model") else ""))
    st = summary["settings"]
    lines.append(
        f"- rounds: {st['rounds']} × {st['candidates_per_round']} candidates; β grid: "
        f"{', '.join(f'{b:g}' for b in st['betas'])}; runs: {st['search_runs']} (search) / {st['final_runs']} (final)"
    )
    lines.append(f"- search stores: {', '.join(summary['search_stores']) or '-'}")
    lines.append(f"- held-out stores: {', '.join(summary['heldout_stores']) or '-'}")
    if summary.get("stop_reason"):
        lines.append(f"- search stopped early: {summary['stop_reason']}")
    if summary.get("isolation") == "process-only":
        lines.append(
            '- **warning: candidates ran with `sandbox.isolation = "process-only"`** — no seccomp filter; '
            "a candidate that escapes Python's restrictions could read files or reach the network"
        )
    u = summary["usage"]
    lines.append(
        f"- explorer: {u['calls']} calls, {u['input_tokens']:,} input + {u['output_tokens']:,} output tokens, "
        f"money {summary['money']:.4f}" + ("" if u.get("reported", True) else " (some usage not reported)")
    )
    wall = summary["wall_clock_seconds"]
    lines.append("- wall clock: " + ", ".join(f"{k} {v:,.1f} s" for k, v in wall.items()))
    counts = summary["status_counts"]
    lines.append("- candidates: " + (", ".join(f"{v} {k}" for k, v in counts.items()) or "none"))
    lines += ["", "## Selection", ""]
    sel = summary.get("selection")
    if sel is None:
        lines.append("No candidate qualified; only the baselines were evaluated.")
    else:
        beta = "" if sel["beta"] is None else f" at β = {sel['beta']:g}"
        lines.append(
            f"Selected **{sel['candidate']}**{beta} by rule `{sel['rule']}`: search accuracy "
            f"{sel['search_accuracy']:.2f} %, {sel['search_tokens']:,.0f} tokens per question. "
            f"Program: `{summary['discovered_controller']}`."
        )
    fin = summary["final"]
    if fin.get("discovered_status") not in (None, "ok"):
        lines.append(
            f"\nThe final evaluation of the discovered controller failed: {fin['discovered_status']} — "
            f"{fin.get('discovered_message', '')}"
        )
    lines += ["", f"## Final evaluation ({fin.get('runs')} runs)", ""]
    lines.append("| store | role | controller | β | accuracy % | 95% CI | tokens/q |")
    lines.append("|---|---|---|---|---:|---|---:|")
    for r in fin["rows"]:
        beta = "" if r.get("beta") is None else f"{r['beta']:g}"
        lines.append(
            f"| {r['store']} | {r['role']} | {r['controller']} | {beta} | {r['accuracy']:.2f} | {_fmt_ci(r)} | "
            f"{r['tokens']:,.0f} |"
        )
    lines += frontier_markdown(fin.get("frontier") or {})
    lines += ["", "## Candidates", ""]
    lines.append("| id | status | best accuracy % | tokens/q | β | findings | message |")
    lines.append("|---|---|---:|---:|---|---|---|")
    for c in summary["candidates"]:
        b = c.get("best") or {}
        beta = "" if b.get("beta") is None else f"{b['beta']:g}"
        acc = f"{b['accuracy']:.2f}" if b else ""
        tok = f"{b['tokens']:,.0f}" if b else ""
        msg = c["message"].replace("|", "\\|")[:120]
        lines.append(f"| {c['id']} | {c['status']} | {acc} | {tok} | {beta} | {', '.join(c['findings'])} | {msg} |")
    return "\n".join(lines) + "\n"


def write_summary(
    run: RunDir,
    config: DiscoverConfig,
    records: Sequence[CandidateRecord],
    choice: Choice | None,
    final: Mapping[str, Any],
) -> dict[str, Any]:
    """Write ``summary.json``, ``summary.md`` and the discovered controller; return the summary."""
    summary = build_summary(run, config, records, choice, final)
    if choice is not None:
        rec = next(r for r in records if r.id == choice.candidate)
        code = run.code(rec)
        if code is not None:
            beta = "" if choice.beta is None else f" (selected β = {choice.beta:g})"
            header = f"# Discovered by autotts discover, run {config.name!r}, candidate {choice.candidate}{beta}.\n"
            write_text_atomic(run.path / DISCOVERED_FILE, header + code)
    write_text_atomic(run.path / "summary.json", json.dumps(summary, indent=2) + "\n")
    write_text_atomic(run.path / "summary.md", render_markdown(summary))
    return summary
