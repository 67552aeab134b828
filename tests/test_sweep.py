"""Sweeps from the CLI: TOML sweep files, streamed JSON results, --resume after a kill."""

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
from autotts.store import save_store
from tests.test_evaluation import tiny_store

SLOW_CONTROLLER = """
import time

class Slow:
    def __init__(self, n=1, delay=0.02):
        self.n, self.delay = n, delay

    def solve(self, session):
        time.sleep(self.delay)
        answers = [session.read().answer for _ in range(self.n)]
        return max(answers, key=answers.count)
"""


def _strip(records):  # type: ignore[no-untyped-def]
    return sorted(json.dumps({k: v for k, v in r.items() if k != "seconds"}, sort_keys=True) for r in records)


def test_sweep_file_and_resume(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = save_store(tiny_store(), tmp_path / "m" / "tiny.json")
    sweep = tmp_path / "sweep.toml"
    sweep.write_text(
        f'stores = ["{store}"]\ncontrollers = ["sc:n=1", "sc:n=3", "sc:n=5"]\nruns = 4\nbackend = "serial"\n'
    )
    out = tmp_path / "res.json"
    assert main(["eval", "--sweep", str(sweep), "--json", str(out)]) == 0
    full = json.loads(out.read_text())
    assert [r["params"]["n"] for r in full] == [1, 3, 5]
    # Drop a finished cell, as if the sweep had been interrupted, and resume.
    out.write_text(json.dumps(full[:2]))
    capsys.readouterr()
    assert main(["eval", "--sweep", str(sweep), "--json", str(out), "--resume"]) == 0
    captured = capsys.readouterr()
    assert "resuming: 2 of 3 cells" in captured.err
    assert "sc(n=5)" in captured.out and "sc(n=1)" in captured.out
    assert _strip(json.loads(out.read_text())) == _strip(full)


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("stores = [\n", "not valid TOML"),
        ('controllers = ["sc"]\n', "'stores' is required"),
        ('stores = ["x"]\ncontrollers = ["sc"]\nbogus = 1\n', "unknown key(s) bogus"),
        ('stores = ["x"]\ncontrollers = ["sc"]\nbetas = [2]\n', "'betas' must be"),
    ],
)
def test_bad_sweep_files(tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, fragment: str) -> None:
    sweep = tmp_path / "s.toml"
    sweep.write_text(content)
    assert main(["eval", "--sweep", str(sweep)]) == 2
    assert fragment in capsys.readouterr().err


def test_resume_needs_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = save_store(tiny_store(), tmp_path / "t.json")
    assert main(["eval", "--store", str(store), "--resume"]) == 2
    assert "--resume needs --json" in capsys.readouterr().err


@pytest.mark.integration
def test_killed_sweep_keeps_finished_cells_and_resumes(tmp_path: Path) -> None:
    store = save_store(tiny_store(), tmp_path / "m" / "tiny.json")
    ctrl = tmp_path / "slow.py"
    ctrl.write_text(SLOW_CONTROLLER)
    out = tmp_path / "res.json"
    args = [sys.executable, "-m", "autotts.cli.main", "eval", "--store", str(store), "--runs", "3"]
    args += ["--backend", "serial"]
    for n in range(1, 9):
        args += ["-c", f"{ctrl}:Slow:n={n}"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([*args, "--json", str(out)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not out.exists():
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert out.exists(), "no record was streamed before the kill"
    kept = json.loads(out.read_text())  # the file is whole JSON even though the process was killed
    assert 1 <= len(kept) < 8
    done = subprocess.run([*args, "--json", str(out), "--resume"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"resuming: {len(kept)} of 8 cells" in done.stderr
    final = json.loads(out.read_text())
    assert sorted(r["params"]["n"] for r in final) == list(range(1, 9))
    fresh = tmp_path / "fresh.json"
    subprocess.run([*args, "--json", str(fresh)], env=env, capture_output=True, timeout=120, check=True)
    assert _strip(final) == _strip(json.loads(fresh.read_text()))


def test_resume_keeps_records_of_other_cells(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = save_store(tiny_store(), tmp_path / "m" / "tiny.json")
    out = tmp_path / "r.json"
    base = ["eval", "--store", str(store), "--runs", "3", "--backend", "serial", "--json", str(out)]
    assert main([*base, "-c", "sc:n=2"]) == 0
    assert main([*base, "-c", "sc:n=4", "--resume"]) == 0
    assert sorted(r["params"]["n"] for r in json.loads(out.read_text())) == [2, 4]
    err = capsys.readouterr().err
    assert "[1/1] sc(n=4) on" in err  # a line per cell when stderr is not a terminal


@pytest.mark.parametrize("content", ['[{"x": 1}]', '[{"store": "a"}]', "[1]"])
def test_resume_from_foreign_records_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str
) -> None:
    store = save_store(tiny_store(), tmp_path / "t.json")
    out = tmp_path / "r.json"
    out.write_text(content)
    assert main(["eval", "--store", str(store), "--json", str(out), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "cannot resume from" in err and "record 0" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["-c", "sc", "--protocol", "subsample", "--subsample-size", "500"], "exceeds the 9 branches"),
        (["-c", "sc", "--protocol", "subsample", "--subsample-size", "0"], "at least 1"),
        (["-c", "cmc:beta=1.5"], "beta must be a number in [0, 1]"),
        (["-c", "sc", "--address", "127.0.0.1:6379"], "--address only applies to --backend ray"),
    ],
)
def test_eval_rejects_inconsistent_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], fragment: str
) -> None:
    store = save_store(tiny_store(), tmp_path / "t.json")
    assert main(["eval", "--store", str(store), *args]) == 2
    assert fragment in capsys.readouterr().err


@pytest.mark.integration
def test_sigterm_flushes_finished_cells(tmp_path: Path) -> None:
    store = save_store(tiny_store(), tmp_path / "m" / "tiny.json")
    ctrl = tmp_path / "slow.py"
    ctrl.write_text(SLOW_CONTROLLER)
    out = tmp_path / "res.json"
    args = [sys.executable, "-m", "autotts.cli.main", "eval", "--store", str(store), "--runs", "3"]
    args += ["--backend", "serial", "--json", str(out)]
    for n in range(1, 9):
        args += ["-c", f"{ctrl}:Slow:n={n}"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not out.exists():
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 143  # 128 + SIGTERM, the shell convention
    kept = json.loads(out.read_text())
    assert 1 <= len(kept) < 8  # whole JSON, finished cells kept
