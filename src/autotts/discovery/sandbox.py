"""Run a candidate in its own process against the judge, with CPU, wall-clock, memory and output limits.

The parent writes a job file holding the candidate's source and its limits — no store
data — starts ``python -s -P -m autotts.discovery._child`` in a new session with a scrubbed
environment (no API keys, fixed hash seed so set iteration is reproducible) and two pipes,
and plays the judge (:mod:`autotts.discovery.judge`) on them: the stores, branch orders
and accounting never leave this process. At the wall-clock deadline the whole process
group is killed with ``os.killpg``; the child limits its own CPU time and address space
with ``resource.setrlimit`` and installs a seccomp filter. Whatever happens, the caller
gets a :class:`SandboxOutcome` — never an exception — because a bad candidate is data.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from autotts.discovery import forkserver
from autotts.discovery.judge import CandidateFailure, ProtocolError, judge
from autotts.env.judged import Channel, ChannelClosed
from autotts.store.schema import ReplayQuestion

log = logging.getLogger(__name__)

_STDERR_TAIL = 2000
#: Per traced episode, at most this many actions are sent back (the signature covers all).
EVENTS_CAP = 400


class _Child(Protocol):
    """A running candidate process, forked by the fork server or started with ``subprocess``."""

    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | None: ...

    @property
    def cpu_seconds(self) -> float | None: ...

    def wait(self, timeout: float | None = None) -> int: ...

    def kill(self) -> None:
        """Kill the process group (a no-op once the process has ended)."""


class _SpawnedChild:
    """A candidate process started as a fresh interpreter (``sandbox.start = "spawn"``)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self._proc = proc
        self.pid = proc.pid
        self.cpu_seconds: float | None = None  # Popen does not report it

    @property
    def returncode(self) -> int | None:
        return self._proc.returncode

    def wait(self, timeout: float | None = None) -> int:
        return self._proc.wait(timeout)

    def kill(self) -> None:
        # Popen reaps only in wait(), so until then the pid (and its group) cannot be recycled.
        if self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._proc.pid, signal.SIGKILL)


# Running sandbox children, so that an interrupted loop can stop them at once.
_LIVE: set[_Child] = set()
_LIVE_LOCK = threading.Lock()


def kill_all() -> int:
    """Kill every running sandbox child (e.g. on Ctrl-C); return how many were running."""
    with _LIVE_LOCK:
        children = list(_LIVE)
    for child in children:
        child.kill()
    return len(children)


#: ``sandbox.isolation`` values: the kernel filter (default) or, by explicit choice, the process alone.
ISOLATION_MODES = ("seccomp", "process-only")

#: ``sandbox.start`` values: fork from the fork server (default) or start a fresh interpreter.
START_MODES = ("fork-server", "spawn")


@dataclass(frozen=True)
class SandboxLimits:
    """Limits of one sandbox process, and how it is isolated."""

    cpu_seconds: float = 240.0
    wall_seconds: float = 300.0
    memory_mb: int = 1024
    output_mb: int = 256
    isolation: str = "seccomp"
    """``seccomp`` (refuse to run without the kernel filter) or ``process-only``."""
    start: str = "fork-server"
    """How the candidate process is started: forked from the fork server, whose imports are
    done (:mod:`autotts.discovery.forkserver`; falls back to ``spawn``, with a warning, where
    it cannot run), or ``spawn``: a fresh interpreter per job, ~1 s of imports each."""


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
    secret: bytes | None = None
    """The evaluation's secret: episode order and leak perturbation are drawn from it."""
    processes: int = 1
    """Candidate processes the episodes are dealt out to (each forked like the first, each
    played by a judge thread of its own): more than one uses idle cores when few candidates
    are judged at once. Results are the same for any number."""
    batch: int = 128
    """Episodes played side by side (the judge's window; freed slots are refilled at once).

    Small enough that the episodes the candidate process cycles through stay in the CPU
    caches (a window of 1,024 cost ~10% more candidate CPU than 128), large enough that
    one round trip carries many actions (see ``bench/judge.py``)."""


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
    cpu_seconds: float | None = None
    """CPU seconds of the candidate process (None where its start method cannot tell)."""


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
    if os.environ.get("AUTOTTS_PURE_PYTHON"):  # the candidate takes the pure-Python path too (autotts.env.speedups)
        env["AUTOTTS_PURE_PYTHON"] = "1"
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


def _where_text(where: Mapping[str, Any], names: Sequence[str]) -> str:
    parts = []
    for k in ("store", "beta", "run", "question"):
        if k in where:
            v = where[k]
            parts.append(f"{k}={names[v] if k == 'store' and isinstance(v, int) and v < len(names) else v}")
    return "while solving " + ", ".join(parts) if parts else ""


