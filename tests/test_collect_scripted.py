"""`autotts collect` against the scripted completions server: every cell checked, both modes, crash + resume."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from autotts.cli.main import main
from autotts.collect.answers import normalize_gold
from autotts.collect.config import CollectConfig, config_from_mapping
from autotts.collect.runner import collect
from autotts.errors import ConfigError
from autotts.llm import LLMRequestError, LLMUnavailableError
from autotts.store import load_store, validate_store
from autotts.testing import ScriptedCompletionsServer, make_script

SCRIPT = make_script(3, 4, seed=3, min_chars=40, max_chars=150)
DELTA = 16
CAP = 120
PROBE_TOKENS = 12


def write_bench(path: Path) -> Path:
    with path.open("w") as fh:
        for q in SCRIPT:
            fh.write(json.dumps({"id": q.id, "problem": q.text, "solution": q.gold}) + "\n")
    return path


def config_dict(tmp: Path, url: str, **collect: Any) -> dict[str, Any]:
    return {
        "benchmark": {"path": str(write_bench(tmp / "bench.jsonl")), "question": "problem", "answer": "solution"},
        "server": {
            "base_urls": [url],
            "model": "scripted",
            "max_in_flight": 4,
            "max_retries": 2,
            "backoff_seconds": 0.01,
            "max_backoff_seconds": 0.05,
        },
        "collect": {"branches": 4, "delta": DELTA, "max_tokens": CAP, "out": str(tmp / "s.parquet"), **collect},
        "probe": {"max_tokens": PROBE_TOKENS},
        "sampling": {"temperature": 1.0, "seed": 0},
    }


def make_config(tmp: Path, url: str, **collect: Any) -> CollectConfig:
    return config_from_mapping(config_dict(tmp, url, **collect), base_dir=tmp)


def toml(d: dict[str, Any]) -> str:
    lines = []
    for section, values in d.items():
        lines.append(f"[{section}]")
        for k, v in values.items():
            lines.append(f"{k} = {json.dumps(v)}")
    return "\n".join(lines) + "\n"


def assert_matches_script(path: Path) -> None:
    store = load_store(path)
    assert not [f for f in validate_store(store) if f.is_error]
    assert len(store.questions) == len(SCRIPT)
    for q, sq in zip(store.questions, SCRIPT, strict=True):
        assert (q.id, q.text, q.gold, q.delta) == (sq.id, sq.text, normalize_gold(sq.gold), DELTA)
        for b, branch in enumerate(q.branches):
            assert branch == sq.expected_branch(b, DELTA, CAP, PROBE_TOKENS), (q.id, b)


@pytest.mark.parametrize(("mode", "accept_ids"), [("interval", True), ("interval", False), ("full", True)])
def test_store_matches_the_script_cell_by_cell(tmp_path: Path, mode: str, accept_ids: bool) -> None:
    with ScriptedCompletionsServer(SCRIPT, accept_token_ids=accept_ids) as srv:
        result = collect(make_config(tmp_path, srv.openai_base_url, mode=mode))
        kinds = [srv.describe(c) for c in srv.calls]
    assert_matches_script(result.path)
    meta = result.store.meta
    assert (meta.model, meta.benchmark) == ("scripted", "bench")
    for key in ("template", "probe", "sampling", "delta", "mode", "tokens", "wall_seconds", "date", "autotts_version"):
        assert key in meta.settings
    assert meta.settings["mode"] == mode and meta.settings["token_prompts"] is accept_ids
    grows = [k for k in kinds if k and k[0] == "grow"]
    if mode == "full":
        assert len(grows) == 3 * 4  # one request per branch
    else:
        # one request per interval: no duplicate (question, branch, start)
        assert len(grows) == len(set(grows))


def test_resume_after_kill_requests_nothing_twice(tmp_path: Path) -> None:
    with ScriptedCompletionsServer(SCRIPT, latency=0.05) as srv:
        cfg_path = tmp_path / "c.toml"
        d = config_dict(tmp_path, srv.openai_base_url)
        d["server"]["max_in_flight"] = 2
        cfg_path.write_text(toml(d))
        cmd = [sys.executable, "-m", "autotts.cli.main", "collect", str(cfg_path)]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        state = tmp_path / "s.parquet.state.sqlite"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            time.sleep(0.2)
            if state.exists():
                try:
                    with sqlite3.connect(state) as db:
                        if db.execute("SELECT COUNT(*) FROM probes").fetchone()[0] >= 10:
                            break
                except sqlite3.OperationalError:  # the collector is still creating its tables
                    continue
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert not (tmp_path / "s.parquet").exists()
        with sqlite3.connect(state) as db:
            segs = {(q, b, k) for q, b, k in db.execute("SELECT q, b, k FROM segments")}
            probes = {(q, b, k) for q, b, k in db.execute("SELECT q, b, k FROM probes")}
        assert segs and probes
        srv.calls.clear()
        # without --resume the existing state is refused
        assert main(["collect", str(cfg_path)]) == 2
        assert main(["collect", str(cfg_path), "--resume"]) == 0
        again = [srv.describe(c) for c in srv.calls]
    for kind, q, b, chars in [k for k in again if k]:
        if kind == "grow":
            assert (q, b, chars // DELTA) not in segs
        else:
            assert (q, b, chars // DELTA) not in probes
    assert_matches_script(tmp_path / "s.parquet")


def test_exhausted_retries_leave_a_resumable_state(tmp_path: Path) -> None:
    with ScriptedCompletionsServer(SCRIPT) as srv:
        cfg = make_config(tmp_path, srv.openai_base_url)
        # a few branches get through, then the server fails every request
        seen = 0

        def fail_after_some(p: object) -> None:
            nonlocal seen
            seen += 1
            if seen == 12:
                srv.fail_next(10_000, 503)

        with pytest.raises(LLMUnavailableError, match=r"giving up after 3 attempts.*--resume"):
            collect(cfg, progress=fail_after_some)  # type: ignore[arg-type]
        assert not cfg.out.exists()
        srv.clear_faults()
        result = collect(cfg, resume=True)
    assert_matches_script(result.path)


def test_wrong_model_and_refused_token_ids_are_clear_errors(tmp_path: Path) -> None:
    with ScriptedCompletionsServer(SCRIPT, accept_token_ids=False) as srv:
        d = config_dict(tmp_path, srv.openai_base_url)
        d["server"]["model"] = "not-served"
        with pytest.raises(LLMRequestError, match=r"does not serve the model 'not-served'.*scripted"):
            collect(config_from_mapping(d, base_dir=tmp_path))
        with pytest.raises(LLMRequestError, match="token-id prompts were required"):
            collect(make_config(tmp_path, srv.openai_base_url, token_prompts="always", out=str(tmp_path / "b.parquet")))
        with pytest.raises(LLMRequestError, match="mode = 'full' needs"):
            collect(make_config(tmp_path, srv.openai_base_url, mode="full", out=str(tmp_path / "c.parquet")))


def test_cli_errors_and_dry_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = config_dict(tmp_path, "http://127.0.0.1:9/v1")
    cfg = tmp_path / "c.toml"
    cfg.write_text(toml(d))
    assert main(["collect", str(cfg), "--dry-run"]) == 0
    shown = capsys.readouterr().out
    assert "requests    at most" in shown and f"{3 * 4 * CAP:,}" in shown
    # unreachable server: exit 1, a clear message, and a state to resume from
    assert main(["collect", str(cfg)]) == 1
    msg = capsys.readouterr().err
    assert "no server reachable" in msg and "connection failed" in msg and "--resume" in msg
    assert (tmp_path / "s.parquet.state.sqlite").exists()
    # a benchmark row without its answer: exit 2, the row and column named
    (tmp_path / "bench.jsonl").write_text('{"problem": "a", "solution": "1"}\n{"problem": "b"}\n')
    with pytest.raises(ConfigError, match=r"row 2 has no column 'solution'"):
        from autotts.collect.benchmark import load_benchmark
        from autotts.collect.config import BenchmarkSpec

        load_benchmark(BenchmarkSpec(tmp_path / "bench.jsonl", question="problem", answer="solution"))
    assert main(["collect", str(cfg), "--resume"]) == 2
    assert "row 2 has no column 'solution'" in capsys.readouterr().err


def test_math_canonicalisation_at_collection_is_recorded(tmp_path: Path) -> None:
    with ScriptedCompletionsServer(SCRIPT) as srv:
        result = collect(make_config(tmp_path, srv.openai_base_url, canonicalize="math", canonicalize_timeout=2.0))
    info = result.store.meta.settings["canonicalize"]
    assert info["method"] == "math-verify" and info["timeout_seconds"] == 2
    # the script's answers are pairwise different numbers and expressions: nothing to merge
    assert info["merged_answers"] == 0
    assert_matches_script(result.path)
