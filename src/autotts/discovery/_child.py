"""The sandbox child: runs one candidate on replay data without gold answers.

Started by :mod:`autotts.discovery.sandbox` as ``python -s -P -m autotts.discovery._child JOB``
in a fresh session (its own process group) with a scrubbed environment. It

1. limits itself (CPU seconds, address space, output file size, no core files) and asks
   the kernel to kill it if the parent dies;
2. opens its result and progress files, then installs an audit hook that refuses
   writes, reads outside the Python installation, sockets, subprocesses and signals;
3. compiles the candidate as ``controller.py`` and replays it on every requested
   (store, β, run, question) with a :class:`~autotts.env.session.ReplaySession`;
4. writes answers, costs, sequential tokens and (for the traced runs) action traces as
   JSON. It never sees a gold answer: grading happens in the parent.

The job file is a pickle written by the parent (trusted); the result is JSON, because
the parent must not unpickle anything a candidate could have touched.
"""

from __future__ import annotations

import json
import linecache
import os
import pickle
import resource
import sys
import traceback
from typing import Any

_MAX_ANSWER_CHARS = 500
_MAX_NOTES = 50
_MAX_NOTE_CHARS = 200
_BLOCKED_EVENT_PREFIXES = (
    "socket.",
    "subprocess.",
    "os.system",
    "os.exec",
    "os.posix_spawn",
    "os.spawn",
    "os.fork",
    "os.forkpty",
    "os.kill",
    "os.killpg",
    "os.remove",
    "os.rename",
    "os.rmdir",
    "os.mkdir",
    "os.unlink",
    "os.truncate",
    "os.chmod",
    "os.chown",
    "os.symlink",
    "os.link",
    "shutil.",
    "ctypes.",
    "signal.pthread_kill",
    "urllib.",
    "http.",
    "ftplib.",
    "smtplib.",
    "webbrowser.",
    "pty.",
    "sys.settrace",
    "sys.setprofile",
    "sys.addaudithook",
)


def _limit(limits: dict[str, Any]) -> None:
    cpu = max(1, int(limits["cpu_seconds"] + 0.999))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 2))
    mem = int(limits["memory_mb"]) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    out = int(limits["output_mb"]) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_FSIZE, (out, out))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    try:  # Linux: die with the parent (a killed discovery run leaves no orphan behind).
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
    except Exception:
        pass


def _install_audit_hook() -> None:
    roots = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    roots.update(os.path.realpath(p) for p in sys.path if p and os.path.isabs(p) and os.path.isdir(p))
    roots_t = tuple(r.rstrip("/") + "/" for r in roots)

    def allowed_path(path: Any) -> bool:
        if isinstance(path, int):
            return False
        try:
            real = os.path.realpath(os.fsdecode(path))
        except Exception:
            return False
        return (real + "/").startswith(roots_t)

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event == "open":
            path, mode = args[0], args[1]
            writing = isinstance(mode, str) and any(c in mode for c in "wax+")
            flags = args[2] if len(args) > 2 and isinstance(args[2], int) else 0
            if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
                writing = True
            if writing or not allowed_path(path):
                raise PermissionError(f"sandbox: opening {path!r} is not allowed for a controller")
        elif event in ("os.listdir", "os.scandir"):
            if args and args[0] is not None and not allowed_path(args[0]):
                raise PermissionError("sandbox: listing directories is not allowed for a controller")
        elif event.startswith(_BLOCKED_EVENT_PREFIXES):
            raise PermissionError(f"sandbox: {event} is not allowed for a controller")

    sys.addaudithook(hook)


def _answer_text(answer: Any) -> str | None:
    if answer is None:
        return None
    text = answer if isinstance(answer, str) else str(answer)
    return text if len(text) <= _MAX_ANSWER_CHARS else text[:_MAX_ANSWER_CHARS] + "\u2026"