def _child_job(job: SandboxJob, limits: SandboxLimits, rfd: int, wfd: int) -> dict[str, Any]:
    """What the candidate process is given: its source, class name, limits and channel — no data."""
    return {
        "code": job.code,
        "class_name": job.class_name,
        "limits": {"cpu_seconds": limits.cpu_seconds, "memory_mb": limits.memory_mb, "output_mb": limits.output_mb},
        "isolation": limits.isolation,
        "rfd": rfd,
        "wfd": wfd,
    }


_FALLBACK_WARNED = False


def _start_child(job: SandboxJob, limits: SandboxLimits, job_file: Path, rfd: int, wfd: int, errfd: int) -> _Child:
    """Start a candidate process of ``job`` (``job_file`` holds what it is given)."""
    global _FALLBACK_WARNED
    tmp = job_file.parent
    if limits.start == "fork-server":
        try:
            return forkserver.server(_child_env(), job.code).spawn(str(job_file), str(tmp), rfd, wfd, errfd)
        except forkserver.ForkServerError as exc:
            if not _FALLBACK_WARNED:
                _FALLBACK_WARNED = True
                log.warning("starting every candidate process afresh (~1 s each): %s", exc)
    proc = subprocess.Popen(
        [sys.executable, "-s", "-P", "-m", "autotts.discovery._child", str(job_file)],
        cwd=tmp,
        stdin=subprocess.DEVNULL,
        stdout=errfd,
        stderr=errfd,
        env=_child_env(),
        start_new_session=True,
        pass_fds=(rfd, wfd),
    )
    return _SpawnedChild(proc)


def run_sandbox(job: SandboxJob, limits: SandboxLimits) -> SandboxOutcome:
    """Judge ``job``: its candidate runs in a limited child process; return what happened."""
    if limits.isolation not in ISOLATION_MODES:
        raise ValueError(f"sandbox isolation must be one of {', '.join(ISOLATION_MODES)}, got {limits.isolation!r}")
    if limits.start not in START_MODES:
        raise ValueError(f"sandbox start must be one of {', '.join(START_MODES)}, got {limits.start!r}")
    tmp = Path(tempfile.mkdtemp(prefix="autotts-sandbox-"))
    t0 = time.monotonic()
    names = [s.name for s in job.stores]
    where: dict[str, Any] = {}
    data: dict[str, Any] | None = None
    failure: CandidateFailure | None = None
    protocol = ""
    parent_fds: list[int] = []
    procs: list[_Child] = []
    chans: list[Channel] = []
    try:
        with open(tmp / "stderr", "wb") as errf:
            for i in range(max(1, job.processes)):
                to_child_r, to_child_w = os.pipe()
                from_child_r, from_child_w = os.pipe()
                parent_fds += [to_child_w, from_child_r]
                job_file = tmp / f"job{i}.json"
                try:
                    with open(job_file, "w", encoding="utf-8") as fh:
                        json.dump(_child_job(job, limits, to_child_r, from_child_w), fh)
                    proc = _start_child(job, limits, job_file, to_child_r, from_child_w, errf.fileno())
                finally:
                    os.close(to_child_r)
                    os.close(from_child_w)
                procs.append(proc)
                with _LIVE_LOCK:
                    _LIVE.add(proc)
                chan = Channel(from_child_r, to_child_w)
                chan.drain_while_sending()
                chans.append(chan)
        killed = threading.Event()
        # The process whose failure ended a job split over several (the others are killed
        # then, so their return codes say nothing about the candidate).
        cause: list[int] = []

        def kill_the_others(first: int) -> None:
            cause.append(first)
            for i, p in enumerate(procs):
                if i != first:
                    p.kill()

        def kill_all_procs() -> None:
            for p in procs:
                p.kill()

        def deadline() -> None:
            killed.set()
            kill_all_procs()

        timer = threading.Timer(limits.wall_seconds, deadline)
        timer.daemon = True
        timer.start()
        try:
            data = judge(
                chans,
                stores=[s.questions for s in job.stores],
                betas=list(job.betas),
                runs=list(job.runs),
                orders=job.orders,
                trace_runs=set(job.trace_runs),
                events_cap=EVENTS_CAP,
                n_questions=job.n_questions,
                leak_masks=job.leak_masks,
                secret=job.secret,
                reverse=job.reverse,
                on_episode=lambda w: where.update(w),
                batch=job.batch,
                on_failure=kill_the_others,
            )
            for p in procs:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    p.wait(timeout=5)
        except CandidateFailure as exc:
            failure = exc
        except ProtocolError as exc:
            protocol = str(exc)
        except (ChannelClosed, OSError):
            # The process died or was killed: its return code says why. The channel can
            # close a moment before the kernel has finished the process (a CPU-limit signal
            # is still being delivered): let it end on its own first, or the kill below
            # would become the reported cause.
            for p in procs:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    p.wait(timeout=2)
        finally:
            timer.cancel()
            # Kill the whole groups: the candidate may have left helpers behind, and an
            # exception (even KeyboardInterrupt) here must not orphan a child.
            for p in procs:
                p.kill()
                p.wait()
                with _LIVE_LOCK:
                    _LIVE.discard(p)
        seconds = time.monotonic() - t0
        stderr_tail = _tail(tmp / "stderr")
        at = _where_text(where, names)
        if data is not None:
            cpus = [p.cpu_seconds for p in procs]
            cpu = None if None in cpus else sum(c for c in cpus if c is not None)
            return SandboxOutcome("ok", data, "", stderr_tail, seconds, cpu_seconds=cpu)
        if failure is not None:
            ctx = {k: failure.where[k] for k in ("store", "beta", "run", "question") if k in failure.where}
            if "store" in ctx and isinstance(ctx["store"], int) and ctx["store"] < len(names):
                ctx["store"] = names[ctx["store"]]
            text = failure.message
            if ctx:
                text = f"{text.rstrip()}\n(at " + ", ".join(f"{k}={v}" for k, v in ctx.items()) + ")"
            if failure.kind == "memory":
                text = f"memory limit of {limits.memory_mb} MB exceeded" + (
                    " (at " + ", ".join(f"{k}={v}" for k, v in ctx.items()) + ")" if ctx else ""
                )
            return SandboxOutcome("error", {"ok": False}, text, stderr_tail, seconds, failure.kind)
        if killed.is_set():
            msg = f"wall-clock limit of {limits.wall_seconds:g} s exceeded {at}".strip()
            return SandboxOutcome("timeout", None, msg, stderr_tail, seconds)
        if protocol:
            return SandboxOutcome(
                "crashed", None, f"broke the judge protocol: {protocol} {at}".strip(), stderr_tail, seconds, "protocol"
            )
        # The process that tells most: one killed by a signal, else one that exited with an error.
        codes = [procs[cause[0]].returncode] if cause else [p.returncode for p in procs]
        rc = next((c for c in codes if c is not None and c < 0), next((c for c in codes if c), codes[0]))
        if rc is not None and rc < 0:
            sig = -rc
            if sig == signal.SIGXCPU:
                msg = f"CPU-time limit of {limits.cpu_seconds:g} s exceeded {at}".strip()
                return SandboxOutcome("timeout", None, msg, stderr_tail, seconds)
            if sig == signal.SIGXFSZ:
                msg = f"output limit of {limits.output_mb} MB exceeded {at}".strip()
                return SandboxOutcome("crashed", None, msg, stderr_tail, seconds, "output")
            name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
            hint = " (likely the memory limit)" if sig in (signal.SIGKILL, signal.SIGSEGV, signal.SIGABRT) else ""
            msg = f"process died on signal {name}{hint} {at}".strip()
            return SandboxOutcome("crashed", None, msg, stderr_tail, seconds, "signal")
        return SandboxOutcome(
            "crashed", None, f"process exited with code {rc} without finishing {at}".strip(), stderr_tail, seconds
        )
    finally:
        for fd in parent_fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        shutil.rmtree(tmp, ignore_errors=True)


