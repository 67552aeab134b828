"""The offline ``evolve`` proposer: mutation and recombination over a controller grammar.

No LLM is involved. Each candidate is the component controller of
:mod:`autotts.discovery.proposers.evolve_engine` with its own ``GENOME`` (choices of
stopping, widening, pruning, voting and depth-allocation rules, plus ``a + b·β``
schedules, monotone in β, with ``max_branches`` pinned to reach the full
:data:`FULL_BUDGET` at β = 1, so the conservative end can always use the whole budget).
The named ``starts`` are proposed first, as they are, so the run records what evolution
starts from; then ``random_starts`` random genomes; later proposals mutate, stretch the
β-slopes of, or cross the parents. Parents are the best ``population`` candidates so far —
by frontier area (:mod:`autotts.discovery.fitness`) when the rule is ``frontier`` or
``niches > 0``, else by the run's selection rule — plus, with ``niches``, a MAP-Elites
archive: the most accurate candidate at each of ``niches`` budgets across the token
range, so cheap and expensive regimes both keep improving. Everything is seeded from the
run seed, round and index, so a resumed run proposes exactly what an uninterrupted one
would have. A genome already in the run's history (or a start) is not proposed again:
evaluating it twice would waste a slot.
"""

from __future__ import annotations

import ast
import functools
import importlib.resources
import pprint
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from autotts.discovery.config import ProposerConfig, SelectionConfig
from autotts.discovery.fitness import Reference, accuracy_at_fraction
from autotts.discovery.proposers.base import HistoryItem, ProposalRequest, ProposalResult
from autotts.discovery.proposers.evolve_engine import settings as engine_settings
from autotts.discovery.records import CandidateRecord, Usage
from autotts.discovery.selection import eligible, frontier_key, ranked, reference_for
from autotts.discovery.validation import literal, parse_source

Genome = dict[str, Any]

#: Branches per question the replay stores offer a controller; β = 1 must be able to use them all.
FULL_BUDGET = 64

CHOICES: dict[str, tuple[str, ...]] = {
    "mode": ("probe", "read"),
    "stop": ("confidence", "unanimous", "margin", "momentum"),
    "vote": ("finals", "latest"),
    "widen": ("batch", "stall", "idle", "trend"),
    "prune": ("none", "patience"),
    "alloc": ("all", "leaders", "deepest", "aligned"),
}
#: Numeric genes: (min a, max a, min b, max b, mutation scale). A negative min b lets the
#: setting fall with β: only for the smoothing weight and the two trend tolerances, where a
#: smaller value means a stricter (more expensive) controller.
NUMERIC: dict[str, tuple[float, float, float, float, float]] = {
    "n_init": (1.0, 16.0, 0.0, 32.0, 2.0),
    "max_branches": (1.0, 64.0, 0.0, 64.0, 8.0),
    "threshold": (0.5, 0.99, 0.0, 0.45, 0.05),
    "margin": (1.0, 8.0, 0.0, 8.0, 1.0),
    "min_votes": (1.0, 8.0, 0.0, 56.0, 1.0),
    "widen_size": (1.0, 8.0, 0.0, 8.0, 1.0),
    "patience": (1.0, 12.0, 0.0, 16.0, 2.0),
    "warm_up": (0.0, 10.0, 0.0, 12.0, 2.0),
    "burst": (1.0, 4.0, 0.0, 4.0, 0.7),
    "alpha": (0.05, 1.0, -0.9, 0.5, 0.08),
    "window": (2.0, 12.0, 0.0, 12.0, 1.0),
    "slack": (0.0, 0.15, -0.15, 0.15, 0.02),
    "trend": (-0.05, 0.15, -0.15, 0.15, 0.02),
    "keep": (1.0, 4.0, 0.0, 4.0, 0.7),
}
_START = "# --- genome start ---"
_END = "# --- genome end ---"


def engine_source() -> str:
    """The component controller's source (with its starting genome)."""
    return (
        importlib.resources.files("autotts.discovery.proposers")
        .joinpath("evolve_engine.py")
        .read_text(encoding="utf-8")
    )


def start_genome() -> Genome:
    """The genome the engine file ships with: a small-budget adaptive vote."""
    found = genome_of(engine_source())
    if found is None:  # pragma: no cover - the packaged file always has one
        raise RuntimeError("evolve_engine.py lost its GENOME block")
    return found


