"""The sandbox child: runs one candidate on replay data without gold answers.

Started by :mod:`autotts.discovery.sandbox` as ``python -s -P -m autotts.discovery._child JOB``
in a fresh session (its own process group) with a scrubbed environment. It

1. limits itself (CPU seconds, address space, output file size, no core files) and asks
   the kernel to kill it if the parent dies;
2. opens its result and progress files, imports what the harness and the candidate's
   (allow-listed) imports need, neuters ``_posixsubprocess.fork_exec``, asks the kernel to
   refuse ``execve`` (seccomp, where available), then installs an audit hook that refuses
   *every* file open, module import, directory listing, process, socket, signal, ctypes and
   ``gc`` introspection event — so even code that slipped past the static checks and reached
   the real ``exec`` cannot load ``_posixsubprocess``, run a program or read ``/proc``;
3. compiles the candidate as ``controller.py`` and runs it with restricted builtins (no
   ``exec``/``eval``/``compile``/``open``/``getattr`` family; ``__import__`` admits only the
   allow-list), then replays it on every requested (store, β, run, question) with a
   :class:`~autotts.env.session.ReplaySession` and a fresh controller instance per episode;
4. writes answers, costs, sequential tokens and (for the traced runs) action traces as
   JSON. It never sees a gold answer: grading happens in the parent.

The job file is a pickle written by the parent (trusted); the result is JSON, because
the parent must not unpickle anything a candidate could have touched.
"""

from __future__ import annotations

import ast
import builtins
import importlib
import json
import linecache
import os
import pickle
import resource
import struct
import sys
import traceback
import types
from typing import Any

from autotts.discovery.validation import ALLOWED_IMPORTS, FORBIDDEN_NAMES

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
    "gc.",
    "os.chdir",
    "os.chroot",
    "os.setuid",
    "mmap.",
    "resource.setrlimit",
    "resource.prlimit",
    "cpython.run_",
)

# seccomp(2): refuse execve/execveat (and x32 syscalls) with EPERM. Constants from linux/filter.h, seccomp.h.
_SECCOMP_ARCH = {"x86_64": (0xC000003E, 59, 322), "aarch64": (0xC00000B7, 221, 281)}


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


def _deny_exec() -> bool:
    """Ask the kernel to refuse ``execve`` for this process and its children; True if installed."""
    try:
        import ctypes

        arch = _SECCOMP_ARCH.get(os.uname().machine)
        if arch is None:
            return False
        audit_arch, nr_execve, nr_execveat = arch
        ld, jeq, jge, ret = 0x20, 0x15, 0x35, 0x06
        allow, deny = 0x7FFF0000, 0x00050000 | 1  # SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO | EPERM
        prog = [
            (ld, 0, 0, 4),  # seccomp_data.arch
            (jeq, 0, 5, audit_arch),
            (ld, 0, 0, 0),  # seccomp_data.nr
            (jge, 3, 0, 0x40000000),  # x32 ABI
            (jeq, 2, 0, nr_execve),
            (jeq, 1, 0, nr_execveat),
            (ret, 0, 0, allow),
            (ret, 0, 0, deny),
        ]
        raw = b"".join(struct.pack("HBBI", *ins) for ins in prog)
        buf = ctypes.create_string_buffer(raw, len(raw))

        class _Prog(ctypes.Structure):
            _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

        fprog = _Prog(len(prog), ctypes.addressof(buf))
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS
        return int(libc.prctl(22, 2, ctypes.byref(fprog), 0, 0)) == 0  # PR_SET_SECCOMP, FILTER
    except Exception:
        return False


def _neuter_process_spawning() -> None:
    """Replace the one process-spawning primitive that raises no audit event of its own."""

    def refused(*args: Any, **kwargs: Any) -> Any:
        raise PermissionError("sandbox: starting processes is not allowed for a controller")

    try:
        import _posixsubprocess

        _posixsubprocess.fork_exec = refused
    except ImportError:
        pass
    sub = sys.modules.get("subprocess")
    if sub is not None and hasattr(sub, "_fork_exec"):
        setattr(sub, "_fork_exec", refused)  # noqa: B010  (private name, absent from the stubs)


#: Light modules imported before the lock whether or not the candidate names them, because
#: allowed code imports them lazily (``Counter.most_common`` imports ``heapq`` on first use).
_PRELOAD = (
    "__future__",
    "math",
    "statistics",
    "collections",
    "collections.abc",
    "itertools",
    "functools",
    "heapq",
    "bisect",
    "copy",
    "numbers",
    "fractions",
    "decimal",
    "operator",
    "dataclasses",
    "typing",
    "re",
    "string",
    "textwrap",
    "warnings",
    "hashlib",
    "autotts.env.session",
    "autotts.store.schema",
)