_ISOLATION_CHECKED: dict[str, str] = {}


def check_isolation(mode: str) -> str:
    """Why candidates cannot be isolated as ``mode`` asks on this machine ("" when they can).

    ``seccomp`` is probed once per process in a short-lived child (installing the filter is
    irreversible, so never in this process).
    """
    if mode not in ISOLATION_MODES:
        return f"unknown isolation {mode!r}; use one of {', '.join(ISOLATION_MODES)}"
    if mode == "process-only":
        return ""
    if mode not in _ISOLATION_CHECKED:
        probe = (
            "import os, sys\nfrom autotts.discovery.seccomp import install\nwhy = install((2,))\n"
            "if why:\n    sys.stderr.write(why)\n    sys.exit(3)\n"
            "try:\n    os.open('/dev/null', os.O_RDONLY)\nexcept PermissionError:\n    sys.exit(0)\n"
            "sys.stderr.write('the filter was installed but did not refuse open()')\nsys.exit(4)\n"
        )
        try:
            r = subprocess.run(
                [sys.executable, "-s", "-c", probe],
                capture_output=True,
                text=True,
                timeout=60,
                env=_child_env(),
                check=False,
            )
            _ISOLATION_CHECKED[mode] = (
                "" if r.returncode == 0 else (r.stderr.strip()[-500:] or f"probe exited {r.returncode}")
            )
        except (OSError, subprocess.SubprocessError) as exc:
            _ISOLATION_CHECKED[mode] = f"could not run the probe: {exc}"
    return _ISOLATION_CHECKED[mode]


def store_payload(name: str, questions: Sequence[ReplayQuestion]) -> StorePayload:
    """The child's view of a store."""
    return StorePayload(name, tuple(questions))


def orders_for(
    stores: Sequence[StorePayload], runs: Sequence[int], order_fn: Any
) -> dict[int, dict[int, tuple[int, ...]]]:
    """``orders[n][run] = order_fn(n, run)`` for every branch count present in ``stores``."""
    sizes = sorted({q.n_branches for s in stores for q in s.questions})
    return {n: {r: tuple(order_fn(n, r)) for r in runs} for n in sizes}
