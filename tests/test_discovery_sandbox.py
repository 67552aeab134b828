"""The sandbox child: limits, the audit hook, what it is given and what it returns."""

from __future__ import annotations

import json
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


def test_candidate_process_is_given_no_store_data(tmp_path: Path) -> None:
    """The child's job holds source, class name, limits and channel: no answer, gold or question text."""
    base = make_store(n_questions=3)
    questions = tuple(replace(q, gold=f"GOLD-UNSEEN-{i}") for i, q in enumerate(base.questions))
    store = ReplayStore(base.meta, questions)
    payload = [StorePayload(store.name, tuple(store.replay))]
    job = SandboxJob(GOOD, "Controller", payload, [1.0], [0], orders_for(payload, [0], Protocol().order))
    blob = json.dumps(sb._child_job(job, LIMITS, 5, 6))
    assert set(json.loads(blob)) == {"code", "class_name", "limits", "isolation", "rfd", "wfd"}
    secrets = {q.gold for q in store.questions} | {q.text for q in store.questions}
    secrets |= {b.final for q in store.questions for b in q.branches}
    assert secrets and not [s for s in secrets if json.dumps(s) in blob.replace(json.dumps(GOOD), "")]


def test_unserialisable_answer_and_bad_class_are_reported() -> None:
    out = run_sandbox(job_for(GOOD, "Missing"), LIMITS)
    assert out.kind == "error" and "Missing is not defined" in out.message
    # An answer that cannot be turned into text is the candidate's error, reported with its line.
    bad_answer = (
        "class Weird:\n    def __str__(self):\n        raise ValueError('no text for you')\n\n\n"
        + _PLAIN
        + "        return Weird()\n"
    )
    out = run_sandbox(job_for(bad_answer, runs=1), LIMITS)
    assert out.kind == "error" and out.error_kind == "exception", out.message
    assert "no text for you" in out.message and "question=0" in out.message
    # A non-string answer is graded by its text.
    number = _PLAIN + "        r = session.read()\n        return 42\n"
    out = run_sandbox(job_for(number, runs=1), LIMITS)
    assert out.kind == "ok" and out.data is not None
    assert {a for row in out.data["cells"][0]["answers"] for a in row} == {"42"}


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


# --- Runtime layer: candidates that got past the static checks (the runner is called directly) ---------------

_PLAIN = "class Controller:\n    def __init__(self, beta=1.0):\n        pass\n\n    def solve(self, session):\n"


def _escapes(marker: Path) -> dict[str, str]:
    """The reviewer's escape and its neighbours; each would create ``marker`` if it worked."""
    touch = f"touch {marker}"
    return {
        "exec via dataclasses.builtins": "import dataclasses\n"
        + _PLAIN
        + (
            "        dataclasses.builtins.exec('import _posixsubprocess, os\\n"
            "r, w = os.pipe()\\n"
            f'_posixsubprocess.fork_exec([b"/bin/sh", b"-c", b"{touch}"], [b"/bin/sh"], True, (w,), None, '
            "None, -1, -1, -1, -1, -1, -1, r, w, True, True, -1, None, None, None, -1, None, False)')\n"
        ),
        "exec at import time": (
            f"import dataclasses\ndataclasses.builtins.exec('import os; os.system(\"{touch}\")')\n"
            + _PLAIN
            + "        return None\n"
        ),
        "compile + FunctionType": "import dataclasses\n"
        + _PLAIN
        + (
            f"        c = dataclasses.builtins.compile('import os; os.system(\"{touch}\")', 'x', 'exec')\n"
            "        type(lambda: 0)(c, {})()\n"
        ),
        "real __import__ then os.system": "import dataclasses\n"
        + _PLAIN
        + (f"        dataclasses.builtins.__import__('os').system('{touch}')\n"),
        "subclass walk to os.system": _PLAIN
        + (
            "        for c in ().__class__.__base__.__subclasses__():\n"
            "            if c.__name__ == '_wrap_close':\n"
            f"                c.__init__.__globals__['system']('{touch}')\n"
        ),
        "posix_spawn": "import dataclasses\n"
        + _PLAIN
        + (f"        dataclasses.builtins.__import__('os').posix_spawn('/bin/sh', ['sh', '-c', '{touch}'], {{}})\n"),
        "read parent environ": "import dataclasses\n"
        + _PLAIN
        + (
            "        os = dataclasses.builtins.__import__('os')\n"
            "        return dataclasses.builtins.open(f'/proc/{os.getppid()}/environ').read()[:100]\n"
        ),
        "os.open": "import dataclasses\n"
        + _PLAIN
        + (
            "        os = dataclasses.builtins.__import__('os')\n"
            "        return str(os.read(os.open('/etc/hostname', os.O_RDONLY), 10))\n"
        ),
        "new module import": "import dataclasses\n" + _PLAIN + ("        dataclasses.builtins.__import__('socket')\n"),
        "bare exec builtin": _PLAIN + f"        exec('import os; os.system(\"{touch}\")')\n",
    }


