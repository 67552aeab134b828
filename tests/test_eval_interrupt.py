"""``autotts eval`` under Ctrl-C, SIGTERM, SIGKILL and ``--cell-timeout`` with a controller that never returns.

Each test starts the CLI in its own session, so every worker it forks can be found
afterwards by session id: none may survive the command.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autotts.testing import write_tiny_store

pytestmark = pytest.mark.integration

SPIN = """
class Spin:
    '''Answers at once for n=1; spins forever (pure Python, never returns) otherwise.'''

    def __init__(self, n=1):
        self.n = n

    def solve(self, session):
        while self.n > 1:
            pass
        return session.read().answer
"""


def _session_members(sid: int) -> list[int]:
    """Pids of live (non-zombie) processes in session ``sid``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z" and int(fields[3]) == sid:
            pids.append(int(entry.name))
    return pids


def _wait_gone(sid: int, seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        left = _session_members(sid)
        if not left:
            return []
        time.sleep(0.05)
    return _session_members(sid)


def _start(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen[str], Path]:
    store = write_tiny_store(tmp_path / "m" / "tiny.parquet", questions=3)
    ctrl = tmp_path / "spin.py"
    ctrl.write_text(SPIN)
    out = tmp_path / "res.json"
    args = [sys.executable, "-m", "autotts.cli.main", "eval", "--store", str(store), "--runs", "2"]
    args += ["-c", f"{ctrl}:Spin:n=1", "-c", f"{ctrl}:Spin:n=2", "-c", f"{ctrl}:Spin:n=3", "--json", str(out)]
    proc = subprocess.Popen(
        [*args, *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not out.exists():
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    assert out.exists(), "the quick cell was never saved"
    time.sleep(0.5)  # the spinning cells are running in the workers now
    return proc, out


def _kill_session(sid: int) -> None:
    for pid in _session_members(sid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.mark.parametrize(("how", "code"), [("ctrl-c", 130), ("sigterm", 143)], ids=["ctrl-c", "sigterm"])
def test_first_signal_stops_spinning_workers(tmp_path: Path, how: str, code: int) -> None:
    proc, out = _start(tmp_path, "--workers", "2")
    try:
        workers = [p for p in _session_members(proc.pid) if p != proc.pid]
        assert len(workers) == 2, "the processes backend should have forked two workers"
        t0 = time.monotonic()
        if how == "ctrl-c":
            os.killpg(proc.pid, signal.SIGINT)  # a terminal sends Ctrl-C to the whole process group
        else:
            proc.send_signal(signal.SIGTERM)  # `kill PID` reaches the parent only
        _, stderr = proc.communicate(timeout=30)
        elapsed = time.monotonic() - t0
        assert proc.returncode == code, stderr
        assert elapsed < 5, f"took {elapsed:.1f} s to stop"
        assert "Traceback" not in stderr
        assert f"interrupted: 1 of 3 cells saved in {out}; rerun with --resume" in stderr
        assert _wait_gone(proc.pid, 3) == [], "a worker outlived the command"
        assert [r["params"]["n"] for r in json.loads(out.read_text())] == [1]
    finally:
        _kill_session(proc.pid)


def test_workers_die_with_a_killed_parent(tmp_path: Path) -> None:
    proc, _ = _start(tmp_path, "--workers", "2")
    try:
        assert len(_session_members(proc.pid)) == 3
        proc.send_signal(signal.SIGKILL)  # no handler runs: the workers must notice by themselves
        proc.communicate(timeout=30)
        assert _wait_gone(proc.pid, 5) == [], "workers survived their parent's SIGKILL"
    finally:
        _kill_session(proc.pid)


@pytest.mark.parametrize("backend", ["processes", "serial"])
def test_cell_timeout_stops_a_spinning_cell(tmp_path: Path, backend: str) -> None:
    store = write_tiny_store(tmp_path / "m" / "tiny.parquet", questions=3)
    ctrl = tmp_path / "spin.py"
    ctrl.write_text(SPIN)
    out = tmp_path / "res.json"
    args = [sys.executable, "-m", "autotts.cli.main", "eval", "--store", str(store), "--runs", "2"]
    args += ["-c", f"{ctrl}:Spin:n=1", "-c", f"{ctrl}:Spin:n=2", "--json", str(out)]
    args += ["--backend", backend, "--workers", "2", "--cell-timeout", "1.5"]
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 1, stderr
        assert "Spin(n=2) on tiny-large/seed0 ran longer than the --cell-timeout of 1.5 s" in stderr
        assert "Traceback" not in stderr
        assert [r["params"]["n"] for r in json.loads(out.read_text())] == [1]
        assert _wait_gone(proc.pid, 3) == []
    finally:
        _kill_session(proc.pid)
