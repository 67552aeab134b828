"""Frontier-aware discovery: selection rules, frontier feedback, the evolve archive and components."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from autotts.discovery.config import ProposerConfig, SelectionConfig, config_from_mapping, load_config
from autotts.discovery.final_frontier import compare, final_frontier
from autotts.discovery.fitness import BUDGET_FRACTIONS, best_before, build_reference, feedback, metrics
from autotts.discovery.loop import DiscoveryLoop
from autotts.discovery.prompt import PromptBuilder, SeedInfo, StoreFacts
from autotts.discovery.proposers.base import HistoryItem, ProposalRequest
from autotts.discovery.proposers.evolve import (
    NUMERIC,
    EvolveProposer,
    archive,
    genome_of,
    momentum_genome,
    mutate,
    normalize,
    random_genome,
    render,
    start_genome,
)
from autotts.discovery.records import CandidateRecord, CurvePoint, Finding, Status, mean_curve
from autotts.discovery.selection import frontier_key, ranked, select
from autotts.discovery.validation import validate_source
from autotts.errors import ConfigError
from autotts.store import save_store
from autotts.testing import tiny_store
from tests.discovery_support import write_config

BETAS = (0.0, 0.5, 1.0)


def curve(*pts: tuple[float, float]) -> tuple[CurvePoint, ...]:
    """Points ``(tokens, accuracy)`` at β = 0, 0.5, 1."""
    return tuple(CurvePoint(b, a, t) for b, (t, a) in zip(BETAS, pts, strict=True))


def record(cid: str, curves: dict[str, tuple[CurvePoint, ...]], **kw: Any) -> CandidateRecord:
    return CandidateRecord(
        cid,
        int(cid[1:3]),
        int(cid[4:6]),
        kw.pop("status", Status.OK),
        curves=curves,
        search_curve=mean_curve(curves.values()),
        **kw,
    )


SEEDS = {"A": curve((100, 40.0), (1000, 60.0), (10_000, 70.0)), "B": curve((100, 30.0), (1000, 50.0), (10_000, 60.0))}
REF = build_reference([SEEDS])
FRONTIER = SelectionConfig(rule="frontier")
ACCURACY = SelectionConfig(rule="accuracy")


# ------------------------------------------------------------------- metrics
def test_a_seed_curve_scores_zero_and_a_uniform_lift_scores_the_lift() -> None:
    same = metrics(SEEDS, REF)
    assert same.score() == pytest.approx(0.0, abs=1e-9)
    assert same.at_budgets() == pytest.approx([0.0] * len(BUDGET_FRACTIONS), abs=1e-9)
    lifted = {k: tuple(CurvePoint(p.beta, p.accuracy + 2.0, p.tokens) for p in v) for k, v in SEEDS.items()}
    m = metrics(lifted, REF)
    assert m.score() == pytest.approx(2.0, abs=1e-6)
    assert m.at_budgets() == pytest.approx([2.0] * len(BUDGET_FRACTIONS), abs=1e-6)
    # It reaches the seeds' best accuracy (70 % on A, 60 % on B) earlier than the seeds do.
    to_reach = m.to_reach()
    assert to_reach is not None and to_reach < 1.0


def test_a_curve_that_does_not_reach_the_cheap_end_loses_area_there() -> None:
    late = {k: tuple(p for p in v if p.tokens >= 1000) for k, v in SEEDS.items()}
    m = metrics(late, REF)
    # Below its cheapest point it offers nothing: at the first budget it is 40 / 30 points short.
    assert m.stores["A"].at_budgets[0] == pytest.approx(-40.0)
    assert m.stores["B"].at_budgets[0] == pytest.approx(-30.0)
    assert m.stores["A"].at_budgets[-1] == pytest.approx(0.0)
    assert m.score() < -10


def test_robustness_worst_and_spread_penalise_one_store_overfitting() -> None:
    uneven = {"A": curve((100, 50.0), (1000, 70.0), (10_000, 80.0)), "B": SEEDS["B"]}
    m = metrics(uneven, REF)
    assert m.score("mean") == pytest.approx(5.0, abs=1e-6)
    assert m.score("worst") == pytest.approx(0.0, abs=1e-6)
    assert m.score("spread", 1.0) == pytest.approx(0.0, abs=1e-6)  # mean 5 − std 5
    assert m.score("spread", 0.5) == pytest.approx(2.5, abs=1e-6)


def test_token_range_fixes_the_integration_span() -> None:
    ref = build_reference([SEEDS], token_range=(1000.0, 10_000.0))
    assert {(s.lo, s.hi) for s in ref.stores.values()} == {(1000.0, 10_000.0)}
    # The cheap end (100 tokens) no longer counts: dropping it costs nothing.
    late = {k: tuple(p for p in v if p.tokens >= 1000) for k, v in SEEDS.items()}
    assert metrics(late, ref).score() == pytest.approx(0.0, abs=1e-9)


def test_feedback_names_the_budgets_won_and_lost() -> None:
    mixed = {
        "A": curve((100, 45.0), (1000, 58.0), (10_000, 70.0)),
        "B": curve((100, 35.0), (1000, 48.0), (10_000, 60.0)),
    }
    text = feedback(mixed, REF)
    first = text.splitlines()[0]
    assert "wins at 2 of 5" in first and "loses at 2" in first  # +5, +1.5, −2, −1, 0
    assert "100 +5.0 · 316 +1.5 · 1,000 -2.0 · 3,162 -1.0 · 10k +0.0" in text
    assert text.count("\n") == 3  # the header, the mean and one line per store: compact


def test_best_before_pools_only_earlier_ok_candidates() -> None:
    better = {k: tuple(CurvePoint(p.beta, p.accuracy + 5, p.tokens) for p in v) for k, v in SEEDS.items()}
    recs = [
        record("r01c01", better),
        record("r02c01", better),
        record("r01c02", better, status=Status.CRASHED),
    ]
    assert metrics(SEEDS, best_before(REF, recs, 1)).score() == pytest.approx(0.0, abs=1e-9)
    assert metrics(SEEDS, best_before(REF, recs, 2)).score() == pytest.approx(-5.0, abs=1e-6)


# ------------------------------------------------------------------ selection
def _pair() -> tuple[CandidateRecord, CandidateRecord]:
    # "spender" has the single most accurate point but a poor curve; "curve" is better across the range.
    spender = record("r01c01", {k: curve((900, 30.0), (5000, 45.0), (10_000, 72.0)) for k in SEEDS})
    good = record("r01c02", {k: curve((100, 45.0), (1000, 64.0), (10_000, 71.0)) for k in SEEDS})
    return spender, good


def test_accuracy_rule_picks_the_best_point_and_frontier_rule_the_best_curve() -> None:
    spender, good = _pair()
    assert select([spender, good], ACCURACY).candidate == spender.id  # type: ignore[union-attr]
    choice = select([spender, good], FRONTIER, REF)
    assert choice is not None and choice.candidate == good.id and choice.rule == "frontier"
    assert choice.beta == 1.0 and choice.accuracy == pytest.approx(71.0)  # the curve's most accurate point
    assert choice.score == pytest.approx(frontier_key(good, FRONTIER, REF)[0])
    assert [r.id for r in ranked([spender, good], FRONTIER, REF)] == [good.id, spender.id]
    # Without the seeds' reference, the candidates' own best frontier serves; the ranking is the same.
    assert select([spender, good], FRONTIER).candidate == good.id  # type: ignore[union-attr]


def test_frontier_ties_go_to_accuracy_at_the_largest_budget_then_the_earlier_candidate() -> None:
    ref = build_reference([SEEDS], token_range=(100.0, 10_000.0))
    # Both curves average 60 % over the two decades on a log axis (equal area) ...
    straight = {k: curve((100, 50.0), (1000, 60.0), (10_000, 70.0)) for k in SEEDS}
    bent = {k: curve((100, 55.0), (1000, 60.0), (10_000, 65.0)) for k in SEEDS}
    early = record("r01c01", bent)
    late = record("r02c01", straight)
    assert frontier_key(early, FRONTIER, ref)[0] == frontier_key(late, FRONTIER, ref)[0]
    # ... so the higher accuracy at the largest budget wins, even for a later candidate,
    assert select([early, late], FRONTIER, ref).candidate == late.id  # type: ignore[union-attr]
    # and on a full tie the earlier candidate keeps the place.
    twin = record("r03c01", straight)
    assert select([twin, late], FRONTIER, ref).candidate == late.id  # type: ignore[union-attr]
    assert [r.id for r in ranked([twin, early, late], FRONTIER, ref)] == [late.id, twin.id, early.id]


def test_require_monotone_and_status_are_honoured_by_the_frontier_rule() -> None:
    spender, good = _pair()
    flagged = record(good.id, dict(good.curves), findings=(Finding("non-monotone", "tokens drop"),))
    strict = SelectionConfig(rule="frontier", require_monotone=True)
    assert select([spender, flagged], strict, REF).candidate == spender.id  # type: ignore[union-attr]
    assert select([spender, flagged], FRONTIER, REF).candidate == flagged.id  # type: ignore[union-attr]
    crashed = record("r01c03", dict(good.curves), status=Status.CRASHED)
    assert select([crashed], FRONTIER, REF) is None


def test_worst_store_robustness_changes_the_pick() -> None:
    overfit = record(
        "r01c01",
        {"A": curve((100, 60.0), (1000, 80.0), (10_000, 90.0)), "B": curve((100, 28.0), (1000, 48.0), (10_000, 58.0))},
    )
    steady = record(
        "r01c02",
        {"A": curve((100, 42.0), (1000, 62.0), (10_000, 72.0)), "B": curve((100, 32.0), (1000, 52.0), (10_000, 62.0))},
    )
    assert select([overfit, steady], FRONTIER, REF).candidate == overfit.id  # type: ignore[union-attr]
    worst = SelectionConfig(rule="frontier", robustness="worst")
    assert select([overfit, steady], worst, REF).candidate == steady.id  # type: ignore[union-attr]


def test_config_reads_the_frontier_options(tmp_path: Path) -> None:
    store = save_store(tiny_store(0), tmp_path / "m" / "b.json")
    good = write_config(
        tmp_path / "ok.toml",
        {},
        {
            "stores": {"search": [store]},
            "selection": {"rule": "frontier", "robustness": "spread", "spread_weight": 0.5, "token_range": [5e4, 7e5]},
            "proposer": {"kind": "evolve", "niches": 5, "random_starts": 2},
        },
    )
    cfg = load_config(good)
    assert cfg.selection.rule == "frontier" and cfg.selection.token_range == (5e4, 7e5)
    assert cfg.proposer.niches == 5 and cfg.proposer.random_starts == 2
    assert json.loads(cfg.to_json())["selection"]["token_range"] == [5e4, 7e5]
    for bad, msg in (
        ({"token_range": [7e5, 5e4]}, "token_range"),
        ({"token_range": [1, 2, 3]}, "token_range"),
        ({"robustness": "median"}, "robustness"),
    ):
        path = write_config(tmp_path / "bad.toml", {}, {"stores": {"search": [store]}, "selection": bad})
        with pytest.raises(ConfigError, match=msg):
            load_config(path)


# ------------------------------------------------------------ final comparison
def test_compare_reports_the_smallest_and_largest_difference() -> None:
    cmc = [{"beta": 0.0, "accuracy": 40.0, "tokens": 1000.0}, {"beta": 1.0, "accuracy": 50.0, "tokens": 10_000.0}]
    mine = [{"beta": 0.0, "accuracy": 41.0, "tokens": 1000.0}, {"beta": 1.0, "accuracy": 49.0, "tokens": 10_000.0}]
    c = compare(mine, cmc, samples=101)
    assert c["covered"] == 1.0
    assert c["min_difference"] == pytest.approx(-1.0) and c["min_at_tokens"] == pytest.approx(10_000.0)
    assert c["max_difference"] == pytest.approx(1.0) and c["max_at_tokens"] == pytest.approx(1000.0)
    assert c["at_budgets"][2]["difference"] == pytest.approx(0.0, abs=1e-9)  # the midpoint on a log axis
    late = [{"beta": 0.0, "accuracy": 45.0, "tokens": 3000.0}, {"beta": 1.0, "accuracy": 55.0, "tokens": 20_000.0}]
    c2 = compare(late, cmc, samples=101)
    assert 0.4 < c2["covered"] < 0.6 and c2["at_budgets"][0]["difference"] is None


def test_final_frontier_averages_per_role() -> None:
    def pts(acc: float) -> list[dict[str, Any]]:
        return [{"beta": b, "accuracy": acc + 10 * b, "tokens": 1000 + 9000 * b} for b in (0.0, 1.0)]

    final = {
        "stores": [
            {"name": "s1", "role": "search"},
            {"name": "h1", "role": "heldout"},
            {"name": "h2", "role": "heldout"},
        ],
        "discovered": {"status": "ok", "curves": {"s1": pts(50), "h1": pts(40), "h2": pts(44)}},
        "baselines": {"cmc": {"curves": {"s1": pts(49), "h1": pts(40), "h2": pts(40)}}},
    }
    fr = final_frontier(final)
    held = fr["heldout"]
    assert held["curves"]["discovered"][0]["accuracy"] == pytest.approx(42.0)
    assert held["vs_baselines"]["cmc"]["min_difference"] == pytest.approx(2.0)
    assert fr["search"]["vs_baselines"]["cmc"]["mean_difference"] == pytest.approx(1.0)


# -------------------------------------------------------------------- evolve
def _run(genome: dict[str, Any], beta: float) -> Any:
    ns: dict[str, Any] = {}
    exec(compile(render(genome), "evolved", "exec"), ns)
    return ns["EvolvedController"](beta)


class Reads:
    def __init__(self, answers: list[str]) -> None:
        self.answers, self.n = answers, 0

    def read(self) -> Any:
        if self.n >= len(self.answers):
            return None
        self.n += 1
        return type("R", (), {"answer": self.answers[self.n - 1]})()


def test_momentum_stop_waits_for_a_high_and_steady_average() -> None:
    g = dict(
        start_genome(),
        stop="momentum",
        min_votes=(1.0, 0.0),
        threshold=(0.9, 0.0),
        alpha=(0.5, 0.0),
        window=(3.0, 0.0),
        slack=(0.0, 0.0),
        warm_up=(0.0, 0.0),
        max_branches=(64.0, 0.0),
    )
    ctl = _run(normalize(g), 0.0)
    session = Reads(["7"] * 64)
    assert ctl.solve(session) == "7"
    # Confidence with k agreeing votes is 1 − 2^−(k+1); the average with weight 0.5 first
    # reaches 0.9 after five votes (plain confidence would stop after three).
    assert session.n == 5
    lazy = _run(normalize(dict(g, alpha=(1.0, 0.0))), 0.0)
    s2 = Reads(["7"] * 64)
    lazy.solve(s2)
    assert s2.n == 3


class Probes:
    """A probe-mode session stand-in: branch b answers ``answers[b]`` at every probe, finishing at ``depth``."""

    def __init__(self, answers: list[str], depth: int) -> None:
        self.answers, self.depth_max = answers, depth
        self.depths: dict[int, int] = {}
        self.pruned: set[int] = set()
        self.log: list[int] = []

    def _r(self, b: int) -> Any:
        fin = self.depths[b] >= self.depth_max
        return type("R", (), {"branch": b, "answer": self.answers[b], "finished": fin})()

    def open(self) -> Any:
        b = len(self.depths)
        if b >= len(self.answers):
            return None
        self.depths[b] = 1
        return self._r(b)

    def advance(self, b: int) -> Any:
        self.depths[b] += 1
        self.log.append(b)
        return self._r(b)

    def prune(self, b: int) -> None:
        self.pruned.add(b)

    def alive(self) -> list[int]:
        return [b for b, d in self.depths.items() if d < self.depth_max and b not in self.pruned]

    def depth(self, b: int) -> int:
        return self.depths[b]

    def is_pruned(self, b: int) -> bool:
        return b in self.pruned

    @property
    def n_opened(self) -> int:
        return len(self.depths)

    @property
    def n_available(self) -> int:
        return len(self.answers) - len(self.depths)


def _probe_genome(**kw: Any) -> dict[str, Any]:
    base = dict(
        start_genome(),
        mode="probe",
        stop="unanimous",
        vote="finals",
        widen="idle",
        prune="none",
        alloc="all",
        n_init=(3.0, 0.0),
        max_branches=(3.0, 61.0),
        min_votes=(2.0, 0.0),
        warm_up=(0.0, 0.0),
        burst=(3.0, 0.0),
    )
    return normalize({**base, **kw})


def test_aligned_bursts_deepen_branches_that_agree_with_the_leader() -> None:
    # The latest answers are 7, 7, 8: "7" leads. Aligned: bursts of 3 for branches 0 and 1, one step for 2.
    aligned = Probes(["7", "7", "8"], depth=40)
    _run(_probe_genome(alloc="aligned", vote="latest", min_votes=(60.0, 0.0)), 0.0).solve(aligned)
    assert aligned.log[:7] == [0, 0, 0, 1, 1, 1, 2]
    assert aligned.log[7:10] == [0, 0, 0]
    every = Probes(["7", "7", "8"], depth=40)
    _run(_probe_genome(alloc="all", vote="latest", min_votes=(60.0, 0.0)), 0.0).solve(every)
    assert every.log[:9] == [0, 0, 0, 1, 1, 1, 2, 2, 2]


def test_abandoning_disagreeing_branches_keeps_at_least_keep_alive() -> None:
    s = Probes(["7", "7", "8", "9", "6"], depth=40)
    g = _probe_genome(
        prune="patience", patience=(1.0, 0.0), keep=(2.0, 0.0), vote="latest", n_init=(5.0, 0.0), min_votes=(60.0, 0.0)
    )
    _run(g, 0.0).solve(s)
    assert s.pruned == {2, 3, 4}
    s1 = Probes(["7", "7", "8", "9", "6"], depth=40)
    _run(dict(g, keep=(4.0, 0.0)), 0.0).solve(s1)
    assert len(s1.pruned) == 1


def test_widening_on_a_flat_trend_opens_branches_only_while_the_average_does_not_rise() -> None:
    g = _probe_genome(
        widen="trend",
        threshold=(0.9, 0.0),
        n_init=(1.0, 0.0),
        max_branches=(8.0, 56.0),
        min_votes=(2.0, 0.0),
        widen_size=(1.0, 0.0),
    )
    # Nothing has finished yet, so the average stays at 0: a flat trend (0 ≤ 0.15) widens every step.
    eager = Probes(["7"] * 8, depth=30)
    assert _run(dict(g, trend=(0.15, 0.0)), 0.0).solve(eager) == "7"
    assert eager.n_opened == 8
    # With a tolerance below zero the flat average never counts as stalled: it only opens a
    # branch when none is alive (the third in the step the second finishes), and two
    # agreeing finals end the question.
    strict = Probes(["7"] * 8, depth=30)
    assert _run(dict(g, trend=(-0.05, 0.0)), 0.0).solve(strict) == "7"
    assert strict.n_opened == 3


def test_random_and_mutated_genomes_are_valid_and_monotone() -> None:
    rng = random.Random(3)
    for i in range(30):
        g = random_genome(rng) if i % 2 else mutate(random_genome(rng), rng, 3)[0]
        code = render(g)
        assert validate_source(code).ok
        assert genome_of(code) == normalize(g)
        ns: dict[str, Any] = {}
        exec(compile(code, "evolved", "exec"), ns)
        settings = [ns["EvolvedController"].schedule(b / 10) for b in range(11)]
        for key in NUMERIC:
            values = [s[key] for s in settings]
            assert values in (sorted(values), sorted(values, reverse=True)), (key, values)
        assert settings[-1]["max_branches"] == 64


def test_archive_keeps_the_elite_of_each_budget() -> None:
    cheap = record("r01c01", {k: curve((100, 50.0), (1000, 55.0), (10_000, 60.0)) for k in SEEDS})
    dear = record("r01c02", {k: curve((1000, 40.0), (5000, 60.0), (10_000, 75.0)) for k in SEEDS})
    middle = record("r01c03", {k: curve((100, 45.0), (1000, 54.0), (10_000, 65.0)) for k in SEEDS})
    assert archive([cheap, dear, middle], FRONTIER, REF, 2) == [cheap, dear]
    assert archive([cheap, dear, middle], FRONTIER, REF, 1) == [dear]


def test_evolve_parents_include_niche_elites_and_random_starts_come_first() -> None:
    cheap = record("r01c01", {k: curve((100, 50.0), (1000, 55.0), (10_000, 60.0)) for k in SEEDS})
    dear = record("r01c02", {k: curve((1000, 40.0), (5000, 60.0), (10_000, 75.0)) for k in SEEDS})
    g1, g2 = random_genome(random.Random(1)), random_genome(random.Random(2))
    history = (HistoryItem(cheap, render(g1)), HistoryItem(dear, render(g2)))
    prop = EvolveProposer(ProposerConfig(population=1, niches=2), FRONTIER)
    parents = prop._parents(history, REF)
    assert {pid for pid, _ in parents} == {cheap.id, dear.id}
    no_niches = EvolveProposer(ProposerConfig(population=1), FRONTIER)
    assert len(no_niches._parents(history, REF)) == 1
    starts = EvolveProposer(ProposerConfig(population=1, random_starts=2, starts=("vote", "momentum")), FRONTIER)
    first = starts.propose(ProposalRequest("r01c01", 1, 1, "", "", (), rng_seed=1))
    second = starts.propose(ProposalRequest("r01c02", 1, 2, "", "", (), rng_seed=2))
    third = starts.propose(ProposalRequest("r02c01", 2, 1, "", "", history, rng_seed=3))
    again = starts.propose(ProposalRequest("r02c01", 2, 1, "", "", history, rng_seed=3))
    assert genome_of(first.code) == start_genome()
    assert genome_of(second.code) == momentum_genome() and "'momentum'" in second.response
    assert "random start 1 of 2" in third.response and third.code == again.code
    assert genome_of(third.code) not in (start_genome(), momentum_genome())


# --------------------------------------------------------------- end to end
def test_short_frontier_discovery_on_synthetic_stores(tmp_path: Path) -> None:
    search = [save_store(tiny_store(s, questions=5, branches=12), tmp_path / f"m{s}" / "search.json") for s in (1, 2)]
    heldout = save_store(tiny_store(3, questions=5, branches=12), tmp_path / "m3" / "heldout.json")
    cfg_path = write_config(
        tmp_path / "frontier.toml",
        {"name": "frontier-e2e", "rounds": 2, "candidates_per_round": 2, "parallel": 2, "seed": 4},
        {
            "stores": {"search": search, "heldout": [heldout]},
            "evaluation": {"betas": list(BETAS), "search_runs": 2, "final_runs": 2, "seeds": ["sc", "cmc"]},
            "proposer": {"kind": "evolve", "population": 2, "niches": 3, "random_starts": 1},
            "selection": {"rule": "frontier", "robustness": "worst", "require_monotone": True},
            "sandbox": {"cpu_seconds": 20.0, "wall_seconds": 40.0, "memory_mb": 600, "final_wall_seconds": 60.0},
            "checks": {"leak_runs": 1},
        },
    )
    loop = DiscoveryLoop.start(load_config(cfg_path), run_dir=tmp_path / "run")
    outcome = loop.run()
    records = loop.run_dir.candidates()
    assert len(records) == 4 and all(r.ok for r in records), [(r.id, r.message) for r in records]
    ref = loop.reference()
    assert set(ref.stores) == {s.name for s in loop.search_stores()}
    # The selection is the eligible candidate with the largest worst-store area (ties: earlier).
    cfg = loop.config.selection
    eligible = [r for r in records if not any(f.code == "non-monotone" for f in r.findings)]
    expected = max(eligible, key=lambda r: (frontier_key(r, cfg, ref), -r.round, -r.index))
    assert outcome.selection is not None and outcome.selection.candidate == expected.id
    assert outcome.selection.rule == "frontier"
    # Frontier feedback is in every digest; later candidates are compared with a frontier that includes round 1.
    for rec in records:
        digest = loop.run_dir.digest(rec)
        assert digest.startswith("Frontier vs the best frontier so far"), digest[:200]
    # The final evaluation covers the selected program's whole β grid on every store, beside each baseline.
    final = json.loads((outcome.run_dir / "final.json").read_text())
    for store, pts in final["discovered"]["curves"].items():
        assert [p["beta"] for p in pts] == list(BETAS), store
    assert set(final["frontier"]) == {"search", "heldout"}
    assert {"sc", "cmc"} <= set(final["frontier"]["heldout"]["curves"])
    assert "cmc" in final["frontier"]["heldout"]["vs_baselines"]
    summary_md = (outcome.run_dir / "summary.md").read_text()
    assert "Whole β-curve on the heldout stores" in summary_md


def test_a_non_monotone_candidate_can_be_a_parent_but_not_the_selection() -> None:
    dip = (Finding("non-monotone", "tokens drop"),)
    best_but_dipping = record(
        "r01c01", {k: curve((100, 48.0), (1000, 66.0), (10_000, 74.0)) for k in SEEDS}, findings=dip
    )
    plain = record("r01c02", {k: curve((100, 41.0), (1000, 61.0), (10_000, 71.0)) for k in SEEDS})
    worse = record("r01c03", {k: curve((100, 40.0), (1000, 60.0), (10_000, 70.5)) for k in SEEDS})
    genomes = [random_genome(random.Random(i)) for i in range(3)]
    history = tuple(HistoryItem(r, render(g)) for r, g in zip((best_but_dipping, plain, worse), genomes, strict=True))
    strict = SelectionConfig(rule="frontier", require_monotone=True)
    assert select([h.record for h in history], strict, REF).candidate == plain.id  # type: ignore[union-attr]
    parents = EvolveProposer(ProposerConfig(population=3), strict)._parents(history, REF)
    # About 5 points of area ahead, one point of penalty: still the first parent.
    assert [pid for pid, _ in parents] == [best_but_dipping.id, plain.id, worse.id]
    close = record("r01c01", {k: curve((100, 41.2), (1000, 61.0), (10_000, 71.0)) for k in SEEDS}, findings=dip)
    history2 = (HistoryItem(close, render(genomes[0])), *history[1:])
    parents2 = EvolveProposer(ProposerConfig(population=3), strict)._parents(history2, REF)
    assert [pid for pid, _ in parents2][:2] == [plain.id, worse.id]  # ahead by less than the penalty


def test_prompt_history_shows_each_curve_against_the_best_frontier_of_its_time(tmp_path: Path) -> None:
    cfg = config_from_mapping({"stores": {"search": ["s.json"]}}, base_dir=tmp_path, source="t")
    seeds = [SeedInfo("sc", "self-consistency", "class SC:\n    pass\n", SEEDS)]
    facts = [StoreFacts("A", 30, 128, 500), StoreFacts("B", 30, 128, 500)]
    first = record(
        "r01c01", {k: tuple(CurvePoint(p.beta, p.accuracy + 3, p.tokens) for p in v) for k, v in SEEDS.items()}
    )
    second = record(
        "r02c01", {k: tuple(CurvePoint(p.beta, p.accuracy + 1, p.tokens) for p in v) for k, v in SEEDS.items()}
    )
    hist = [HistoryItem(first, "class A: pass"), HistoryItem(second, "class B: pass")]
    text = PromptBuilder(cfg, facts, reference=REF).prompt(seeds, hist, candidate_id="r03c01")
    # r01c01 was 3 points above the seeds; r02c01 is judged against a frontier that already holds r01c01.
    assert "Frontier vs the best frontier so far (accuracy points; + = above): area +3.00" in text
    assert "area -2.00" in text
    tight = replace(cfg, prompt=replace(cfg.prompt, max_chars=1000))
    short = PromptBuilder(tight, facts, reference=REF).prompt(seeds, hist, candidate_id="r03c01")
    assert "frontier area -2.00 vs best so far, above at 0/5 budgets" in short


def test_genomes_that_behave_the_same_are_recognised_as_known() -> None:
    from autotts.discovery.proposers.evolve import _key

    g = momentum_genome()
    assert _key(dict(g, keep=(2.2, 0.0))) == _key(g)  # rounds to the same number kept at every β
    assert _key(dict(g, margin=(5.0, 1.0))) == _key(g)  # the margin rule is not used by a momentum stop
    assert _key(dict(g, widen_size=(2.0, 2.0))) != _key(g)
    assert _key(dict(g, stop="margin", margin=(5.0, 1.0))) != _key(dict(g, stop="margin"))
