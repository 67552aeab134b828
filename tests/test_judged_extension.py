"""The C extension of the judged session (autotts.env._judgedc) against its pure-Python twin.

The extension only makes the candidate process faster; every judged result must be the
same with it and without it, and a candidate that tampers with its own session's state
must get a Python error (or the judge's refusal), never a crashed interpreter.
"""

from __future__ import annotations

import inspect
import json
import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autotts.env import speedups, wire
from autotts.env.judged import JudgedSession
from autotts.env.session import Reveal
from autotts.errors import IllegalActionError

ROOT = Path(__file__).resolve().parents[1]
needs_ext = pytest.mark.skipif(not speedups.ENABLED, reason=f"judged session path: {speedups.describe()}")


def _compiler() -> str | None:
    """The C compiler the build hook uses, if it and Python's headers are on this machine."""
    ldshared = sysconfig.get_config_var("LDSHARED")
    if not ldshared or not Path(sysconfig.get_paths()["include"], "Python.h").is_file():
        return None
    return shutil.which(shlex.split(ldshared)[0])


def test_the_extension_is_built_where_a_compiler_exists() -> None:
    if os.environ.get("AUTOTTS_PURE_PYTHON"):
        pytest.skip("AUTOTTS_PURE_PYTHON is set")
    if _compiler() is None:
        pytest.skip("no C compiler or Python headers for this Python: the pure-Python path is expected")
    assert speedups.ENABLED, speedups.describe()


# ---------------------------------------------------------------- the session core
class _Int(int):
    pass


class _Link:
    """A judge stand-in: reveals ``answers[depth]`` for a branch, or a refusal."""

    def __init__(self, refuse: bool = False) -> None:
        self.refuse = refuse
        self.calls: list[Any] = []

    def __call__(self, request: Any) -> Any:
        self.calls.append(request)
        if self.refuse:
            return (ord("x"), [], "the judge says no")
        if type(request) is int:
            return tuple.__new__(Reveal, (request, f"a{len(self.calls)}", len(self.calls) % 4 == 0, 100))
        return tuple.__new__(Reveal, (len(self.calls) - 1, "o", False, 100))


def _opened(n: int, refuse: bool = False) -> tuple[JudgedSession, _Link]:
    link = _Link()
    s = JudgedSession(link, 8, 100)
    for _ in range(n):
        s.open()
    link.refuse = refuse
    return s, link


def _outcome(s: JudgedSession, call: Any) -> tuple[Any, ...]:
    try:
        got = call()
    except (IllegalActionError, TypeError, IndexError) as exc:
        got = (type(exc).__name__, str(exc))
    opened = range(s.n_opened)
    return (got, s.cost, s.alive(), [s.depth(i) for i in opened], [s.answer(i) for i in opened], s.trace)


@needs_ext
@pytest.mark.parametrize(
    "branch",
    [0, 1, 2, -1, 3, 99, 2**70, True, False, _Int(1), 1.0, "1", None],
    ids=repr,
)
@pytest.mark.parametrize("refuse", [False, True])
def test_c_advance_behaves_as_the_python_advance(branch: Any, refuse: bool) -> None:
    a, _ = _opened(3, refuse)
    b, _ = _opened(3, refuse)
    b._state[2] = 1  # a finished branch, in both
    a._state[2] = 1
    assert _outcome(a, lambda: a.advance(branch)) == _outcome(b, lambda: b._advance_py(branch))


@needs_ext
def test_a_long_episode_keeps_the_same_books_on_both_paths() -> None:
    a, _ = _opened(4)
    b, _ = _opened(4)
    for i in range(200):
        k = i % 4
        assert _outcome(a, lambda k=k: a.advance(k)) == _outcome(b, lambda k=k: b._advance_py(k))
    assert a.branches == b.branches and a.sequential_tokens == b.sequential_tokens


@needs_ext
@pytest.mark.parametrize(
    "tamper",
    [
        "s._state = None",
        "del s._state",
        "s._depth = []",
        "s._answers = ()",
        "s._tokens = ['x'] * 3",
        "s._events = None",
        "s._link = 5",
        "s._n_open = 10**6",
        "s._state = [0] * 1000; s._n_open = 1000",
    ],
)
def test_tampered_state_raises_a_python_error(tamper: str) -> None:
    s, _ = _opened(3)
    exec(tamper, {"s": s})
    with pytest.raises((IllegalActionError, TypeError, IndexError, AttributeError)):
        for _ in range(3):
            s.advance(0 if "1000" not in tamper else 500)
            s.advance(1)


