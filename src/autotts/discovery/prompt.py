"""The prompt builder: what the explorer is shown, from editable text templates.

Templates live in ``autotts/discovery/templates/*.txt`` and use ``$name`` placeholders
(:class:`string.Template`); a file of the same name in ``prompt.template_dir`` replaces
the packaged one, so users can reword anything without touching code.

The prompt holds the environment and session API with its exact cost semantics, the
rules, the *search* stores' shape, the seed controllers' code and curves and, for every
earlier candidate, its code, status, message, findings, per-β curves, schedule settings
and (unless the ``traces`` ablation is off) its trace digest. When the whole exceeds
``prompt.max_chars``, entries are shortened to one-line summaries — older and weaker
ones first; the best few and the latest are kept whole as long as possible. Held-out
stores are never passed to this module.
"""

from __future__ import annotations

import importlib.resources
import json
import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from autotts.discovery.config import DiscoverConfig
from autotts.discovery.fitness import Reference, best_before, feedback, metrics
from autotts.discovery.proposers.base import HistoryItem
from autotts.discovery.records import CandidateRecord, CurvePoint
from autotts.discovery.selection import best_point, ranked, score
from autotts.discovery.validation import ALLOWED_IMPORTS

TEMPLATE_NAMES = (
    "system.txt",
    "task.txt",
    "environment.txt",
    "rules_beta.txt",
    "rules_nobeta.txt",
    "instructions.txt",
    "agent_instructions.txt",
    "seed.txt",
    "candidate.txt",
    "candidate_compact.txt",
    "skeleton.py.txt",
)
#: Entries kept whole for as long as possible: the best few and the most recent few.
_KEEP_BEST = 3
_KEEP_LATEST = 2


def load_template(name: str, template_dir: Path | None = None) -> str:
    """The text of template ``name``: the user's copy if present, else the packaged one."""
    if template_dir is not None and (template_dir / name).is_file():
        return (template_dir / name).read_text(encoding="utf-8")
    return importlib.resources.files("autotts.discovery").joinpath("templates", name).read_text(encoding="utf-8")


@dataclass(frozen=True)
class StoreFacts:
    """What the explorer may know about a search store: its shape, not its contents."""

    name: str
    questions: int
    branches: int
    delta: int


@dataclass(frozen=True)
class SeedInfo:
    """A seed controller as shown to the explorer."""

    name: str
    description: str
    source: str
    curves: Mapping[str, tuple[CurvePoint, ...]] = field(default_factory=dict)
    error: str = ""


def format_curve(points: Sequence[CurvePoint]) -> str:
    """``β=0.0 54.2% 1,087 tok | …`` (no β label for fixed controllers)."""
    parts = []
    for p in points:
        label = "" if p.beta is None else f"β={p.beta:g} "
        parts.append(f"{label}{p.accuracy:.1f}% {p.tokens:,.0f} tok")
    return " | ".join(parts)


def format_curves(curves: Mapping[str, Sequence[CurvePoint]]) -> str:
    """One line per store."""
    return "\n".join(f"- {name}: {format_curve(pts)}" for name, pts in curves.items())


