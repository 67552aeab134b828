"""What the explorer is shown (prompt, templates, digests, size budget), selection and the run directory."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from autotts.discovery.config import SelectionConfig, config_from_mapping
from autotts.discovery.digest import build_digest
from autotts.discovery.errors import RunDirError
from autotts.discovery.evaluate import Episode, EvalContext, evaluate_candidate
from autotts.discovery.history import RunDir
from autotts.discovery.prompt import PromptBuilder, SeedInfo, StoreFacts
from autotts.discovery.proposers import HistoryItem
from autotts.discovery.records import CandidateRecord, CurvePoint, Finding, Status, Usage
from autotts.discovery.sandbox import SandboxLimits
from autotts.discovery.selection import ranked, select
from autotts.evaluation.protocols import Protocol
from tests.discovery_support import GOOD, make_store


def config(tmp_path: Path, **tables: dict[str, object]):  # type: ignore[no-untyped-def]
    data: dict[str, object] = {"stores": {"search": ["s.json"]}, **tables}
    return config_from_mapping(data, base_dir=tmp_path, source="t")


def record(cid: str, status: Status = Status.OK, points: tuple[tuple[float, float, float], ...] = (), **kw: object):  # type: ignore[no-untyped-def]
    curve = tuple(CurvePoint(b, a, t) for b, a, t in points)
    return CandidateRecord(
        cid,
        int(cid[1:3]),
        int(cid[4:6]),
        status,
        curves={"m/b": curve},
        search_curve=curve,
        **kw,  # type: ignore[arg-type]
    )


FACTS = [StoreFacts("m/b", 30, 128, 500)]
SEEDS = [SeedInfo("sc", "self-consistency", "class SC:\n    pass\n", {"m/b": (CurvePoint(None, 80.0, 880000.0),)})]


# --------------------------------------------------------------------- prompt
def test_prompt_sections(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    b = PromptBuilder(cfg, FACTS)
    hist = [
        HistoryItem(
            record(
                "r01c01",
                points=((0.0, 70.0, 1000.0), (1.0, 80.0, 5000.0)),
                findings=(Finding("non-monotone", "m/b: falls"),),
            ),
            GOOD,
            "m/b at β=1, run 0: 24/30 right",
        ),
        HistoryItem(record("r01c02", Status.INVALID, message="line 3: syntax error: expected ':'"), "class X(:"),
    ]
    text = b.prompt(SEEDS, hist, candidate_id="r02c01")
    for needle in (
        "session.open()",  # the API
        "charges exactly Δ tokens",  # the cost semantics
        "schedule(beta)",  # the rules
        "m/b: 30 questions, 128 branches each, Δ = 500 tokens",
        "## Seed `sc` — self-consistency",
        "80.0% 880,000 tok",
        "## Candidate r01c01 — status: ok",
        "β=0 70.0% 1,000 tok | β=1 80.0% 5,000 tok",
        "Finding [non-monotone]",
        "Trace digest:\nm/b at β=1",
        "## Candidate r01c02 — status: invalid",
        "syntax error: expected ':'",
        "You are writing candidate r02c01",
    ):
        assert needle in text, needle
    assert "Open a few branches, advance them" in text  # the candidate's code is shown
    no_beta_cfg = config(tmp_path, ablation={"require_beta": False})
    no_beta = PromptBuilder(no_beta_cfg, FACTS).prompt(SEEDS, [], candidate_id="x")
    assert "built with no arguments" in no_beta and "(none yet" in no_beta


def test_traces_ablation_drops_digests(tmp_path: Path) -> None:
    hist = [HistoryItem(record("r01c01", points=((1.0, 80.0, 10.0),)), GOOD, "DIGEST-TEXT")]
    on = PromptBuilder(config(tmp_path), FACTS).prompt(SEEDS, hist, candidate_id="r02c01")
    off = PromptBuilder(config(tmp_path, ablation={"traces": False}), FACTS).prompt(SEEDS, hist, candidate_id="r02c01")
    assert "DIGEST-TEXT" in on and "DIGEST-TEXT" not in off


def test_size_budget_shortens_weak_old_entries_first(tmp_path: Path) -> None:
    cfg = config(tmp_path, prompt={"max_chars": 14000})
    b = PromptBuilder(cfg, FACTS)
    hist = [
        HistoryItem(record(f"r01c{i:02d}", points=((1.0, 50.0 + i, 1000.0),)), GOOD + f"# padding {i}\n" + "#" * 1500)
        for i in range(1, 9)
    ]
    text = b.prompt(SEEDS, hist, candidate_id="r02c01")
    assert len(text) <= 14000 + 2000  # the fixed sections are never cut
    # The best (r01c08, r01c07, r01c06) and latest stay whole; the weakest becomes one line.
    assert "## Candidate r01c08 — status: ok" in text
    assert "## Candidate r01c01" not in text and "- r01c01: ok, best 51.0%" in text


def test_user_templates_override_packaged_ones(tmp_path: Path) -> None:
    tdir = tmp_path / "tpl"
    tdir.mkdir()
    (tdir / "instructions.txt").write_text("CUSTOM INSTRUCTIONS for $candidate_id\n")
    cfg = config(tmp_path, prompt={"template_dir": "tpl"})
    text = PromptBuilder(cfg, FACTS).prompt(SEEDS, [], candidate_id="r01c01")
    assert "CUSTOM INSTRUCTIONS for r01c01" in text
    assert "session.open()" in text  # the other templates are still the packaged ones


def test_agent_workspace_files(tmp_path: Path) -> None:
    b = PromptBuilder(config(tmp_path), FACTS)
    hist = [HistoryItem(record("r01c01", points=((1.0, 80.0, 10.0),)), GOOD, "digest")]
    files = b.workspace(SEEDS, hist, candidate_id="r02c01", starting_code=GOOD)
    assert files["controller.py"] == GOOD
    assert "edit controller.py in place" in files["TASK.md"]
    assert files["seeds/sc.py"].startswith("class SC")
    assert json.loads(files["history/r01c01/result.json"])["status"] == "ok"
    assert files["history/r01c01/digest.txt"] == "digest"


# -------------------------------------------------------------------- digests
def test_digest_reports_per_question_behaviour_and_worst_failures() -> None:
    store = make_store(n_questions=4)
    ctx = EvalContext([store], [0.0, 1.0], 2, Protocol(), SandboxLimits(5, 5, 400), leak=False, smoke=False)
    ev = evaluate_candidate(GOOD, ctx)
    text = build_digest(ev.episodes, beta=1.0, max_chars=6000, worst_failures=1, failure_actions=8)
    assert text.startswith(f"{store.name} at β=1, run 0:")
    assert text.count("\n  q") >= len(store)
    assert "opened" in text and "tokens" in text
    text0 = build_digest(ev.episodes, beta=0.0, max_chars=6000, worst_failures=1, failure_actions=8)
    assert any(not e.correct for e in ev.episodes if e.beta == 0.0)
    assert "Worst failures, action by action" in text0 and "=> answered" in text0
    assert "WRONG" in text0
    assert "gold" not in text.lower() + text0.lower()  # right/wrong only, never the correct answer as such
    # Short of space, the right questions are summarized and the failures kept.
    full0 = build_digest(ev.episodes, beta=0.0, max_chars=100_000, worst_failures=1, failure_actions=8)
    compact = build_digest(ev.episodes, beta=0.0, max_chars=len(full0) - 1, worst_failures=1, failure_actions=8)
    assert "answered right are not listed" in compact and "Worst failures" in compact
    listed = [line for line in compact.splitlines() if line.startswith("  q")]
    assert listed and all("WRONG" in line for line in listed)
    short = build_digest(ev.episodes, beta=0.0, max_chars=200)
    assert len(short) <= 200 and short.endswith("digest truncated to its size budget")


def test_digest_stop_reasons() -> None:
    base = Episode("s", 1.0, 0, 0, "7", True, 100, (), ((2, True, False), (1, False, False)), 8, 3)
    assert "1 branch still alive" in build_digest([base], beta=1.0, max_chars=1000)
    none = replace(base, answer=None, correct=False)
    assert "returned no answer" in build_digest([none], beta=1.0, max_chars=1000)
    used = replace(base, branches=((1, True, False),) * 8)
    assert "using every branch" in build_digest([used], beta=1.0, max_chars=1000)


# ------------------------------------------------------------------ selection
def test_selection_rules() -> None:
    a = record("r01c01", points=((0.0, 70.0, 1000.0), (1.0, 82.0, 9000.0)))
    b = record("r01c02", points=((0.5, 82.0, 5000.0),))
    c = record("r02c01", Status.LEAKED, points=((1.0, 99.0, 10.0),))
    d = record("r02c02", points=((1.0, 90.0, 20000.0),), findings=(Finding("non-monotone", "x"),))
    paper = select([a, b, c, d], SelectionConfig())
    assert paper is not None and (paper.candidate, paper.beta) == ("r02c02", 1.0)
    mono = select([a, b, c, d], SelectionConfig(require_monotone=True))
    assert mono is not None and (mono.candidate, mono.beta) == ("r01c02", 0.5)  # tie at 82 %: fewer tokens wins
    cheap = select([a, b, d], SelectionConfig(rule="objective", gamma=0.003))
    assert cheap is not None and (cheap.candidate, cheap.beta) == ("r01c01", 0.0)
    assert select([c], SelectionConfig()) is None
    assert [r.id for r in ranked([a, b, c, d], SelectionConfig())] == ["r02c02", "r01c02", "r01c01"]


# -------------------------------------------------------------------- history
def test_run_directory_round_trip_and_markers(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    run = RunDir.create(tmp_path / "run", cfg, "# original\n")
    with pytest.raises(RunDirError, match="--resume"):
        RunDir.create(tmp_path / "run", cfg)
    assert RunDir.open(tmp_path / "run").config() == cfg
    assert run.proposal(1, 1) is None
    run.write_prompt(1, 1, "prompt")
    assert run.proposal(1, 1) is None  # a prompt alone is not a proposal
    run.write_proposal(1, 1, response="resp", code=GOOD, usage=Usage(calls=1, money=0.25))
    p = run.proposal(1, 1)
    assert p is not None and p.code == GOOD and p.usage.money == 0.25
    rec = record("r01c01", points=((1.0, 80.0, 10.0),), usage=Usage(calls=1, money=0.25))
    run.write_candidate(rec, digest="d")
    assert run.candidate(1, 1) == rec
    assert run.candidates() == [rec] and run.digest(rec) == "d" and run.code(rec) == GOOD
    assert run.usage_total().money == 0.25
    (run.slot(1, 1) / ".candidate.json.abc.tmp").write_text("half")
    assert run.cleanup_tmp() == 1
    run.add_phase_seconds("search", 1.5)
    run.add_phase_seconds("search", 2.0)
    assert run.manifest()["phase_seconds"]["search"] == 3.5
    with pytest.raises(RunDirError, match="not a discovery run"):
        RunDir.open(tmp_path)
