"""``autotts store import|info|validate`` end to end, and the statistics and findings they show."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from autotts.store import (
    ERR,
    Branch,
    Question,
    ReplayStore,
    Severity,
    StoreMeta,
    read_autotts_json,
    read_parquet,
    store_stats,
    validate_store,
)
from tests.conftest import SHARED_DATA, shared_store_path
from tests.test_store_malformed import files_under, run_cli, valid_doc, write_doc

# ------------------------------------------------------------------------ statistics


def test_stats_of_a_hand_computed_store() -> None:
    store = ReplayStore(
        StoreMeta("m", "b"),
        (
            Question(
                "0",
                "q0",
                "2",
                500,
                (
                    Branch((ERR, "2"), 1000, "2"),
                    Branch(("3",), 400, "3"),
                    Branch((ERR, ERR, "3", "3"), 2000, "3"),
                    Branch((), 100, "2"),
                ),
            ),
            Question("1", "q1", "5", 500, (Branch(("5",), 600, ERR), Branch(("4", "4"), 900, "4"))),
        ),
    )
    s = store_stats(store)
    assert (s.questions, s.branches, s.branches_min, s.branches_max, s.deltas) == (2, 6, 2, 4, (500,))
    # depths 2,1,4,0,1,2 ; tokens 1000,400,2000,100,600,900
    assert s.depth_mean == pytest.approx(10 / 6)
    assert (s.depth_median, s.depth_max) == (1.5, 4)
    assert s.tokens_mean == pytest.approx(5000 / 6)
    assert (s.tokens_median, s.tokens_max) == (750.0, 2000)
    assert s.tokens_per_question == pytest.approx((3500 + 1500) / 2)
    assert s.err_rate_probes == pytest.approx(3 / 10)
    assert s.err_rate_finals == pytest.approx(1 / 6)
    # q0: 2 of 4 branches right; q1: none.
    assert s.pass_at_1 == pytest.approx((0.5 + 0.0) / 2)
    # q0 ties 2-2 between "2" (seen first) and "3": first seen wins, so the vote is right.
    assert s.majority_at_n == pytest.approx(0.5)
    assert s.pass_at_n == pytest.approx(0.5)
    assert (s.distinct_answers_mean, s.distinct_answers_max) == (2.0, 2)
    assert json.loads(json.dumps(s.to_dict()))["deltas"] == [500]


def test_majority_tie_goes_to_the_first_seen_answer() -> None:
    def one(finals: list[str]) -> ReplayStore:
        return ReplayStore(StoreMeta("m", "b"), (Question("0", "", "a", 1, tuple(Branch((), 1, f) for f in finals)),))

    assert store_stats(one(["a", "b", "b", "a"])).majority_at_n == 1.0
    assert store_stats(one(["b", "a", "a", "b"])).majority_at_n == 0.0


# -------------------------------------------------------------------------- findings


def _store(*questions: Question) -> ReplayStore:
    return ReplayStore(StoreMeta("m", "b"), questions)


def _codes(store: ReplayStore) -> dict[str, Any]:
    return {f.code: f for f in validate_store(store)}


def test_a_clean_store_has_no_findings() -> None:
    q = Question("0", "t", "1", 500, (Branch(("1",), 700, "1"), Branch(("1", "1"), 1000, "2")))
    assert validate_store(_store(q)) == []


def test_warnings_for_suspicious_but_legal_data() -> None:
    found = _codes(
        _store(
            Question("0", "same", "1", 500, (Branch(("1", "1", "1"), 700, "1"),)),  # 3 probes > ceil(700/500)
            Question("1", "same", "9", 250, (Branch((), 0, "1"), Branch(("9",), 300, "2"))),
            Question("2", "other", ERR, 500, (Branch((), 10, ERR),)),
        )
    )
    assert set(found) == {
        "probes-exceed-length",
        "delta-mixed",
        "branches-mixed",
        "duplicate-text",
        "zero-tokens",
        "gold-suspicious",
        "gold-unreached",
        "all-err",
    }
    assert all(f.severity is Severity.WARNING for f in found.values())
    assert (found["probes-exceed-length"].question, found["probes-exceed-length"].branch) == (0, 0)
    assert (found["zero-tokens"].question, found["zero-tokens"].branch) == (1, 0)
    assert found["duplicate-text"].question == 1
    assert "1 of 3 questions (1)" in found["gold-unreached"].message
    assert "among the probes of questions 1" in found["gold-unreached"].message


def test_errors_for_stores_built_wrongly_in_code() -> None:
    found = validate_store(
        _store(
            Question("a", "t", "1", 0, ()),
            Question("a", "t2", "1", 500, (Branch(("1",), -3, "1"),)),
        )
    )
    assert {(f.code, f.question, f.branch, f.field) for f in found} == {
        ("bad-delta", 0, None, "delta"),
        ("no-branches", 0, None, "branches"),
        ("negative-tokens", 1, 0, "tokens"),
        ("duplicate-id", 1, None, "id"),
    }
    assert all(f.is_error for f in found)
    assert "question 1, branch 0, field 'tokens'" in str(next(f for f in found if f.code == "negative-tokens"))


# ------------------------------------------------------------------------------- CLI


def test_import_info_validate_on_a_small_tree(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_doc(tmp_path / "src" / "ModelA" / "bench1.json", valid_doc())
    write_doc(tmp_path / "src" / "deeper" / "ModelB" / "bench2.json", valid_doc())
    out_dir = tmp_path / "out"
    code, out, err = run_cli(["store", "import", str(tmp_path / "src"), "--out", str(out_dir)], capsys)
    assert (code, err) == (0, "")
    assert files_under(out_dir) == [out_dir / "ModelA" / "bench1.parquet", out_dir / "ModelB" / "bench2.parquet"]
    assert len(out.splitlines()) == 2
    assert "ModelA/bench1: 3 questions, 10 branches" in out
    assert read_parquet(out_dir / "ModelB" / "bench2.parquet").name == "ModelB/bench2"

    code, out, _ = run_cli(["store", "info", str(out_dir)], capsys)
    assert code == 0
    assert "ModelA/bench1" in out and "ModelB/bench2" in out

    code, out, _ = run_cli(["store", "info", str(out_dir / "ModelA" / "bench1.parquet")], capsys)
    assert code == 0
    assert "majority@3–4 (%)" in out and "pass@1 (%)" in out

    code, out, _ = run_cli(["store", "info", "--json", str(out_dir)], capsys)
    records = json.loads(out)
    assert [r["store"] for r in records] == ["ModelA/bench1", "ModelB/bench2"]
    assert records[0]["questions"] == 3 and records[0]["path"].endswith("bench1.parquet")

    code, out, _ = run_cli(["store", "validate", str(out_dir)], capsys)
    assert code == 0
    assert "2 store(s) valid" in out


def test_import_overrides_names_and_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = write_doc(tmp_path / "x.json", valid_doc())
    out_dir = tmp_path / "out"
    args = ["store", "import", str(src), "--out", str(out_dir), "-m", "org/model", "-b", "b1", "--format", "json"]
    code, _, _ = run_cli(args, capsys)
    assert code == 0
    target = out_dir / "org--model" / "b1.json"
    assert files_under(out_dir) == [target]
    assert json.loads(target.read_text(encoding="utf-8")) == valid_doc()


def test_import_refuses_two_sources_for_one_target(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = write_doc(tmp_path / "a" / "M" / "b.json", valid_doc())
    b = write_doc(tmp_path / "b" / "M" / "b.json", valid_doc())
    code, _, err = run_cli(["store", "import", str(a), str(b), "--out", str(tmp_path / "out")], capsys)
    assert code == 2
    assert "would both be written" in err
    assert files_under(tmp_path / "out") == []


@pytest.mark.parametrize("args", [["store", "import", "--out", "o"], ["store", "info"], ["store", "validate"]])
def test_missing_arguments_are_usage_errors(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(args, capsys)
    assert code == 2
    assert "Missing argument" in err


def test_validate_reports_every_file_and_exits_1_on_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = write_doc(tmp_path / "M" / "a.json", valid_doc())
    bad_doc = valid_doc()
    bad_doc[1]["final_answers_trace"][3] = "4"
    write_doc(tmp_path / "M" / "b.json", bad_doc)
    write_doc(tmp_path / "M" / "c.json", valid_doc())
    code, out, err = run_cli(["store", "validate", str(tmp_path)], capsys)
    assert code == 1
    assert "Traceback" not in err
    assert "1 of 3 store(s) have errors" in err
    assert f"✓ {good}" in out
    assert "question 1, branch 3, field 'final_answers_trace'" in out
    assert out.count("✓") == 2


def test_validate_passes_with_warnings_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = valid_doc()
    doc[2]["gold_answer"] = "13"
    write_doc(tmp_path / "M" / "a.json", doc)
    code, out, _ = run_cli(["store", "validate", str(tmp_path)], capsys)
    assert code == 0
    assert "warning [gold-unreached]" in out


# ------------------------------------------------------------------------ shared data


def _reference_stats(path: Path) -> dict[str, float]:
    """pass@1, majority@N and ERR rate computed straight from the published JSON, independently."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    pass1 = []
    maj = 0
    probes = errs = 0
    for q in doc:
        finals = [b[2] for b in q["each_branch"]]
        pass1.append(sum(f == q["gold_answer"] for f in finals) / len(finals))
        counts: dict[str, int] = {}
        for f in finals:
            counts[f] = counts.get(f, 0) + 1
        top = max(counts.values())
        maj += next(f for f in finals if counts[f] == top) == q["gold_answer"]
        for b in q["each_branch"]:
            probes += len(b[0])
            errs += b[0].count("ERR")
    return {"pass_at_1": sum(pass1) / len(doc), "majority_at_n": maj / len(doc), "err_rate_probes": errs / probes}


