"""The sandbox child: limits, the audit hook, what it is given and what it returns."""

from __future__ import annotations

import pickle
from dataclasses import replace
from pathlib import Path

from autotts.discovery import sandbox as sb
from autotts.discovery.sandbox import SandboxJob, SandboxLimits, StorePayload, orders_for, run_sandbox
from autotts.evaluation.protocols import Protocol
from autotts.store.schema import ReplayStore
from tests.discovery_support import GOOD, INFINITE_LOOP, MEMORY_HOG, make_store

LIMITS = SandboxLimits(cpu_seconds=2, wall_seconds=8, memory_mb=400)


def job_for(code: str, class_name: str = "Controller", *, runs: int = 2, **kw: object) -> SandboxJob:
    store = make_store(n_questions=3)
    payload = [StorePayload(store.name, tuple(store.replay))]
    orders = orders_for(payload, range(runs), Protocol().order)
    return SandboxJob(code, class_name, payload, [0.0, 1.0], list(range(runs)), orders, **kw)  # type: ignore[arg-type]


def raw(line: str, header: str = "") -> str:
    return (
        header
        + "class Controller:\n    def __init__(self, beta=1.0):\n        pass\n\n"
        + f"    def solve(self, session):\n        {line}\n        return None\n"
    )


def test_good_candidate_returns_answers_costs_and_traces() -> None:
    out = run_sandbox(job_for(GOOD, trace_runs=[0]), LIMITS)
    assert out.kind == "ok", out.message
    assert out.data is not None
    cells = out.data["cells"]
    assert [(c["store"], c["beta_index"]) for c in cells] == [(0, 0), (0, 1)]
    for c in cells:
        assert len(c["answers"]) == 2 and len(c["answers"][0]) == 3
        assert all(isinstance(x, int) and x > 0 for row in c["cost"] for x in row)
        assert {t["run"] for t in c["traces"]} == {0}
        ev = c["traces"][0]["events"][0]
        assert ev[0] == "open" and ev[1] == 0
    # More β, more tokens for this controller.
    assert sum(map(sum, cells[1]["cost"])) > sum(map(sum, cells[0]["cost"]))


def test_results_match_an_in_process_replay() -> None:
    """The child replays exactly what the parent would (same orders, same session)."""
    from autotts.env.session import ReplaySession

    store = make_store(n_questions=3)
    ns: dict[str, object] = {}
    exec(compile(GOOD, "good", "exec"), ns)
    ctrl = ns["Controller"](beta=1.0)  # type: ignore[operator]
    out = run_sandbox(job_for(GOOD), LIMITS)
    assert out.data is not None
    for run in range(2):
        for q, rq in enumerate(store.replay):
            s = ReplaySession(rq, Protocol().order(rq.n_branches, run))
            answer = ctrl.solve(s)  # type: ignore[attr-defined]
            assert out.data["cells"][1]["answers"][run][q] == answer
            assert out.data["cells"][1]["cost"][run][q] == s.cost


def test_infinite_loop_is_killed() -> None:
    out = run_sandbox(job_for(INFINITE_LOOP), LIMITS)
    assert out.kind == "timeout"
    assert "limit" in out.message and "question=0" in out.message


def test_wall_clock_deadline_kills_the_process_group() -> None:
    sleeper = raw("while True:\n            pass", "")
    out = run_sandbox(job_for(sleeper), SandboxLimits(cpu_seconds=30, wall_seconds=1.5, memory_mb=400))
    assert out.kind == "timeout"
    assert "wall-clock limit of 1.5 s" in out.message
    assert out.seconds < 10


def test_memory_hog_is_stopped() -> None:
    out = run_sandbox(job_for(MEMORY_HOG), LIMITS)
    assert out.kind in ("error", "crashed")
    assert "memory" in out.message


def test_exception_reports_controller_line() -> None:
    out = run_sandbox(job_for(raw("x = 1 // 0")), LIMITS)
    assert out.kind == "error" and out.error_kind == "exception"
    assert "ZeroDivisionError" in out.message
    assert 'File "controller.py", line 6' in out.message
    assert "x = 1 // 0" in out.message


def test_illegal_action_is_a_crash_with_the_session_message() -> None:
    out = run_sandbox(job_for(raw("session.advance(5)")), LIMITS)
    assert out.kind == "error"
    assert "ADVANCE(5) is illegal" in out.message


def test_audit_hook_blocks_files_processes_and_network() -> None:
    """Even code that slipped past static checks cannot read files, spawn or connect."""
    for header, line in [
        ("", "open('/etc/hostname').read()"),
        ("import os\n", "os.listdir('/')"),
        ("import subprocess\n", "subprocess.run(['true'])"),
        ("import socket\n", "socket.create_connection(('127.0.0.1', 9))"),
        ("import os\n", "open(os.path.expanduser('~/x'), 'w')"),
    ]:
        out = run_sandbox(job_for(raw(line, header)), LIMITS)
        assert out.kind == "error", (line, out.kind, out.message)
        assert "sandbox:" in out.message or "PermissionError" in out.message, out.message


def test_child_environment_has_no_secrets() -> None:
    import os

    os.environ["AUTOTTS_SANDBOX_TEST_SECRET"] = "sk-should-not-pass"
    try:
        env = sb._child_env()
    finally:
        del os.environ["AUTOTTS_SANDBOX_TEST_SECRET"]
    assert "AUTOTTS_SANDBOX_TEST_SECRET" not in env
    assert env["PYTHONHASHSEED"] == "0"


def test_job_file_holds_no_gold_and_no_question_text(tmp_path: Path) -> None:
    base = make_store(n_questions=3)
    # Golds no branch ever produced: if they reach the child, it is through the job file.
    questions = tuple(replace(q, gold=f"GOLD-UNSEEN-{i}") for i, q in enumerate(base.questions))
    store = ReplayStore(base.meta, questions)
    payload = [StorePayload(store.name, tuple(store.replay))]
    job = SandboxJob(GOOD, "Controller", payload, [1.0], [0], orders_for(payload, [0], Protocol().order))
    blob = pickle.dumps(sb._payload(job, tmp_path, LIMITS))
    for q in store.questions:
        assert q.text.encode() not in blob
        assert q.gold.encode() not in blob


def test_unpicklable_result_and_bad_class_are_reported() -> None:
    out = run_sandbox(job_for(GOOD, "Missing"), LIMITS)
    assert out.kind == "error" and "Missing is not defined" in out.message


def test_kill_all_stops_running_children_at_once() -> None:
    """What an interrupted loop relies on: children in their own sessions are still reachable."""
    import threading
    import time

    from autotts.discovery.sandbox import kill_all

    results: list[object] = []
    spin = raw("while True:\n            pass")
    worker = threading.Thread(
        target=lambda: results.append(run_sandbox(job_for(spin), SandboxLimits(60, 60, 400))), daemon=True
    )
    worker.start()
    deadline = time.monotonic() + 20
    while kill_all() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    worker.join(timeout=20)
    assert results, "the sandbox call did not return after kill_all()"
    out = results[0]
    assert out.kind == "crashed" and "SIGKILL" in out.message  # type: ignore[attr-defined]