def momentum_genome() -> Genome:
    """A probe-mode composition of the momentum components, with round numbers.

    Opens a few branches, stops when the moving average of vote confidence is high and not
    falling, abandons branches that keep disagreeing (keeping two), gives branches that
    agree with the leader bursts of depth, and widens while the average stalls; β raises
    the width, the patience, the smoothing and the bar. It is the second point evolution
    can start from (``proposer.starts``), far from the full-read starting genome.
    """
    return normalize(
        {
            **_raw_start(),
            "mode": "probe",
            "stop": "momentum",
            "vote": "finals",
            "widen": "trend",
            "prune": "patience",
            "alloc": "aligned",
            "n_init": (2.0, 4.0),
            "max_branches": (4.0, 60.0),
            "threshold": (0.85, 0.1),
            "min_votes": (2.0, 2.0),
            "widen_size": (1.0, 2.0),
            "patience": (4.0, 8.0),
            "warm_up": (2.0, 6.0),
            "burst": (1.0, 2.0),
            "alpha": (0.6, -0.3),
            "window": (3.0, 4.0),
            "slack": (0.04, -0.03),
            "trend": (0.04, -0.03),
            "keep": (2.0, 0.0),
        }
    )


#: Named starting genomes (``proposer.starts``), proposed first and in order.
STARTS = {"vote": start_genome, "momentum": momentum_genome}


def genome_of(code: str | None) -> Genome | None:
    """The ``GENOME`` literal of an evolved program, or None for any other program."""
    if not code or _START not in code:
        return None
    found = _genome_of(code)
    return None if found is None else dict(found)


@functools.lru_cache(maxsize=512)
def _genome_of(code: str) -> Genome | None:
    """:func:`genome_of`, cached: every round reads the genome of every earlier candidate."""
    try:
        tree = parse_source(code)
    except SyntaxError:
        return None
    for node in tree.body:
        target = None
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            target, value = node.target.id, node.value
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            target, value = node.targets[0].id, node.value
        if target == "GENOME" and value is not None:
            try:
                g = ast.literal_eval(value)  # a node, not source: no parsing involved
            except ValueError:
                return None
            return normalize(g) if isinstance(g, dict) else None
    return None


def normalize(g: Mapping[str, Any]) -> Genome:
    """A genome with every gene present, valid and rounded (unknown genes dropped)."""
    base = _raw_start()
    out: Genome = {}
    for k, opts in CHOICES.items():
        v = g.get(k, base[k])
        out[k] = v if v in opts else base[k]
    for k, (lo, hi, bmin, bmax, _) in NUMERIC.items():
        v = g.get(k, base[k])
        try:
            a, b = float(v[0]), float(v[1])
        except (TypeError, ValueError, IndexError):
            a, b = base[k]
        digits = 3 if k in ("threshold", "alpha", "slack", "trend") else 2
        a = min(hi, max(lo, a))
        b = min(bmax, max(bmin, b))
        if k == "max_branches":
            b = max(b, FULL_BUDGET - a)  # β = 1 reaches the full budget, whatever the mutation did
        out[k] = (round(a, digits), round(b, digits))
    return out


def _raw_start() -> Genome:
    return dict(_raw_start_cached())


@functools.lru_cache(maxsize=1)
def _raw_start_cached() -> Genome:
    """The engine's starting genome, read once (``normalize`` needs it for every genome)."""
    src = engine_source()
    block = src[src.index(_START) + len(_START) : src.index(_END)]
    value = block.split("=", 1)[1]
    g = literal(value.strip())
    if not isinstance(g, dict):  # pragma: no cover
        raise RuntimeError("GENOME is not a dict")
    return g


def render(genome: Genome) -> str:
    """The engine source with ``genome`` in place of the shipped one."""
    src = engine_source()
    head = src[: src.index(_START) + len(_START)]
    tail = src[src.index(_END) :]
    body = pprint.pformat(normalize(genome), indent=4, width=100, sort_dicts=False)
    return f"{head}\nGENOME: dict[str, Any] = {body}\n{tail}"


_STOP_GENES = {
    "confidence": ("threshold",),
    "margin": ("margin",),
    "unanimous": (),
    "momentum": ("threshold", "alpha", "window", "slack", "warm_up"),
}
_WIDEN_GENES = {"batch": (), "idle": (), "stall": ("threshold",), "trend": ("threshold", "alpha", "window", "trend")}


def relevant_genes(genome: Genome) -> list[str]:
    """Genes that change the behaviour of ``genome`` (mutating the others would be wasted)."""
    stop_genes = _STOP_GENES[genome["stop"]]
    if genome["mode"] == "read":
        return list(dict.fromkeys(["mode", "stop", "max_branches", "min_votes", *stop_genes]))
    conditional = {"threshold", "margin", "alpha", "window", "slack", "trend", "patience", "keep"}
    names = [n for n in (*CHOICES, *NUMERIC) if n not in conditional]
    names += [*stop_genes, *_WIDEN_GENES[genome["widen"]]]
    if genome["prune"] == "patience":
        names += ["patience", "keep"]
    return list(dict.fromkeys(names))


