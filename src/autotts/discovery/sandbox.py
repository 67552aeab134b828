"""Run a candidate in its own process with CPU, wall-clock, memory and output limits.

The parent writes a job file (the candidate's source and the *interned replay views* of
the stores — no gold answers, no question text), starts
``python -s -P -m autotts.discovery._child`` in a new session with a scrubbed
environment (no API keys, fixed hash seed so set iteration is reproducible), and waits.
At the wall-clock deadline the whole process group is killed with ``os.killpg``; the
child limits its own CPU time and address space with ``resource.setrlimit``. Whatever
happens, the parent gets a :class:`SandboxOutcome` — never an exception — because a bad
candidate is data.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pickle
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autotts.store.schema import ReplayQuestion

log = logging.getLogger(__name__)

_STDERR_TAIL = 2000
#: Per traced episode, at most this many actions are sent back (the signature covers all).
EVENTS_CAP = 400

# Process groups of running sandbox children, so that an interrupted loop can stop them at once.
_LIVE: set[int] = set()
_LIVE_LOCK = threading.Lock()


def kill_all() -> int:
    """Kill every running sandbox child (e.g. on Ctrl-C); return how many were running."""
    with _LIVE_LOCK:
        pids = list(_LIVE)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    return len(pids)


@dataclass(frozen=True)
class SandboxLimits:
    """Limits of one sandbox process."""

    cpu_seconds: float = 240.0
    wall_seconds: float = 300.0
    memory_mb: int = 1024
    output_mb: int = 256


@dataclass(frozen=True)
class StorePayload:
    """What the child may know of a store: its name and interned views (no golds, no text)."""

    name: str
    questions: tuple[ReplayQuestion, ...]


@dataclass(frozen=True)
class SandboxJob:
    """One replay job: a candidate, stores, β values, runs and what to record."""

    code: str
    class_name: str
    stores: Sequence[StorePayload]
    betas: Sequence[float | None]
    runs: Sequence[int]
    orders: dict[int, dict[int, tuple[int, ...]]]
    """``orders[n_branches][run]``: the branch order of every question with that many branches."""
    trace_runs: Sequence[int] = ()
    n_questions: int | None = None
    """Only the first ``n_questions`` of each store (smoke stage)."""
    leak_masks: dict[tuple[int, int, int, int], list[tuple[int, bool]]] | None = None
    """For the leak pass: revealed ``(depth, finished)`` per opened branch of each episode."""
    reverse: bool = False


@dataclass(frozen=True)
class SandboxOutcome:
    """What came back: parsed results, or why not.

    ``kind`` is ``ok`` (``data`` holds the results), ``error`` (the candidate raised or ran
    out of memory; ``error_kind`` says which), ``timeout`` (CPU or wall limit) or
    ``crashed`` (died on a signal or without a result).
    """

    kind: str
    data: dict[str, Any] | None
    message: str
    stderr_tail: str
    seconds: float
    error_kind: str = ""


def _child_env() -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONIOENCODING": "utf-8",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    return env


def _tail(path: Path, limit: int = _STDERR_TAIL) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - limit))
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _where(path: Path) -> str:
    try:
        raw = path.read_bytes().strip()
        if not raw:
            return ""
        w = json.loads(raw.decode("utf-8", "replace").rstrip("\x00 "))
    except (OSError, ValueError):
        return ""
    parts = [f"{k}={w[k]}" for k in ("store", "beta", "run", "question") if k in w]
    return "while solving " + ", ".join(parts) if parts else ""


def _payload(job: SandboxJob, tmp: Path, limits: SandboxLimits) -> dict[str, Any]:
    return {
        "code": job.code,
        "class_name": job.class_name,
        "stores": [
            {"name": s.name, "questions": [(q.vocab, q.probes, q.tokens, q.finals, q.delta) for q in s.questions]}
            for s in job.stores
        ],
        "orders": job.orders,
        "betas": list(job.betas),
        "runs": list(job.runs),
        "trace_runs": list(job.trace_runs),
        "events_cap": EVENTS_CAP,
        "n_questions": job.n_questions,
        "leak": job.leak_masks,
        "reverse": job.reverse,
        "limits": {
            "cpu_seconds": limits.cpu_seconds,
            "memory_mb": limits.memory_mb,
            "output_mb": limits.output_mb,
        },
        "result_path": str(tmp / "result.json"),
        "progress_path": str(tmp / "progress"),
    }


def run_sandbox(job: SandboxJob, limits: SandboxLimits) -> SandboxOutcome:
    """Run ``job`` in a limited child process and return what happened."""
    tmp = Path(tempfile.mkdtemp(prefix="autotts-sandbox-"))
    t0 = time.monotonic()
    try:
        with open(tmp / "job.pkl", "wb") as fh:
            pickle.dump(_payload(job, tmp, limits), fh, protocol=pickle.HIGHEST_PROTOCOL)
        with open(tmp / "stdout", "wb") as out, open(tmp / "stderr", "wb") as errf:
            proc = subprocess.Popen(
                [sys.executable, "-s", "-P", "-m", "autotts.discovery._child", str(tmp / "job.pkl")],
                cwd=tmp,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=errf,
                env=_child_env(),
                start_new_session=True,
            )
            with _LIVE_LOCK:
                _LIVE.add(proc.pid)
            killed = False
            try:
                proc.wait(timeout=limits.wall_seconds)
            except subprocess.TimeoutExpired:
                killed = True
            finally:
                # Kill the whole group: the candidate may have left helpers behind, and an
                # exception (even KeyboardInterrupt) here must not orphan the child.
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                with _LIVE_LOCK:
                    _LIVE.discard(proc.pid)
        seconds = time.monotonic() - t0
        stderr_tail = _tail(tmp / "stderr")
        where = _where(tmp / "progress")
        if killed:
            msg = f"wall-clock limit of {limits.wall_seconds:g} s exceeded {where}".strip()
            return SandboxOutcome("timeout", None, msg, stderr_tail, seconds)
        rc = proc.returncode
        if rc < 0:
            sig = -rc
            if sig == signal.SIGXCPU:
                msg = f"CPU-time limit of {limits.cpu_seconds:g} s exceeded {where}".strip()
                return SandboxOutcome("timeout", None, msg, stderr_tail, seconds)
            if sig == signal.SIGXFSZ:
                msg = f"output limit of {limits.output_mb} MB exceeded {where}".strip()
                return SandboxOutcome("crashed", None, msg, stderr_tail, seconds, "output")
            name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
            hint = " (likely the memory limit)" if sig in (signal.SIGKILL, signal.SIGSEGV, signal.SIGABRT) else ""
            msg = f"process died on signal {name}{hint} {where}".strip()
            return SandboxOutcome("crashed", None, msg, stderr_tail, seconds, "signal")
        result_path = tmp / "result.json"
        if not result_path.is_file() or result_path.stat().st_size == 0:
            return SandboxOutcome(
                "crashed", None, f"process exited with code {rc} without a result {where}".strip(), stderr_tail, seconds
            )
        try:
            data = json.loads(result_path.read_text(encoding="utf-8", errors="replace"))
        except ValueError as exc:
            return SandboxOutcome("crashed", None, f"unreadable result: {exc}", stderr_tail, seconds)
        if not isinstance(data, dict):
            return SandboxOutcome("crashed", None, "malformed result", stderr_tail, seconds)
        if not data.get("ok"):
            raw_err = data.get("error")
            err: dict[str, Any] = raw_err if isinstance(raw_err, dict) else {}
            kind = str(err.get("kind", "exception"))
            text = str(err.get("message", "unknown error"))
            ctx = {k: err[k] for k in ("store", "beta", "run", "question") if k in err}
            if ctx:
                text = f"{text.rstrip()}\n(at " + ", ".join(f"{k}={v}" for k, v in ctx.items()) + ")"
            if kind == "memory":
                text = f"memory limit of {limits.memory_mb} MB exceeded" + (
                    " (at " + ", ".join(f"{k}={v}" for k, v in ctx.items()) + ")" if ctx else ""
                )
            return SandboxOutcome("error", data, text, stderr_tail, seconds, kind)
        return SandboxOutcome("ok", data, "", stderr_tail, seconds)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def store_payload(name: str, questions: Sequence[ReplayQuestion]) -> StorePayload:
    """The child's view of a store."""
    return StorePayload(name, tuple(questions))


def orders_for(
    stores: Sequence[StorePayload], runs: Sequence[int], order_fn: Any
) -> dict[int, dict[int, tuple[int, ...]]]:
    """``orders[n][run] = order_fn(n, run)`` for every branch count present in ``stores``."""
    sizes = sorted({q.n_branches for s in stores for q in s.questions})
    return {n: {r: tuple(order_fn(n, r)) for r in runs} for n in sizes}
