"""The fork server: candidate processes forked from a pre-imported interpreter behave like fresh ones.

What must hold: the same results as a freshly started process, the same modules
importable after the lock (per import level), the same limits and kill semantics, no
process left behind when the discovering process dies, and a server that comes back
after it was killed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import pytest

from autotts.discovery import _zygote, forkserver
from autotts.discovery.sandbox import SandboxLimits, run_sandbox
from tests.discovery_support import GOOD, INFINITE_LOOP
from tests.test_discovery_sandbox import LIMITS, job_for, raw

SPAWN = replace(LIMITS, start="spawn")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_forked_and_spawned_candidates_give_identical_results() -> None:
    job = job_for(GOOD, trace_runs=[0, 1])
    forked = run_sandbox(job, LIMITS)
    spawned = run_sandbox(job, SPAWN)
    assert forked.kind == spawned.kind == "ok", (forked.message, spawned.message)
    assert forked.data == spawned.data
    assert forked.cpu_seconds is not None and forked.cpu_seconds > 0
    assert spawned.cpu_seconds is None


@pytest.mark.parametrize(
    ("header", "importable"),
    [
        ("", {"socket": False, "subprocess": False, "numpy": False, "selectors": False}),
        ("import numpy\n", {"socket": False, "subprocess": False, "numpy": True, "selectors": False}),
        # scipy.special itself imports subprocess and socket: a fresh process would have them too.
        ("import scipy.special\n", {"socket": True, "subprocess": True, "numpy": True}),
    ],
)
def test_a_forked_candidate_can_import_what_a_fresh_one_could(header: str, importable: dict[str, bool]) -> None:
    """The server's own modules (sockets, selectors) and preloads of higher levels are not importable."""
    for start in (LIMITS, SPAWN):
        for name, expected in importable.items():
            code = raw(f"dataclasses.builtins.__import__({name!r})", "import dataclasses\n" + header)
            out = run_sandbox(job_for(code, runs=1), start)
            assert (out.kind == "ok") is expected, (start.start, name, out.kind, out.message)
            if not expected:
                assert f"import {name!r} is not allowed" in out.message, out.message


def test_levels_follow_the_candidate_imports() -> None:
    assert _zygote.level_for([]) == "light"
    assert _zygote.level_for(["math", "collections"]) == "light"
    assert _zygote.level_for(["numpy"]) == "numpy"
    assert _zygote.level_for(["scipy.stats"]) == "scipy"
    assert _zygote.level_for(["autotts.controllers.voting", "numpy"]) == "scipy"


def test_cpu_limit_and_wall_deadline_hold_for_forked_candidates() -> None:
    out = run_sandbox(job_for(INFINITE_LOOP), LIMITS)
    assert out.kind == "timeout" and "CPU-time limit" in out.message, out.message
    # The CPU clock of a forked child starts at zero: a second job gets its whole budget.
    again = run_sandbox(job_for(GOOD), LIMITS)
    assert again.kind == "ok", again.message
    sleeper = raw("while True:\n            pass")
    out = run_sandbox(job_for(sleeper), replace(LIMITS, cpu_seconds=30, wall_seconds=1.0))
    assert out.kind == "timeout" and "wall-clock limit of 1 s" in out.message, out.message


def test_a_killed_fork_server_is_replaced() -> None:
    first = run_sandbox(job_for(GOOD), LIMITS)
    assert first.kind == "ok"
    server = forkserver.server({}, GOOD)
    proc = server._proc
    assert proc is not None and proc.poll() is None
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    second = run_sandbox(job_for(GOOD), LIMITS)
    assert second.kind == "ok", second.message
    assert second.data == first.data
    assert server._proc is not None and server._proc.pid != proc.pid


def test_nothing_outlives_a_killed_discovering_process(tmp_path: Path) -> None:
    """kill -9 of the parent: the fork server sees its control socket close and kills its children."""
    pids = tmp_path / "pids"
    script = textwrap.dedent(
        f"""
        import sys, threading, time
        sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})
        from autotts.discovery import forkserver
        from autotts.discovery.sandbox import SandboxLimits, run_sandbox
        from tests.test_discovery_sandbox import job_for, raw

        spin = raw("while True:\\n            pass")
        threading.Thread(target=run_sandbox, args=(job_for(spin), SandboxLimits(60, 60, 400)), daemon=True).start()
        while True:
            time.sleep(0.05)
            server = forkserver._SERVERS.get("light")
            if server is not None and server._proc is not None:
                import os
                kids = []
                for entry in os.listdir("/proc"):
                    try:
                        stat = open(f"/proc/{{entry}}/stat").read()
                    except (OSError, ValueError):
                        continue
                    if stat.rsplit(")", 1)[-1].split()[1] == str(server._proc.pid):
                        kids.append(entry)
                if kids:
                    open({str(pids)!r}, "w").write(" ".join([str(server._proc.pid), *kids]))
                    break
        time.sleep(60)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 60
        while not pids.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert pids.exists(), "the candidate process never started"
        time.sleep(0.2)
        watched = [int(p) for p in pids.read_text().split()]
        assert all(_alive(p) for p in watched)
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in watched) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in watched if _alive(p)], "the fork server or a candidate outlived the parent"


def test_spawn_is_the_fallback_when_the_fork_server_cannot_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fork server that fails to start is reported once in the log and the job still runs."""

    def broken(self: forkserver.ForkServer, *args: object) -> forkserver.ForkedChild:
        raise forkserver.ForkServerError("the fork server did not start: test")

    monkeypatch.setattr(forkserver.ForkServer, "spawn", broken)
    out = run_sandbox(job_for(GOOD), LIMITS)
    assert out.kind == "ok", out.message
    assert out.cpu_seconds is None  # it ran as a fresh process


def test_unknown_start_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="sandbox start must be one of fork-server, spawn"):
        run_sandbox(job_for(GOOD), SandboxLimits(start="thread"))


@pytest.mark.parametrize("limits", [LIMITS, SPAWN], ids=["fork-server", "spawn"])
def test_episodes_dealt_to_several_processes_give_identical_results(limits: SandboxLimits) -> None:
    """A job split over three candidate processes: same answers, costs and traces as one process."""
    job = job_for(GOOD, trace_runs=[0, 1], runs=3)
    one = run_sandbox(job, limits)
    three = run_sandbox(replace(job, processes=3), limits)
    assert one.kind == three.kind == "ok", (one.message, three.message)
    assert one.data == three.data


def test_a_failure_in_one_of_several_processes_stops_the_job() -> None:
    """One process of a split job hits the CPU limit or raises: the outcome says so, the others are killed."""
    started = time.monotonic()
    out = run_sandbox(replace(job_for(INFINITE_LOOP), processes=2), LIMITS)
    assert out.kind == "timeout" and "CPU-time limit" in out.message, out.message
    assert time.monotonic() - started < 10
    crash = raw("raise ValueError('boom')")
    out = run_sandbox(replace(job_for(crash), processes=2), LIMITS)
    assert out.kind == "error" and "boom" in out.message, out.message
