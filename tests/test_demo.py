"""``autotts demo``: end to end in quick mode, deterministic output, skipped baselines, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autotts.cli.main import main
from autotts.demo import DEMO_BASELINES, QUICK_RUNS, demo_specs, demo_stores, run_demo
from autotts.errors import ConfigError
from autotts.store import load_store


@pytest.mark.slow  # three quick demos, each with a sandboxed discovery run (~9 s in all on 2 cores)
@pytest.mark.integration
def test_quick_demo_writes_everything_and_is_deterministic(tmp_path: Path) -> None:
    events: list[tuple[str, int, int]] = []
    a = run_demo(tmp_path / "a", seed=3, quick=True, backend="serial", progress=lambda *e: events.append(e))
    b = run_demo(tmp_path / "b", seed=3, quick=True, backend="serial")
    assert a.results_path.read_bytes() == b.results_path.read_bytes()
    assert a.summary_path.read_bytes() == b.summary_path.read_bytes()

    data = json.loads(a.results_path.read_text())
    assert data["demo"] == {"seed": 3, "quick": True, "runs": QUICK_RUNS, "profile": "large"}
    specs, skipped = demo_specs()
    assert data["skipped"] == skipped
    assert len(data["results"]) == 2 * len(specs)
    assert {r["role"] for r in data["results"]} == {"search", "heldout"}
    assert all(r["runs"] == QUICK_RUNS and "seconds" not in r for r in data["results"])
    steps = {s["name"]: s for s in data["steps"]}
    assert steps["report"]["status"] == "done", steps["report"]["detail"]
    assert (a.out_dir / "report" / "index.html").is_file() and (a.out_dir / "report" / "viewer.html").is_file()
    discovery = steps["discovery"]
    assert discovery["status"] == "done", discovery["detail"]
    assert discovery["data"]["proposer"] == "evolve"
    assert len(discovery["data"]["candidates"]) == discovery["data"]["rounds"]
    roles = {(r["controller"], r["role"]) for r in discovery["data"]["final"]["rows"]}
    assert {("discovered", "search"), ("discovered", "heldout")} <= roles
    assert (a.out_dir / "discovery" / "discovered_controller.py").is_file()

    # The stores on disk are the ones evaluated, and the held-out one is a different store.
    search = load_store(a.stores["search"])
    heldout = load_store(a.stores["heldout"])
    expected = demo_stores(3)
    assert search.questions == expected["search"].questions
    assert heldout.questions == expected["heldout"].questions
    assert search.questions != heldout.questions
    assert data["stores"]["search"]["seed"] == 6 and data["stores"]["heldout"]["seed"] == 7

    summary = a.summary_path.read_text()
    assert "autotts store import" in summary and "autotts discover" in summary
    assert "## Discovery" in summary and "| discovered |" in summary
    assert events and events[-1][1] == events[-1][2]  # progress reached the end
    assert any("discovery round" in what for what, _, _ in events)

    # Running again into the same directory replaces the demo's own discovery run.
    again = run_demo(tmp_path / "a", seed=3, quick=True, backend="serial")
    assert again.results_path.read_bytes() == b.results_path.read_bytes()


def test_demo_stores_depend_on_the_seed() -> None:
    a, b = demo_stores(0), demo_stores(1)
    assert a["search"].questions != b["search"].questions
    assert a["heldout"].questions != b["heldout"].questions
    assert a["search"].name == "synthetic-large/demo-search" and a["heldout"].name == "synthetic-large/demo-heldout"


def test_demo_specs_skip_unregistered_names() -> None:
    specs, skipped = demo_specs(["sc", "cmc"])
    assert skipped == ["asc", "esc", "parallel-probe"]
    assert all(s.startswith(("sc:", "cmc:")) for s in specs)
    every = [name for name, _ in DEMO_BASELINES]
    assert demo_specs(every)[1] == []


def test_demo_refuses_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="seed"):
        run_demo(tmp_path / "x", seed=-1, quick=True)
    target = tmp_path / "file"
    target.write_text("not a directory")
    with pytest.raises(ConfigError, match="not a directory"):
        run_demo(target, quick=True)
    # A discovery directory the demo did not make is never deleted.
    foreign = tmp_path / "mine" / "discovery"
    foreign.mkdir(parents=True)
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="not a demo discovery run"):
        run_demo(tmp_path / "mine", quick=True)
    assert (foreign / "notes.txt").read_text() == "keep me"
    assert not (tmp_path / "mine" / "stores").exists()


@pytest.mark.integration
def test_cli_demo_quick(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    # A relative --out, as a user types it (the default is relative too).
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    code = main(["demo", "--quick", "--out", "demo", "--seed", "2", "--workers", "1"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "discovery: done" in captured.out
    assert (tmp_path / "demo" / "results.json").is_file()
    assert (tmp_path / "demo" / "summary.md").is_file()
    expected = ("What it did", "Where to look", "autotts store import", "eval --preset paper-main", "discovered")
    for text in expected:
        assert text in captured.out
    assert "done in" in captured.err
    # The printed command to evaluate the discovered program works from where the user stands,
    # and the one in summary.md from the directory holding it.
    printed = next(line for line in captured.out.splitlines() if "the discovered program:" in line)
    command = printed.split("the discovered program:", 1)[1].split()
    assert command[:2] == ["autotts", "eval"]
    assert main([*command[1:], "--runs", "2", "--backend", "serial"]) == 0, capsys.readouterr().err
    assert "EvolvedController" in capsys.readouterr().out
    summary = (tmp_path / "demo" / "summary.md").read_text()
    in_summary = summary.split("from the directory holding this summary run `", 1)[1].split("`", 1)[0].split()
    monkeypatch.chdir(tmp_path / "demo")
    assert main([*in_summary[1:], "--runs", "2", "--backend", "serial"]) == 0, capsys.readouterr().err


def test_cli_demo_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["demo", "--quick", "--seed", "-1", "--out", str(tmp_path / "d")]) == 2
    assert main(["demo", "--quick", "--workers", "0", "--out", str(tmp_path / "d")]) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    assert not (tmp_path / "d").exists()