def test_escapes_that_pass_validation_still_cannot_spawn_or_read(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    for name, code in _escapes(marker).items():
        out = run_sandbox(job_for(code, runs=1), LIMITS)
        assert out.kind == "error", (name, out.kind, out.message)
        assert "sandbox:" in out.message, (name, out.message)
        assert not marker.exists(), name


_SECCOMP_PROBE = """
import errno, os, socket, sys, threading
import numpy as np
from autotts.discovery.seccomp import install
r, w = os.pipe()
why = install((2, w))
if why:
    print("UNAVAILABLE " + why)
    sys.exit(0)
res = {}
def t(name, f):
    try:
        f()
        res[name] = "allowed"
    except OSError as e:
        res[name] = errno.errorcode.get(e.errno, str(e.errno))
t("open", lambda: open("/etc/hostname").read())
t("os.open", lambda: os.open("/etc/hostname", os.O_RDONLY))
t("socket", lambda: socket.socket())
t("fork", lambda: os.fork())
t("execv", lambda: os.execv("/bin/true", ["true"]))
t("kill parent", lambda: os.kill(os.getppid(), 0))
t("unlink", lambda: os.unlink("/tmp/autotts-seccomp-probe-nonexistent"))
t("mkdir", lambda: os.mkdir("/tmp/autotts-seccomp-probe-dir"))
t("write stdout", lambda: os.write(1, b"x"))
t("write channel", lambda: os.write(w, b"x"))
t("write stderr", lambda: os.write(2, b""))
th = threading.Thread(target=lambda: None)
t("thread", lambda: (th.start(), th.join()))
t("numpy", lambda: np.linalg.norm(np.ones(100)))
os.write(2, repr(res).encode())
"""


def test_seccomp_filter_on_this_kernel() -> None:
    """The kernel layer: no file, socket, process, signal or stray write; threads and numpy still work."""
    import ast
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-c", _SECCOMP_PROBE], capture_output=True, text=True, timeout=120, check=False)
    if r.stdout.startswith("UNAVAILABLE"):
        import pytest

        pytest.skip(f"seccomp is not available here: {r.stdout}")
    assert r.returncode == 0, r.stderr
    res = ast.literal_eval(r.stderr.strip().splitlines()[-1])
    for name in ("open", "os.open", "socket", "fork", "execv", "kill parent", "unlink", "mkdir", "write stdout"):
        assert res[name] == "EPERM", (name, res)
    for name in ("write channel", "write stderr", "thread", "numpy"):
        assert res[name] == "allowed", (name, res)


def test_isolation_probe_and_process_only_mode() -> None:
    """``check_isolation`` accepts seccomp here (or says why not); process-only runs candidates too."""
    assert sb.check_isolation("process-only") == ""
    assert "unknown isolation" in sb.check_isolation("none")
    if sb.check_isolation("seccomp"):
        import pytest

        pytest.skip(sb.check_isolation("seccomp"))
    out = run_sandbox(job_for(GOOD, runs=1), replace(LIMITS, isolation="process-only"))
    assert out.kind == "ok", out.message


def test_allowed_library_code_still_works_under_the_lock() -> None:
    """dataclasses, namedtuple and scipy.stats build code with exec; that stays possible."""
    code = (
        "from dataclasses import dataclass, field\nfrom collections import Counter, namedtuple\n"
        "import numpy as np\nimport scipy.stats as st\n\nP = namedtuple('P', 'a b')\n\n\n@dataclass\nclass S:\n"
        "    x: int = 0\n    y: list = field(default_factory=list)\n\n\n" + _PLAIN + "        r = session.read()\n"
        "        q = float(st.beta(2, 3).ppf(0.5)) + float(np.median(np.array([1.0, 2.0])))\n"
        "        top = Counter([r.answer]).most_common(1)[0][0]\n"
        "        return top if S(1).x and P(1, 2).a and q > 0 else None\n"
    )
    out = run_sandbox(job_for(code, runs=1), LIMITS)
    assert out.kind == "ok", out.message
    assert out.data is not None and all(a is not None for a in out.data["cells"][0]["answers"][0])


def test_each_episode_gets_a_fresh_controller() -> None:
    """Instance state cannot carry from one run or question to the next (no fingerprinting of runs)."""
    code = (
        "class Controller:\n    def __init__(self, beta=1.0):\n        self.seen = 0\n\n"
        "    def solve(self, session):\n        self.seen += 1\n        return str(self.seen)\n"
    )
    out = run_sandbox(job_for(code, runs=2), LIMITS)
    assert out.data is not None
    assert {a for c in out.data["cells"] for row in c["answers"] for a in row} == {"1"}


def test_leak_perturbation_uses_only_the_existing_vocabulary() -> None:
    """No sentinel answer: the perturbed store looks like a real one."""
    from autotts.discovery.leak import perturb_question

    store = make_store(n_questions=3)
    for q in store.replay:
        order = Protocol().order(q.n_branches, 0)
        p = perturb_question(q, order, [(1, False)], seed=7)
        assert p.vocab == q.vocab
        assert all(0 <= c < len(q.vocab) for probes in p.probes for c in probes)
        assert all(0 <= c < len(q.vocab) for c in p.finals)
        if len(q.vocab) > 1:
            assert p.finals[order[1]] != q.finals[order[1]]


def test_leak_runs_are_drawn_from_the_secret_reproducibly() -> None:
    from autotts.discovery.evaluate import EvalContext, _leak_runs

    store = make_store(n_questions=3)
    ctx = EvalContext(stores=[store], betas=[1.0], runs=8, protocol=Protocol(), limits=LIMITS, leak_runs=2)
    draws = {tuple(_leak_runs(bytes([i]) * 32, ctx)) for i in range(20)}
    assert all(len(d) == 2 and all(0 <= r < 8 for r in d) for d in draws)
    assert len(draws) > 3 and any(d != (0, 1) for d in draws)
    assert _leak_runs(b"x" * 32, ctx) == _leak_runs(b"x" * 32, ctx)
    assert _leak_runs(b"x" * 32, replace(ctx, runs=2)) == [0, 1]


def test_every_refused_builtin_is_refused_at_run_time_too() -> None:
    """Past the static checks, each refused builtin is a refusing stub in the candidate's namespace."""
    from autotts.discovery.validation import FORBIDDEN_NAMES

    names = sorted(n for n in FORBIDDEN_NAMES if n not in ("__builtins__", "__import__"))
    code = (
        _PLAIN
        + "        out = []\n"
        + f"        for name, f in zip({names!r}, [{', '.join(names)}]):\n"
        + "            try:\n                f('x')\n                out.append(name + ' ran')\n"
        + "            except PermissionError as e:\n"
        + "                if str(e) != 'sandbox: ' + name + '() is not allowed for a controller':\n"
        + "                    out.append(name + ' ' + str(e))\n"
        + "            except Exception as e:\n                out.append(name + ' ' + type(e).__name__)\n"
        + "        try:\n            __import__('os')\n            out.append('import ran')\n"
        + "        except ImportError as e:\n"
        + "            if \"sandbox: import of 'os'\" not in str(e):\n                out.append(str(e))\n"
        + "        return '|'.join(out) or 'all refused'\n"
    )
    out = run_sandbox(job_for(code, runs=1), LIMITS)
    assert out.kind == "ok", out.message
    assert out.data is not None
    assert out.data["cells"][0]["answers"][0][0] == "all refused"
    # The module's own __builtins__ is the restricted table: globals() itself is refused.
    via_globals = _PLAIN + "        g = globals()\n        return 'ran'\n"
    out = run_sandbox(job_for(via_globals, runs=1), LIMITS)
    assert out.kind == "error" and "globals() is not allowed" in out.message