def _preimport(code: str) -> None:
    """Import the allow-listed modules the candidate names, before imports are locked."""
    for name in _PRELOAD:
        try:
            importlib.import_module(name)
        except Exception:
            pass
    try:
        tree = ast.parse(code, "controller.py")
    except SyntaxError:
        return
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.append(node.module)
            names += [f"{node.module}.{a.name}" for a in node.names]
    for name in names:
        if name in ALLOWED_IMPORTS:
            try:
                importlib.import_module(name)
            except Exception:
                pass  # the candidate's own import reports it


def _guarded_import(name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0) -> Any:
    if level or name not in ALLOWED_IMPORTS:
        raise ImportError(f"sandbox: import of {name!r} is not allowed for a controller")
    return builtins.__import__(name, globals, locals, fromlist, level)


def _restricted_builtins() -> dict[str, Any]:
    """The candidate's builtins: no code execution, files or reflection; imports from the allow-list."""
    safe = dict(vars(builtins))
    for name in FORBIDDEN_NAMES:
        if name in safe:
            safe[name] = _refusing(name)
    safe["__import__"] = _guarded_import
    return safe


def _refusing(name: str) -> Any:
    def refused(*args: Any, **kwargs: Any) -> Any:
        raise PermissionError(f"sandbox: {name}() is not allowed for a controller")

    refused.__name__ = name
    return refused


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
        if event in ("exec", "compile") and _LOCKED:
            # Only library code that builds functions from templates (dataclasses, namedtuple,
            # scipy.stats argument parsers) and the harness itself may execute code objects.
            caller = sys._getframe(1).f_code.co_filename
            if not caller.startswith(_EXEC_CALLERS):
                raise PermissionError(f"sandbox: {event} is not allowed for a controller")
        elif event in ("open", "import", "os.listdir", "os.scandir", "glob.glob", "os.walk") and _LOCKED:
            raise PermissionError(f"sandbox: {event} {str(args[0])[:200]!r} is not allowed for a controller")
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


_LOCKED = False
_EXEC_CALLERS: tuple[str, ...] = ()


def _exec_callers() -> tuple[str, ...]:
    """Source files allowed to call ``exec`` once the candidate is loaded."""
    import collections
    import dataclasses

    out = [__file__, dataclasses.__file__, collections.__file__ or ""]
    for pkg in ("numpy", "scipy"):
        mod = sys.modules.get(pkg)
        if mod is not None and mod.__file__:
            out.append(os.path.dirname(mod.__file__) + os.sep)
    return tuple(p for p in out if p)


def _lock() -> None:
    """From now on refuse every file open, import and directory listing (the candidate is next)."""
    global _LOCKED, _EXEC_CALLERS
    _EXEC_CALLERS = _exec_callers()
    _LOCKED = True


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
    import hashlib  # noqa: F401  (used lazily by action_signature; imported before the lock)

    from autotts.discovery.leak import action_signature, perturb_question
    from autotts.env.session import ReplaySession
    from autotts.store.schema import ReplayQuestion

    code: str = job["code"]
    linecache.cache["controller.py"] = (len(code), None, code.splitlines(True), "controller.py")
    # A real module object, registered, because @dataclass looks the class's module up in sys.modules.
    module = types.ModuleType("candidate_controller")
    module.__file__ = "controller.py"
    sys.modules[module.__name__] = module
    namespace: dict[str, Any] = module.__dict__
    namespace["__builtins__"] = _restricted_builtins()
    where: dict[str, Any] = {"stage": "import"}
    try:
        compiled = compile(code, "controller.py", "exec")
    except BaseException as exc:
        return {"ok": False, "error": {"kind": "exception", "message": _tb_tail(exc), **where}}
    _preimport(code)
    _neuter_process_spawning()
    _lock()
    try:
        exec(compiled, namespace)
        cls = namespace.get(job["class_name"])
        if cls is None:
            return {"ok": False, "error": {"kind": "class", "message": f"class {job['class_name']} is not defined"}}
    except MemoryError:
        return {"ok": False, "error": {"kind": "memory", "message": "memory limit exceeded while importing", **where}}
    except BaseException as exc:
        return {"ok": False, "error": {"kind": "exception", "message": _tb_tail(exc), **where}}

    stores = [(s["name"], [ReplayQuestion(*fields) for fields in s["questions"]]) for s in job["stores"]]
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
                if beta is not None:
                    schedule = getattr(cls, "schedule", None)
                    if schedule is not None and str(bi) not in settings:
                        settings[str(bi)] = repr(schedule(beta))[:400]
                answers: list[list[str | None]] = [[None] * nq for _ in runs]
                cost = [[0] * nq for _ in runs]
                seq = [[0] * nq for _ in runs]
                traces: list[dict[str, Any]] = []
                for ri, run in ordered(list(enumerate(runs))):
                    for qi in ordered(list(range(nq))):
                        where = {"stage": "construct", "store": sname, "beta": beta, "run": run, "question": qi}
                        # A fresh instance per episode: no state carried from one run or question to the next.
                        controller = cls() if beta is None else cls(beta=beta)
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
    _deny_exec()
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