# ---------------------------------------------------------------- step replies
@given(
    st.lists(
        st.tuples(
            st.integers(0, 2**31 - 1),
            st.one_of(st.none(), st.text(max_size=5)),
            st.booleans(),
            st.integers(-(2**31), 2**31 - 1),
        ),
        max_size=40,
    )
)
@settings(max_examples=200, deadline=None)
def test_reveal_columns_decode_the_same_on_both_paths(rows: list[tuple[int, str | None, bool, int]]) -> None:
    body = wire.encode_replies(len(rows), [tuple.__new__(Reveal, r) for r in rows], [])
    got, starts = wire.decode_replies(body)
    assert got == rows and all(type(r) is Reveal for r in got) and starts == []
    assert [tuple(r) for r in got] == [tuple(r) for r in rows]
    b, a, f, c = (wire._pack("i", [r[0] for r in rows]), [r[1] for r in rows], bytes(r[2] for r in rows), b"")
    c = wire._pack("i", [r[3] for r in rows])
    assert wire._py_make_reveals(b, a, f, c) == wire.make_reveals(b, a, f, c)
    if rows:
        for make in {wire._py_make_reveals, wire.make_reveals}:
            with pytest.raises(ValueError):
                make(b[:-4], a, f, c)
            with pytest.raises(ValueError):
                make(b, a[:-1], f, c)


# ---------------------------------------------------------------- whole judged sweeps
_SWEEP = r"""
import json, sys
from autotts.discovery.sandbox import SandboxJob, SandboxLimits, StorePayload, orders_for, run_sandbox
from autotts.env import speedups
from autotts.evaluation.protocols import Protocol
sys.path.insert(0, sys.argv[1])
from tests.discovery_support import make_store

code, cls = json.loads(sys.stdin.read())
store = make_store(n_questions=5, n_branches=16, seed=3)
payload = [StorePayload(store.name, tuple(store.replay))]
runs = [0, 1, 2]
job = SandboxJob(code, cls, payload, [0.0, 0.4, 1.0], runs, orders_for(payload, runs, Protocol().order),
                 trace_runs=[0, 2])
out = run_sandbox(job, SandboxLimits(cpu_seconds=60, wall_seconds=120, memory_mb=1024))
print(json.dumps({"ext": speedups.ENABLED, "kind": out.kind, "error_kind": out.error_kind, "message": out.message,
                  "data": out.data}))
"""

_MIXED = '''
class Controller:
    """Every action kind: open, advance, advance_many, read, prune, note, the compat names."""

    def __init__(self, beta=1.0):
        self.n = 2 + int(4 * beta)

    def solve(self, session):
        for _ in range(self.n):
            session.open()
        session.note("opened " + str(session.n_opened))
        for _ in range(3):
            session.advance_many(session.alive())
        alive = session.alive()
        if len(alive) > 2:
            session.prune(alive[-1])
        for b in session.alive():
            while not session.is_finished(b):
                session.probe_more(b)
        if session.n_available:
            session.get_new_branch_final_answer()
        return session.answer(0)
'''


def _sweep(code: str, cls: str, *, pure: bool) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "AUTOTTS_PURE_PYTHON"}
    if pure:
        env["AUTOTTS_PURE_PYTHON"] = "1"
    done = subprocess.run(
        [sys.executable, "-c", _SWEEP, str(ROOT)],
        input=json.dumps([code, cls]),
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


@needs_ext
@pytest.mark.slow
@pytest.mark.parametrize("which", ["cmc", "mixed"])
def test_judged_sweeps_are_identical_with_and_without_the_extension(which: str) -> None:
    if which == "cmc":
        from autotts.controllers import cmc

        code, cls = inspect.getsource(cmc), "ConfidenceMomentum"
    else:
        code, cls = _MIXED, "Controller"
    fast = _sweep(code, cls, pure=False)
    slow = _sweep(code, cls, pure=True)
    assert fast["ext"] is True and slow["ext"] is False
    assert fast["kind"] == "ok", fast["message"]
    assert fast == {**slow, "ext": True}


@needs_ext
@pytest.mark.slow
def test_the_judge_unit_suite_passes_on_the_pure_python_path() -> None:
    env = {**os.environ, "AUTOTTS_PURE_PYTHON": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_discovery_judge.py"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:]


_HOSTILE = """
class Controller:
    def __init__(self, beta=1.0):
        pass

    def solve(self, session):
        r = session.open()
        session.open()
        {tamper}
        for _ in range(5):
            session.advance(0)
            session.advance(1)
        return r.answer
"""


@needs_ext
@pytest.mark.slow
@pytest.mark.parametrize(
    "tamper",
    [
        "session._state = None",
        "session._depth = []",
        "session._events = 7",
        "session._state = [0] * 5000; session._n_open = 5000; session.advance(4000)",
        "session._link = session._link; session._answers = None",
        "session._link((ord('a'), 2**31 - 1, b''))",
        "session._link.step(None, [0, 1], [None])",
        "xs = [0] * 3; session._link.step(type('C', (), {'send': lambda s, f: xs.clear()})(), xs, [None] * 3)",
    ],
)
def test_a_candidate_tampering_with_its_session_gets_an_error_not_a_crash(tamper: str) -> None:
    out = _sweep(_HOSTILE.format(tamper=tamper), "Controller", pure=False)
    # The candidate's own Python error (or the judge's refusal), reported as such: never a
    # process killed by a signal, which a memory error in the extension would be.
    assert out["kind"] == "error" and out["error_kind"] == "exception", out
    assert "Error" in out["message"], out["message"]