#: Genes whose value at β = 0 sets the cheap end's cost; random starts draw them from the
#: lowest quarter of their range, since β = 0 is meant to be cheap.
_CHEAP_AT_ZERO = ("n_init", "max_branches", "min_votes", "widen_size", "burst", "warm_up")


def random_genome(rng: random.Random) -> Genome:
    """A probe-mode genome drawn at random from the grammar, cheap at β = 0."""
    g: Genome = {k: rng.choice(opts) for k, opts in CHOICES.items()}
    g["mode"] = "probe"
    for k, (lo, hi, bmin, bmax, _) in NUMERIC.items():
        top = lo + (hi - lo) / 4 if k in _CHEAP_AT_ZERO else hi
        g[k] = (rng.uniform(lo, top), rng.uniform(max(bmin, -hi), min(bmax, hi)))
    return normalize(g)


def mutate(genome: Genome, rng: random.Random, n: int) -> tuple[Genome, list[str]]:
    """Change ``n`` behaviour-relevant genes at random; return the child and the genes changed."""
    child = dict(genome)
    names = relevant_genes(child)
    changed = []
    for name in rng.sample(names, k=min(n, len(names))):
        if name in CHOICES:
            opts = [o for o in CHOICES[name] if o != child[name]]
            child[name] = rng.choice(opts)
        else:
            scale = NUMERIC[name][4]
            a, b = child[name]
            if rng.random() < 0.5:
                a += rng.gauss(0.0, scale)
            else:
                # Steps proportional to the slope, so large slopes (e.g. min_votes) move at a useful pace.
                b += rng.gauss(0.0, max(scale * 2, abs(float(b)) * 0.3))
            child[name] = (a, b)
        changed.append(name)
    return normalize(child), changed


def stretch(genome: Genome, rng: random.Random) -> tuple[Genome, str]:
    """Scale every β-slope by the same factor: the whole schedule more (or less) generous at high β."""
    factor = rng.choice((0.6, 1.6, 2.5))
    child = dict(genome)
    for name, (_, _, bmin, _, scale) in NUMERIC.items():
        a, b = child[name]
        nudge = scale if factor > 1 and b == 0 and bmin >= 0 else 0.0
        child[name] = (a, b * factor + nudge)
    return normalize(child), f"stretched every β-slope ×{factor:g}"


def crossover(a: Genome, b: Genome, rng: random.Random) -> Genome:
    """Uniform crossover: each gene from one parent or the other."""
    return normalize({k: (a[k] if rng.random() < 0.5 else b[k]) for k in (*CHOICES, *NUMERIC)})


def _key(genome: Genome) -> str:
    """What a genome *does*, to recognise one that was already proposed.

    Two genomes that give the same behaviour-relevant settings at every β on a 0.01 grid
    (rounding often absorbs a small mutation, and unused genes change nothing) would be
    scored identically: evaluating the second would waste a slot.
    """
    g = normalize(genome)
    names = sorted(set(relevant_genes(g)) | set(CHOICES))
    rows = []
    for i in range(101):
        s = engine_settings(g, i / 100)
        rows.append(tuple(s[n] for n in names))
    return repr((names, rows))