class PromptBuilder:
    """Renders prompts and agent workspaces for one run (see the module docstring)."""

    def __init__(
        self, config: DiscoverConfig, stores: Sequence[StoreFacts], *, reference: Reference | None = None
    ) -> None:
        self.config = config
        self.stores = list(stores)
        self._dir = config.prompt.template_dir
        self.reference = reference if reference is not None else Reference({})
        self._records: Sequence[CandidateRecord] = ()

    def template(self, name: str) -> string.Template:
        """A packaged or user template."""
        return string.Template(load_template(name, self._dir))

    def system(self) -> str:
        """The system message."""
        return self.template("system.txt").safe_substitute().strip()

    def skeleton(self) -> str:
        """The starting ``controller.py`` when no candidate has succeeded yet."""
        return load_template("skeleton.py.txt", self._dir)

    # ------------------------------------------------------------------ sections
    def _limits(self) -> str:
        sb = self.config.sandbox
        return f"{sb.cpu_seconds:g} s CPU, {sb.wall_seconds:g} s wall clock, {sb.memory_mb} MB memory"

    def _rules(self) -> str:
        name = "rules_beta.txt" if self.config.require_beta else "rules_nobeta.txt"
        return (
            self.template(name)
            .safe_substitute(
                betas=", ".join(f"{b:g}" for b in self.config.betas),
                allowed=", ".join(sorted(m for m in ALLOWED_IMPORTS if m != "__future__")),
                limits=self._limits(),
            )
            .strip()
        )

    def _stores(self) -> str:
        lines = [
            f"- {s.name}: {s.questions} questions, {s.branches} branches each, Δ = {s.delta} tokens"
            for s in self.stores
        ]
        lines.append(
            f"Search scoring uses {self.config.search_runs} runs per β; the reported figures are means over "
            "runs and, for the search set, over stores."
        )
        return "\n".join(lines)

    def _seed(self, seed: SeedInfo) -> str:
        curves = format_curves(seed.curves) if seed.curves else (f"(not evaluated: {seed.error})" if seed.error else "")
        return (
            self.template("seed.txt")
            .safe_substitute(name=seed.name, description=seed.description, curves=curves, code=seed.source.strip())
            .strip()
        )

    def _frontier(self, rec: CandidateRecord) -> tuple[str, str]:
        """``(lines, one-liner)``: the curve against the best frontier when the candidate was proposed."""
        if not rec.ok or not rec.curves or not self.reference.stores:
            return "", ""
        best = best_before(self.reference, self._records, rec.round)
        m = metrics(rec.curves, best)
        if not m.stores:
            return "", ""
        diffs = m.at_budgets()
        wins = sum(d > 0.05 for d in diffs)
        short = f"; frontier area {m.score():+.2f} vs best so far, above at {wins}/{len(diffs)} budgets"
        return feedback(rec.curves, best) + "\n", short

    def _entry(self, item: HistoryItem) -> tuple[str, str]:
        rec = item.record
        message = ""
        if rec.message:
            message = f"Message: {rec.message.strip()}\n"
        if rec.stderr_tail.strip() and not rec.ok:
            message += f"stderr (tail):\n{rec.stderr_tail.strip()[-800:]}\n"
        findings = "".join(f"Finding [{f.code}]: {f.message}\n" for f in rec.findings)
        curves = ""
        if rec.curves:
            curves = "Curves:\n" + format_curves(rec.curves) + "\n"
            if len(rec.curves) > 1 and rec.search_curve:
                curves += f"- search mean: {format_curve(rec.search_curve)}\n"
        front_lines, front_short = self._frontier(rec)
        curves += front_lines
        settings = ""
        if rec.settings:
            keys = list(rec.settings)
            shown = [keys[0], keys[-1]] if len(keys) > 1 else keys
            settings = "".join(f"schedule(β={k}) = {rec.settings[k]}\n" for k in shown)
        digest = ""
        if self.config.traces and item.digest:
            digest = "Trace digest:\n" + item.digest.strip() + "\n"
        code = (item.code or "(no code was extracted)").strip()
        full = self.template("candidate.txt").safe_substitute(
            id=rec.id,
            status=rec.status.value,
            message=message,
            findings=findings,
            curves=curves,
            settings=settings,
            code=code,
            digest=digest,
        )
        best = best_point(rec, self.config.selection)
        summary = ""
        if best is not None:
            beta = "" if best.beta is None else f" at β={best.beta:g}"
            summary = f", best {best.accuracy:.1f}% / {best.tokens:,.0f} tok{beta}{front_short}"
        if rec.findings:
            summary += "; findings: " + ", ".join(sorted({f.code for f in rec.findings}))
        if rec.message and not rec.ok:
            summary += "; " + rec.message.strip().splitlines()[0][:160]
        compact = self.template("candidate_compact.txt").safe_substitute(
            id=rec.id, status=rec.status.value, summary=summary
        )
        return full.strip() + "\n", compact.rstrip() + "\n"

    def _history(self, history: Sequence[HistoryItem], budget: int) -> str:
        if not history:
            return "(none yet — this is the first candidate)"
        records: list[CandidateRecord] = [h.record for h in history]
        self._records = records
        entries = [self._entry(h) for h in history]
        protected = {r.id for r in ranked(records, self.config.selection, self.reference)[:_KEEP_BEST]}
        protected |= {r.id for r in records[-_KEEP_LATEST:]}

        def weakness(i: int) -> tuple[int, float, int]:
            rec = records[i]
            p = best_point(rec, self.config.selection)
            s = score(p, self.config.selection) if p is not None and rec.ok else float("-inf")
            return (1 if rec.id in protected else 0, s, i)

        use_full = [True] * len(entries)
        total = sum(len(f) for f, _ in entries)
        for i in sorted(range(len(entries)), key=weakness):
            if total <= budget:
                break
            use_full[i] = False
            total -= len(entries[i][0]) - len(entries[i][1])
        texts = [full if keep else compact for (full, compact), keep in zip(entries, use_full, strict=True)]
        dropped = 0
        while total > budget and len(texts) - dropped > 1:
            total -= len(texts[dropped])
            dropped += 1
        out = texts[dropped:]
        if dropped:
            out.insert(0, f"({dropped} earlier candidates omitted to fit the size budget)\n")
        return "\n".join(out).strip()

    # --------------------------------------------------------------------- public
    def prompt(
        self,
        seeds: Sequence[SeedInfo],
        history: Sequence[HistoryItem],
        *,
        candidate_id: str,
        agent: bool = False,
    ) -> str:
        """The full user prompt (or ``TASK.md`` for an agent) within ``prompt.max_chars`` where possible."""
        instructions = self.template("agent_instructions.txt" if agent else "instructions.txt").safe_substitute(
            candidate_id=candidate_id
        )
        fixed = {
            "environment": self.template("environment.txt").safe_substitute().strip(),
            "rules": self._rules(),
            "stores": self._stores(),
            "seeds": "\n\n".join(self._seed(s) for s in seeds) or "(none)",
            "instructions": instructions.strip(),
            "n_candidates": str(len(history)),
        }
        skeleton = self.template("task.txt").safe_substitute(fixed, history="")
        budget = max(1000, self.config.prompt.max_chars - len(skeleton))
        return self.template("task.txt").safe_substitute(fixed, history=self._history(history, budget)).strip() + "\n"

    def workspace(
        self,
        seeds: Sequence[SeedInfo],
        history: Sequence[HistoryItem],
        *,
        candidate_id: str,
        starting_code: str,
    ) -> dict[str, str]:
        """Files of an agent workspace: TASK.md, seeds/, history/, controller.py."""
        files = {"TASK.md": self.prompt(seeds, history, candidate_id=candidate_id, agent=True)}
        for s in seeds:
            files[f"seeds/{re.sub(r'[^A-Za-z0-9_.-]', '_', s.name)}.py"] = s.source
        for h in history:
            rec = h.record
            files[f"history/{rec.id}/result.json"] = json.dumps(rec.to_json(), indent=2) + "\n"
            if h.code is not None:
                files[f"history/{rec.id}/controller.py"] = h.code
            if self.config.traces and h.digest:
                files[f"history/{rec.id}/digest.txt"] = h.digest
        files["controller.py"] = starting_code
        return files
