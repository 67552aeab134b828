"""``autotts report``: tables equal the records, statistics, discovery runs, traces, bad inputs."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from autotts.cli.main import main
from autotts.errors import ConfigError, ResultsError
from autotts.evaluation import evaluate
from autotts.evaluation.results import CellResult
from autotts.report import ReportOptions, build_report, cell_from_record
from autotts.store import load_stores, save_store
from autotts.store.synthetic import synthesize
from tests.conftest import shared_store_path


def full_record(cell: CellResult) -> dict[str, Any]:
    """The JSON record `autotts eval --json` writes for a cell (with its per-run arrays)."""
    return cell.to_dict()


@pytest.fixture(scope="module")
def small_results(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[CellResult]]:
    """Two small synthetic stores, a handful of cells with arrays, written as an eval JSON file."""
    root = tmp_path_factory.mktemp("small")
    stores = [
        # a dot in the model name, as in Qwen3-0.6B: file names must not lose it
        synthesize("small", seed=s, model="tiny-0.6B", benchmark=b)
        for s, b in ((1, "aime24"), (2, "aime25"), (3, "hmmt25"))
    ]
    for s in stores:
        save_store(s, root / "stores" / f"{s.meta.benchmark}.parquet")
    specs = ["sc:n=1", "sc:n=4", "sc:n=16", "cmc:beta=0.0", "cmc:beta=0.5", "cmc:beta=1.0", "parallel-probe:chains=8"]
    cells = evaluate(stores, specs, runs=12, backend="serial")
    path = root / "results.json"
    path.write_text(json.dumps([full_record(c) for c in cells]))
    return path, root / "stores", cells


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open() as fh:
        return list(csv.DictReader(fh))


def test_tables_equal_the_records(small_results: tuple[Path, Path, list[CellResult]], tmp_path: Path) -> None:
    path, _, cells = small_results
    rep = build_report([path], tmp_path / "r", ReportOptions(reference="sc:n=16", resamples=500))
    rows = _read_csv(tmp_path / "r" / "tables" / "main.csv")
    by_key = {(r["store"], r["method"]): r for r in rows}
    for c in cells:
        method = {"sc": f"SC@{c.params.get('n')}", "cmc": f"CMC (β={c.params.get('beta')})"}.get(
            c.controller, "Parallel-Probe@8"
        )
        row = by_key[(c.store, method)]
        assert float(row["accuracy"]) == c.accuracy and float(row["tokens"]) == c.tokens
    # held-out = mean over the aime25 and hmmt25 stores (aime24 is the default search store)
    sc16 = [c for c in cells if c.label == "sc(n=16)" and not c.store.endswith("aime24")]
    held = by_key[("held-out", "SC@16")]
    assert float(held["accuracy"]) == pytest.approx(sum(c.accuracy for c in sc16) / 2)
    md = (tmp_path / "r" / "tables" / "main.md").read_text()
    for c in cells:
        assert f"{c.accuracy:.2f}" in md and f"{c.tokens:,.0f}" in md
    # the Markdown summary shows the same table, and the HTML embeds every figure
    assert "| SC@16 |" in rep.summary.read_text()
    page = rep.index.read_text()
    assert page.count("data:image/png;base64,") == len(rep.figures)
    assert not re.search(r"(src|href)=['\"]https?://", page), "index.html must not load anything from the network"
    # one figure per store, the held-out average, the grid: distinct PNG + SVG files
    assert len(set(rep.figures.values())) == len(rep.figures) == 3 + 2
    for png in rep.figures.values():
        assert png.is_file() and png.with_suffix(".svg").is_file() and png.read_bytes()[:4] == b"\x89PNG"


def test_paired_comparisons_from_records(small_results: tuple[Path, Path, list[CellResult]], tmp_path: Path) -> None:
    path, _, cells = small_results
    opts = ReportOptions(compare=[("sc:n=16", "sc(n=16)"), ("sc:n=1", "sc:n=16")], resamples=1000)
    rep = build_report([path], tmp_path / "r", opts)
    data = json.loads((tmp_path / "r" / "report.json").read_text())
    same = [c for c in data["comparisons"] if c["a"] == "SC@16" and c["b"] == "SC@16"]
    assert len(same) == 4  # three stores and the pooled held-out pair
    for c in same:
        assert c["result"]["accuracy_diff"] == 0 and c["result"]["accuracy_p"] == 1
        assert c["result"]["accuracy_verdict"] == "not distinguishable"
    pooled = next(c for c in data["comparisons"] if c["a"] == "SC@1" and c["scope"].startswith("held-out"))
    a = [c for c in cells if c.label == "sc(n=1)" and not c.store.endswith("aime24")]
    b = [c for c in cells if c.label == "sc(n=16)" and not c.store.endswith("aime24")]
    expected = 100 * (np.mean([x.correct.mean() for x in a]) - np.mean([x.correct.mean() for x in b]))
    assert pooled["result"]["accuracy_diff"] == pytest.approx(expected)
    assert pooled["result"]["token_ratio"] < 0.2  # one branch against sixteen
    assert pooled["result"]["cost_verdict"] == "A cheaper"
    assert rep.analysis.heldout == tuple(sorted({c.store for c in cells} - {cells[0].store}))


def test_records_without_arrays_are_left_out_and_said_so(
    small_results: tuple[Path, Path, list[CellResult]], tmp_path: Path
) -> None:
    path, _, cells = small_results
    records = json.loads(path.read_text())
    for r in records[::2]:
        r.pop("per_run")  # as an older autotts wrote them
    mixed = tmp_path / "mixed.json"
    mixed.write_text(json.dumps(records))
    rep = build_report([mixed], tmp_path / "r", ReportOptions(resamples=200, reference="sc:n=16"))
    old = len(records[::2])
    assert any(f"{old} of {len(records)} records" in n and "no per-run arrays" in n for n in rep.notes)
    kept = {c.label + c.store for c in cells[1::2]}
    assert {c.label + c.store for cv in rep.analysis.curves.values() for x in cv for c in x.cells} == kept
    assert "no per-run arrays" in rep.summary.read_text() and "no per-run arrays" in rep.index.read_text()
    for r in records[1::2]:
        r.pop("per_run")
    mixed.write_text(json.dumps(records))
    with pytest.raises(ResultsError, match="nothing to report"):
        build_report([mixed], tmp_path / "r2")


def test_record_adapter_checks_arrays_against_summaries(small_results: tuple[Path, Path, list[CellResult]]) -> None:
    path, _, cells = small_results
    rec = json.loads(path.read_text())[0]
    cell = cell_from_record(rec)
    assert cell.accuracy == cells[0].accuracy and (cell.cost == cells[0].cost).all()
    assert cell.store_fingerprint == cells[0].store_fingerprint != ""
    rec["accuracy"] += 1
    with pytest.raises(ResultsError, match="do not match"):
        cell_from_record(rec)
    with pytest.raises(ResultsError, match="lacks"):
        cell_from_record({"store": "x"})
    rec.pop("per_run")
    with pytest.raises(ResultsError, match="older autotts"):
        cell_from_record(rec)


def test_traces_replay_exactly_and_refuse_another_store(
    small_results: tuple[Path, Path, list[CellResult]], tmp_path: Path
) -> None:
    path, store_dir, cells = small_results
    stores = load_stores([store_dir / "aime25.parquet"])
    opts = ReportOptions(stores=stores, trace=["parallel-probe:chains=8", "cmc:beta=0.5"], resamples=200)
    rep = build_report([path], tmp_path / "r", opts)
    assert [c.method for c in rep.traced] == ["CMC (β=0.5)", "Parallel-Probe@8"]
    assert all(c.store == stores[0].name for c in rep.traced)
    pp = next(c for c in cells if c.controller == "parallel-probe" and c.store == stores[0].name)
    meta = (tmp_path / "r" / "traces" / rep.traced[1].id / "meta.js").read_text()
    data = json.loads(meta[len("autottsMeta(") : -len(");\n")])
    assert data["cost"] == pp.cost.tolist()
    assert len(list((tmp_path / "r" / "traces" / rep.traced[1].id).glob("run-*.js"))) == pp.runs
    # A different store under the same name is not the one that was evaluated: refused by
    # its fingerprint, and by the replay itself when the record has no fingerprint.
    other = synthesize("small", seed=99, model="tiny-0.6B", benchmark="aime25")
    with pytest.raises(ResultsError, match="not the one"):
        build_report([path], tmp_path / "r2", ReportOptions(stores=[other], trace=["sc:n=4"]))
    with pytest.raises(ConfigError, match="needs --store"):
        build_report([path], tmp_path / "r4", ReportOptions(trace=["sc:n=4"]))
    with pytest.raises(ConfigError, match="names no evaluated cell"):
        build_report([path], tmp_path / "r4", ReportOptions(stores=stores, trace=["sc:n=3"]))
    records = json.loads(path.read_text())
    for r in records:
        r["store_fingerprint"] = ""
    blind = tmp_path / "blind.json"
    blind.write_text(json.dumps(records))
    with pytest.raises(ResultsError, match="not the one that was evaluated"):
        build_report([blind], tmp_path / "r3", ReportOptions(stores=[other], trace=["sc:n=4"]))


def test_traces_appear_complete_or_not_at_all(
    small_results: tuple[Path, Path, list[CellResult]], tmp_path: Path
) -> None:
    # The traces are written into a folder of their own and renamed into place: a failure
    # half-way leaves neither a partial traces/ nor the staging folder, and the staging
    # folder a killed report left behind is replaced.
    path, store_dir, _ = small_results
    good = load_stores([store_dir / "aime24.parquet"])[0]
    wrong = synthesize("small", seed=99, model="tiny-0.6B", benchmark="aime25")
    out = tmp_path / "r"
    out.mkdir()
    (out / ".traces.partial" / "c7").mkdir(parents=True)
    (out / ".traces.partial" / "c7" / "run-0.js").write_text("half a file")
    opts = ReportOptions(stores=[good, wrong], trace=["sc:n=4"], resamples=200)
    with pytest.raises(ResultsError, match="not the one"):  # aime24 is written, then aime25 is refused
        build_report([path], out, opts)
    assert not (out / "traces").exists() and not (out / ".traces.partial").exists()
    (out / ".traces.partial").mkdir()
    (out / ".traces.partial" / "s9.js").write_text("stale")
    rep = build_report([path], out, ReportOptions(stores=[good], trace=["sc:n=4"], resamples=200))
    assert not (out / ".traces.partial").exists()
    assert sorted(p.name for p in (out / "traces").iterdir()) == ["c0", "s0.js"]
    assert rep.traced[0].store == good.name
    assert len(list((out / "traces" / "c0").glob("run-*.js"))) == rep.traced[0].runs


def test_discovery_run_directory(tmp_path: Path) -> None:
    from autotts.demo import discovery_step

    stores = {
        role: save_store(
            synthesize("small", seed=s, model="synthetic-small", benchmark=role), tmp_path / f"{role}.parquet"
        )
        for s, role in ((5, "search"), (6, "heldout"))
    }
    step = discovery_step(stores["search"], stores["heldout"], tmp_path, seed=1, quick=True, final_runs=5)
    assert step.status == "done", step.detail
    run_dir = tmp_path / "discovery"
    rep = build_report([run_dir], tmp_path / "r", ReportOptions(resamples=200))
    (t,) = rep.trajectories
    summary = json.loads((run_dir / "summary.json").read_text())
    assert [c.id for c in t.candidates] == [c["id"] for c in summary["candidates"]]
    assert [c.status for c in t.candidates] == [c["status"] for c in summary["candidates"]]
    assert t.selected == summary["selection"]["candidate"]
    assert t.selected_search == pytest.approx(summary["selection"]["search_accuracy"])
    final = json.loads((run_dir / "final.json").read_text())
    held = final["discovered"]["curves"]["synthetic-small/heldout"]
    assert t.selected_heldout == next(p["accuracy"] for p in held if p["beta"] == t.selected_beta)
    assert t.search_stores == ("synthetic-small/search",)
    assert f"discovery-{t.name}" in rep.figures and f"discovery-final-{t.name}" in rep.figures
    # the final evaluation's curves are the points of final.json, discovered program first
    for store, curves in t.final_curves.items():
        assert curves[0].family == "discovered"
        assert [p.accuracy for p in curves[0].points] == [p["accuracy"] for p in final["discovered"]["curves"][store]]
    assert len(t.rounds) == len({c.round for c in t.candidates})
    diffs = list((tmp_path / "r" / "discovery").rglob("*.diff"))
    assert len(diffs) == sum(1 for c in t.candidates if c.diff)
    later = [c for c in t.candidates if c.predecessor]
    for c in later:
        assert c.diff.startswith(f"--- {c.predecessor}/controller.py")
    page = rep.index.read_text()
    assert "Discovery" in page and t.selected in page


@pytest.mark.shared_data
@pytest.mark.integration
def test_report_on_shared_store_results(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paths = [shared_store_path("Qwen3-8B", b) for b in ("aime24", "aime25", "hmmt25")]
    results = tmp_path / "results.json"
    args = ["eval", *[x for p in paths for x in ("--store", str(p))], "--json", str(results), "--backend", "serial"]
    for spec in ("sc:n=64", "sc:n=8", "asc:max_samples=64", "cmc:beta=0.5", "cmc:beta=1.0"):
        args += ["--controller", spec]
    assert main(args) == 0, capsys.readouterr().err
    code = main(["report", str(results), "--out", str(tmp_path / "r"), "--store", str(paths[1]), "--resamples", "500"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    records = json.loads(results.read_text())
    rows = {(r["store"], r["method"]): r for r in _read_csv(tmp_path / "r" / "tables" / "main.csv")}
    labels = {"sc(n=64)": "SC@64", "sc(n=8)": "SC@8", "cmc(beta=0.5)": "CMC (β=0.5)", "cmc(beta=1.0)": "CMC (β=1.0)"}
    for rec in records:
        label = rec["controller"] + "(" + ",".join(f"{k}={v}" for k, v in rec["params"].items()) + ")"
        method = labels.get(label, "ASC@64")
        row = rows[(rec["store"], method)]
        assert float(row["accuracy"]) == rec["accuracy"] and float(row["tokens"]) == rec["tokens"]
    data = json.loads((tmp_path / "r" / "report.json").read_text())
    assert data["heldout_stores"] == ["Qwen3-8B/aime25", "Qwen3-8B/hmmt25"]
    assert (tmp_path / "r" / "viewer.html").is_file() and "trace viewer" in captured.out


def test_bad_inputs_are_clear_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main(["report", str(bad), "--out", str(tmp_path / "o")]) == 1
    assert main(["report", str(tmp_path / "missing.json"), "--out", str(tmp_path / "o")]) == 2
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"hello": 1}))
    assert main(["report", str(other), "--out", str(tmp_path / "o")]) == 1
    assert main(["report", str(tmp_path), "--out", str(tmp_path / "o"), "--compare", "a b"]) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    assert "not valid JSON" in captured.err and "does not exist" in captured.err
    assert "'A vs B'" in captured.err


def test_trace_codes_are_the_same_from_kernels_and_python() -> None:
    # The viewer's encoding reads kernel traces from their compact codes and Python
    # traces from their events: both must give the same actions, episode by episode.
    from autotts.controllers.spec import ControllerSpec
    from autotts.evaluation.runner import run_cell
    from autotts.report.traces import _run_codes

    store = synthesize("small", seed=21, model="tiny", benchmark="b")
    spec = ControllerSpec.parse("parallel-probe:chains=4")
    fast = run_cell(store, spec, runs=3, record=True, fast=True)
    slow = run_cell(store, spec, runs=3, record=True, fast=False)
    assert hasattr(fast.traces, "cell_events") and isinstance(slow.traces, tuple)
    nq = len(store)
    for run in range(3):
        codes, _, count = _run_codes(fast.traces, run * nq, nq)
        slow_codes, _, slow_count = _run_codes(slow.traces, run * nq, nq)
        assert codes == slow_codes and count == slow_count
        episodes = json.loads(codes)
        assert len(episodes) == nq and all(episodes)  # every episode acted
        assert count == sum(map(len, episodes))