class EvolveProposer:
    """Offline evolutionary proposer (``kind = "evolve"``)."""

    kind = "evolve"

    def __init__(self, cfg: ProposerConfig, selection: SelectionConfig) -> None:
        self.cfg = cfg
        self.selection = selection

    def __repr__(self) -> str:
        return f"EvolveProposer(population={self.cfg.population})"

    def max_cost(self, request: ProposalRequest) -> float:
        """Free."""
        return 0.0

    def close(self) -> None:
        """Nothing to release."""

    def propose(self, request: ProposalRequest) -> ProposalResult:
        """Mutate or recombine good genomes so far (the starting genome first, then any random starts)."""
        t0 = time.monotonic()
        rng = random.Random(request.rng_seed)
        known = {_key(g) for g in (genome_of(h.code) for h in request.history) if g is not None}
        starts = [(name, STARTS[name]()) for name in self.cfg.starts]
        # The starts are proposed first (round 1) even before they are in the history.
        known |= {_key(g) for _, g in starts}
        parents = self._parents(request.history, request.reference)
        ordinal = len(request.history) + request.index - 1
        n_starts = len(starts)
        if ordinal < n_starts:
            name, child = starts[ordinal]
            note = "the starting genome" if name == "vote" else f"the starting genome {name!r}"
        elif not parents and request.index <= 1 and not request.history:
            child, note = start_genome(), "the starting genome"
        elif n_starts <= ordinal < n_starts + self.cfg.random_starts:
            child = random_genome(rng)
            while _key(child) in known:
                child = random_genome(rng)
            note = f"random start {ordinal - n_starts + 1} of {self.cfg.random_starts}"
        else:
            # Without an evaluated parent yet (e.g. the rest of round 1), vary the starting genome.
            parents = parents or [("the starting genome", start_genome())]
            child, note = parents[0][1], ""
            for _ in range(50):
                weights = [1.0 / (rank + 1) for rank in range(len(parents))]
                pid, pg = rng.choices(parents, weights=weights, k=1)[0]
                roll = rng.random()
                if len(parents) >= 2 and roll < 0.25:
                    (ida, ga), (idb, gb) = rng.sample(parents, 2)
                    child, changed = mutate(crossover(ga, gb, rng), rng, 1)
                    note = f"crossover of {ida} and {idb}, then mutated {', '.join(changed)}"
                elif roll < 0.45:
                    child, what = stretch(pg, rng)
                    note = f"{what} of {pid}"
                else:
                    child, changed = mutate(pg, rng, rng.choice((1, 1, 2, 3)))
                    note = f"mutation of {pid}: {', '.join(changed)}"
                if _key(child) not in known:
                    break
        code = render(child)
        response = f"evolve proposer: {note}\n\nGENOME = {pprint.pformat(child, sort_dicts=False)}\n"
        usage = Usage(calls=1, seconds=time.monotonic() - t0, attempts=1)
        return ProposalResult(response, code, usage)

    def _parents(self, history: Sequence[HistoryItem], reference: Reference | None) -> list[tuple[str, Genome]]:
        """Parents, best first: the population by fitness, then (with niches) each niche's elite."""
        by_id = {h.record.id: h for h in history}
        evolved = [h.record for h in history if genome_of(h.code) is not None]
        frontier = self.cfg.niches > 0 or self.selection.rule == "frontier"
        if frontier:
            order = _frontier_ranked(evolved, self.selection, reference)
        else:
            order = ranked(evolved, self.selection)
        chosen = order[: self.cfg.population]
        if self.cfg.niches > 0:
            lenient = replace(self.selection, require_monotone=False)
            for rec in archive(evolved, lenient, reference, self.cfg.niches):
                if rec not in chosen:
                    chosen.append(rec)
        out = []
        for rec in chosen:
            g = genome_of(by_id[rec.id].code)
            if g is not None:
                out.append((rec.id, g))
        return out


#: Frontier area (points) a parent candidate loses for a non-monotone finding.
NON_MONOTONE_PENALTY = 1.0


def _frontier_ranked(
    records: Sequence[CandidateRecord], cfg: SelectionConfig, reference: Reference | None
) -> list[CandidateRecord]:
    """Records by frontier area, best first.

    A non-monotone curve is not selectable under ``require_monotone`` but may still be a
    parent (a mutation often repairs a small dip), one :data:`NON_MONOTONE_PENALTY` point
    of area behind.
    """
    lenient = replace(cfg, rule="frontier", require_monotone=False)
    ref = reference_for(records, lenient, reference)
    keyed = []
    for r in records:
        if not eligible(r, lenient):
            continue
        area, top = frontier_key(r, lenient, ref)
        if cfg.require_monotone and any(f.code == "non-monotone" for f in r.findings):
            area -= NON_MONOTONE_PENALTY
        keyed.append(((area, top, -r.round, -r.index), r))
    keyed.sort(key=lambda t: t[0], reverse=True)
    return [r for _, r in keyed]


def archive(
    records: Sequence[CandidateRecord], cfg: SelectionConfig, reference: Reference | None, niches: int
) -> list[CandidateRecord]:
    """MAP-Elites over the token range: per niche (a budget), the record most accurate there.

    Niche ``i`` is the budget ``i / (niches − 1)`` of the way across each store's token range
    (log axis); a record's accuracy there is the mean over stores of its frontier's accuracy
    at that budget. Elites of several niches may coincide; each is listed once, cheapest niche first.
    """
    ref = reference_for(records, cfg, reference)
    usable = [r for r in records if eligible(r, cfg)]
    if not usable or not ref.stores:
        return []
    fractions = [i / (niches - 1) for i in range(niches)] if niches > 1 else [1.0]
    overall = {r.id: frontier_key(r, cfg, ref)[0] for r in usable}
    elites: list[CandidateRecord] = []
    for f in fractions:
        best: tuple[tuple[float, float], CandidateRecord] | None = None
        for r in usable:
            acc = accuracy_at_fraction(r.curves, ref, f)
            # Ties (e.g. several curves offering nothing at a cheap budget) go to the better curve overall.
            key = (acc if acc is not None else float("-inf"), overall[r.id])
            if best is None or key > best[0]:
                best = (key, r)
        if best is not None and best[1] not in elites:
            elites.append(best[1])
    return elites
