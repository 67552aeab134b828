"""``autotts discover``: usage errors, a full offline run, and resume after ``kill -9``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autotts.cli.main import main
from autotts.testing.fake_llm import FakeLLMServer, Reply
from tests.discovery_support import GOOD, NON_MONOTONE, fast_tables, fenced, tiny_setup, write_config

KEY = "sk-test-CLI-0a1b2c"
KEY_ENV = "AUTOTTS_TEST_CLI_KEY"


def test_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["discover"]) == 2
    assert "exactly one" in capsys.readouterr().err
    cfg = tmp_path / "c.toml"
    cfg.write_text("rounds = 1\n")
    assert main(["discover", str(cfg), "--resume", str(tmp_path)]) == 2
    assert main(["discover", str(tmp_path / "missing.toml")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["discover", str(cfg)]) == 2
    assert "stores.search" in capsys.readouterr().err
    cfg.write_text("rounds = [\n")
    assert main(["discover", str(cfg)]) == 2
    assert "not valid TOML" in capsys.readouterr().err
    assert main(["discover", "--resume", str(tmp_path / "nothing-here")]) == 1
    assert "no such run directory" in capsys.readouterr().err


def test_offline_evolve_run_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    search, heldout = tiny_setup(tmp_path)
    cfg = write_config(
        tmp_path / "evolve.toml",
        {"name": "evolve-cli", "rounds": 2, "candidates_per_round": 2, "parallel": 2, "run_dir": "out/run"},
        fast_tables(search, heldout, proposer={"kind": "evolve"}),
    )
    assert main(["discover", str(cfg)]) == 0
    captured = capsys.readouterr()
    assert "selected r0" in captured.out
    assert "final evaluation" in captured.out
    run = tmp_path / "out" / "run"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status_counts"] == {"ok": 4}
    assert summary["proposer"]["kind"] == "evolve"
    # A second start into the same directory is refused; resuming a finished run just re-summarizes.
    assert main(["discover", str(cfg)]) == 1
    assert "--resume" in capsys.readouterr().err
    assert main(["discover", "--resume", str(run)]) == 0


def _cli(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as handle:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "autotts.cli.main", "discover", *args],
            stdout=subprocess.DEVNULL,
            stderr=handle,
            env=env,
        )


@pytest.mark.integration
@pytest.mark.slow
def test_resume_after_sigkill_mid_round(tmp_path: Path) -> None:
    search, heldout = tiny_setup(tmp_path)
    replies = [Reply(text=fenced(GOOD), delay=0.3), Reply(text=fenced(NON_MONOTONE), delay=0.3)]
    with FakeLLMServer(replies, api_key=KEY, cycle=True) as srv:
        cfg = write_config(
            tmp_path / "kill.toml",
            {"name": "kill-test", "rounds": 2, "candidates_per_round": 3, "parallel": 1, "run_dir": "run"},
            fast_tables(
                search,
                heldout,
                proposer={
                    "kind": "openai",
                    "model": "m",
                    "base_url": srv.openai_base_url,
                    "api_key_env": KEY_ENV,
                    "price_output_per_mtok": 1.0,
                },
            ),
        )
        env = {**os.environ, KEY_ENV: KEY}
        run = tmp_path / "run"
        log = tmp_path / "cli.log"
        proc = _cli([str(cfg)], env, log)
        marker = run / "rounds" / "r01" / "c01" / "candidate.json"
        deadline = time.monotonic() + 120
        while not marker.exists():
            if proc.poll() is not None:
                pytest.fail(f"the run ended before it could be killed: {log.read_text()}")
            if time.monotonic() > deadline:
                proc.kill()
                pytest.fail("the first candidate never finished")
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert not (run / "summary.json").exists()
        before = len(srv.requests)
        stored = len(list(run.glob("rounds/*/*/proposal.json")))
        lost = before - stored  # calls made whose proposal was not stored: at most the one in flight
        assert 0 <= lost <= 1 and before < 6

        resumed = _cli(["--resume", str(run)], env, log)
        assert resumed.wait(timeout=300) == 0, log.read_text()
        total = len(srv.requests)

    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["state"] == "done"
    records = [json.loads(p.read_text()) for p in sorted(run.glob("rounds/*/*/candidate.json"))]
    assert [r["id"] for r in records] == [f"r{r:02d}c{c:02d}" for r in (1, 2) for c in (1, 2, 3)]
    assert all(r["status"] == "ok" for r in records)
    # Nothing half-written is left, and every JSON file parses.
    assert not list(run.rglob("*.tmp"))
    for p in run.rglob("*.json"):
        json.loads(p.read_text())
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status_counts"] == {"ok": 6}
    assert KEY not in log.read_text()
    for p in run.rglob("*"):
        if p.is_file() and p.suffix != ".gz":
            assert KEY not in p.read_text(errors="replace"), p
    # Only the in-flight proposer call was lost: every stored proposal was reused, none asked twice.
    assert total == 6 + lost
    # Usage of every stored proposal is counted once.
    assert summary["usage"]["calls"] == 6


def test_missing_store_fails_before_a_run_directory_exists(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(tmp_path / "c.toml", {"run_dir": "run"}, {"stores": {"search": ["nowhere/store.json"]}})
    assert main(["discover", str(cfg)]) == 2  # a configuration error, like every other bad config value
    assert "no such file or directory" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