@pytest.mark.shared_data
@pytest.mark.integration
def test_import_info_validate_all_shared_stores(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reference = shared_store_path("Qwen3-4B", "aime24")
    sources = sorted(SHARED_DATA.rglob("*.json"))
    assert len(sources) == 12
    out_dir = tmp_path / "stores"
    code, out, err = run_cli(["store", "import", str(SHARED_DATA), "--out", str(out_dir)], capsys)
    assert code == 0, err
    written = files_under(out_dir)
    assert written == sorted(out_dir / p.parent.name / f"{p.stem}.parquet" for p in sources)
    assert len(out.splitlines()) == 12

    code, out, _ = run_cli(["store", "info", "--json", str(out_dir)], capsys)
    assert code == 0
    records = {r["store"]: r for r in json.loads(out)}
    assert len(records) == 12
    assert all(r["questions"] == 30 and r["branches_min"] == r["branches_max"] == 128 for r in records.values())
    got = records["Qwen3-4B/aime24"]
    for key, value in _reference_stats(reference).items():
        assert got[key] == pytest.approx(value), key

    code, out, _ = run_cli(["store", "info", str(out_dir)], capsys)
    assert code == 0
    assert all(name in out for name in records)

    code, out, err = run_cli(["store", "validate", str(out_dir)], capsys)
    assert code == 0, out + err
    assert "12 store(s) valid" in out

    # The native files hold exactly what the published JSON holds.
    assert read_parquet(out_dir / "Qwen3-4B" / "aime24.parquet").questions == read_autotts_json(reference).questions


def test_progress_bar_goes_to_stderr_terminal_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    from rich.console import Console

    from autotts.cli import store_cmd

    terminal = io.StringIO()
    monkeypatch.setattr(store_cmd, "err", Console(file=terminal, force_terminal=True, width=100))
    write_doc(tmp_path / "src" / "M" / "a.json", valid_doc())
    write_doc(tmp_path / "src" / "M" / "b.json", valid_doc())
    code, out, _ = run_cli(["store", "import", str(tmp_path / "src"), "--out", str(tmp_path / "out")], capsys)
    assert code == 0
    assert "importing" in terminal.getvalue()
    assert "importing" not in out
    assert len(out.splitlines()) == 2