def _tb_tail(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    keep = [f for f in frames if f.filename == "controller.py" or "autotts" in f.filename]
    lines = traceback.format_list(keep[-8:]) + traceback.format_exception_only(type(exc), exc)
    return "".join(lines)[-3000:]


def _run(job: dict[str, Any], progress_fd: int) -> dict[str, Any]:
    from autotts.discovery.leak import action_signature, perturb_question
    from autotts.env.session import ReplaySession
    from autotts.store.schema import ReplayQuestion

    code: str = job["code"]
    linecache.cache["controller.py"] = (len(code), None, code.splitlines(True), "controller.py")
    namespace: dict[str, Any] = {"__name__": "candidate_controller"}
    where: dict[str, Any] = {"stage": "import"}
    try:
        exec(compile(code, "controller.py", "exec"), namespace)
        cls = namespace.get(job["class_name"])
        if cls is None:
            return {"ok": False, "error": {"kind": "class", "message": f"class {job['class_name']} is not defined"}}
    except MemoryError:
        return {"ok": False, "error": {"kind": "memory", "message": "memory limit exceeded while importing", **where}}
    except BaseException as exc:
        return {"ok": False, "error": {"kind": "exception", "message": _tb_tail(exc), **where}}

    stores = [
        (s["name"], [ReplayQuestion(*fields) for fields in s["questions"]]) for s in job["stores"]
    ]
    orders: dict[int, dict[int, tuple[int, ...]]] = job["orders"]
    betas: list[float | None] = job["betas"]
    runs: list[int] = job["runs"]
    trace_runs = set(job["trace_runs"])
    events_cap: int = job["events_cap"]
    leak = job.get("leak")
    reverse = bool(job.get("reverse"))
    nq_limit = job.get("n_questions")

    def ordered(seq: list[Any]) -> list[Any]:
        return list(reversed(seq)) if reverse else list(seq)

    settings: dict[str, str] = {}
    cells: list[dict[str, Any]] = []
    try:
        for si, (sname, questions) in ordered(list(enumerate(stores))):
            nq = len(questions) if nq_limit is None else min(nq_limit, len(questions))
            for bi, beta in ordered(list(enumerate(betas))):
                where = {"stage": "construct", "store": sname, "beta": beta}
                if beta is None:
                    controller = cls()
                else:
                    schedule = getattr(cls, "schedule", None)
                    if schedule is not None and str(bi) not in settings:
                        settings[str(bi)] = repr(schedule(beta))[:400]
                    controller = cls(beta=beta)
                answers: list[list[str | None]] = [[None] * nq for _ in runs]
                cost = [[0] * nq for _ in runs]
                seq = [[0] * nq for _ in runs]
                traces: list[dict[str, Any]] = []
                for ri, run in ordered(list(enumerate(runs))):
                    for qi in ordered(list(range(nq))):
                        where = {"stage": "solve", "store": sname, "beta": beta, "run": run, "question": qi}
                        os.pwrite(progress_fd, json.dumps(where).encode()[:1000].ljust(1024), 0)
                        q = questions[qi]
                        order = orders[q.n_branches][run]
                        if leak is not None:
                            q = perturb_question(q, order, leak[(si, bi, run, qi)])
                        traced = run in trace_runs
                        session = ReplaySession(q, order, record=traced)
                        answer = _answer_text(controller.solve(session))
                        answers[ri][qi] = answer
                        cost[ri][qi] = session.cost
                        seq[ri][qi] = session.sequential_tokens
                        if traced:
                            events = session.trace
                            rec: dict[str, Any] = {
                                "run": run,
                                "question": qi,
                                "answer": answer,
                                "sig": action_signature([(e.action, e.branch) for e in events]),
                                "n_events": len(events),
                                "n_total": session.n_total,
                                "branches": [[b.depth, b.finished, b.pruned] for b in session.branches],
                            }
                            if leak is None:
                                rec["events"] = [
                                    [e.action, e.branch, e.depth, e.answer, e.cost, e.total]
                                    for e in events[:events_cap]
                                ]
                                rec["notes"] = [[k, t[:_MAX_NOTE_CHARS]] for k, t in session.notes[:_MAX_NOTES]]
                            traces.append(rec)
                cells.append(
                    {"store": si, "beta_index": bi, "answers": answers, "cost": cost, "seq": seq, "traces": traces}
                )
    except MemoryError:
        return {"ok": False, "error": {"kind": "memory", "message": "memory limit exceeded", **where}}
    except RecursionError as exc:
        return {"ok": False, "error": {"kind": "exception", "message": _tb_tail(exc), **where}}
    except BaseException as exc:
        return {"ok": False, "error": {"kind": "exception", "message": _tb_tail(exc), **where}}
    cells.sort(key=lambda c: (c["store"], c["beta_index"]))
    return {"ok": True, "cells": cells, "settings": settings}


def main(argv: list[str]) -> int:
    """Entry point: ``python -m autotts.discovery._child JOBFILE``."""
    with open(argv[1], "rb") as fh:
        job = pickle.load(fh)
    _limit(job["limits"])
    out = open(job["result_path"], "w", encoding="utf-8")  # kept open past the audit hook
    progress_fd = os.open(job["progress_path"], os.O_WRONLY | os.O_CREAT, 0o600)
    # Import what the harness itself needs before the hook narrows file access.

    _install_audit_hook()
    try:
        result = _run(job, progress_fd)
    except MemoryError:
        result = {"ok": False, "error": {"kind": "memory", "message": "memory limit exceeded"}}
    try:
        text = json.dumps(result)
    except (TypeError, ValueError) as exc:
        text = json.dumps({"ok": False, "error": {"kind": "exception", "message": f"result not serializable: {exc}"}})
    out.write(text)
    out.flush()
    out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
