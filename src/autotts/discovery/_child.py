"""The candidate process: runs one candidate's controller against a judge, holding no replay data.

Started by :mod:`autotts.discovery.sandbox` as ``python -s -P -m autotts.discovery._child JOB``
in a fresh session (its own process group) with a scrubbed environment and two pipe
descriptors to the judge. It

1. limits itself (CPU seconds, address space, output file size, no core files) and asks
   the kernel to kill it if the parent dies; sends ``print`` output to stderr;
2. compiles the candidate as ``controller.py``, imports what the candidate's (allow-listed)
   imports need, neuters ``_posixsubprocess.fork_exec``, closes every other descriptor and
   installs the seccomp filter of :mod:`autotts.discovery.seccomp` (no file can be opened,
   no socket, program or process started, no other process reached, no write but to the
   judge channel and stderr); then an audit hook and restricted builtins as a second,
   Python-level layer (the only one left under ``sandbox.isolation = "process-only"``);
3. runs the candidate module, and for every episode the judge announces builds a fresh
   controller and calls ``solve`` with a :class:`~autotts.env.judged.JudgedSession`; the
   answer goes back to the judge. Costs, traces and grading are the judge's.

The job file is JSON written by the parent: the candidate's source, its class name, the
limits and the channel descriptors — no store data of any kind.
"""

from __future__ import annotations

import builtins
import gc
import importlib
import json
import linecache
import os
import resource
import struct
import sys
import traceback
import types
from collections import deque
from functools import partial
from typing import Any

import greenlet  # type: ignore[import-untyped]

from autotts.discovery.validation import ALLOWED_IMPORTS, FORBIDDEN_NAMES, named_imports
from autotts.env import speedups
from autotts.env.judged import Channel, JudgedSession
from autotts.env.wire import OP_ADVANCE, OP_ANSWER, OP_FAIL, decode_batch, decode_replies, encode_requests

_MAX_ANSWER_CHARS = 500
_F64 = struct.Struct("<d")
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
    "autotts.env.judged",
    "autotts.store.schema",
    "autotts.discovery.seccomp",
)


def _preimport(code: str) -> None:
    """Import the allow-listed modules the candidate names, before imports are locked."""
    for name in _PRELOAD:
        try:
            importlib.import_module(name)
        except Exception:
            pass
    for name in named_imports(code):
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


def _fail(chan: Any, kind: str, message: str) -> None:
    chan.send(b"E" + json.dumps({"kind": kind, "message": message}).encode("utf-8"))


def _close_other_fds(keep: set[int]) -> None:
    """Close every descriptor but ``keep``: nothing opened before the filter stays reachable."""
    try:
        fds = [int(x) for x in os.listdir("/proc/self/fd")]
    except OSError:
        fds = list(range(3, 256))
    for fd in fds:
        if fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass


def _episode(cls: Any, beta: float | None, n_total: int, delta: int, link: Any, _start: Any = None) -> Any:
    """One episode in its greenlet: a fresh controller, ``solve``, and the final message (answer or failure).

    The final message has the shape of a request, ``(op, arg, payload)``: ``A`` with the
    answer's UTF-8 bytes (``arg`` -1: no answer) or ``E`` with the failure's JSON.
    """
    try:
        # A fresh instance per episode: no state carried from one run or question to the next.
        controller = cls() if beta is None else cls(beta=beta)
        answer = _answer_text(controller.solve(JudgedSession(link, n_total, delta)))
    except MemoryError:
        return _failure_msg("memory", "memory limit exceeded")
    except BaseException as exc:
        return _failure_msg("exception", _tb_tail(exc))
    if answer is None:
        return (OP_ANSWER, -1, b"")
    raw = answer.encode("utf-8", "replace")
    return (OP_ANSWER, len(raw), raw)


def _failure_msg(kind: str, message: str) -> tuple[int, int, bytes]:
    raw = json.dumps({"kind": kind, "message": message}).encode("utf-8")
    return (OP_FAIL, len(raw), raw)


#: Episodes per step frame. The judge's window of episodes is played as several groups of
#: this size, all in flight at once: while the judge serves one group's frame this process
#: runs the next group.
GROUP = 64

#: What an episode's link switches to the dispatcher with: the step is over, or the next
#: episode has not started yet (a greenlet is started from the dispatcher, never from
#: inside another episode, so that their stacks and recursion depths do not nest).
_STEP_DONE = object()
_START_NEXT = object()


class _PyRelay:
    """One group step: resume each waiting episode with its reply and collect its next request.

    An episode's session asks through :meth:`link`, which notes the request and switches
    straight into the *next* episode of the step with its reply — one greenlet switch per
    action instead of a round trip through a dispatcher. The last one of the step switches
    back to the dispatcher, which sends the frame. An episode that ends returns to the
    dispatcher (its parent) with its answer or failure, and the dispatcher carries on.

    With the C extension built, :class:`autotts.env._judgedc.Relay` does the same (the
    relay itself is then the sessions' link); this class is the pure-Python path.
    """

    __slots__ = ("args", "ask", "cur", "lets", "main", "ops", "payload", "sent", "todo")

    def __init__(self, main: Any, lets: list[Any]) -> None:
        self.main = main
        self.lets = lets
        self.cur = -1
        self.todo: Any = iter(())
        self.sent: list[int] = []
        self.ask: list[int] = []
        self.ops = bytearray()
        self.args: list[int] = []
        self.payload: list[bytes] = []

    def link(self, request: Any) -> Any:
        """The session's link: note ``request``, run the next episode; return this one's reply later."""
        slot = self.cur
        if type(request) is int:
            self.ops.append(OP_ADVANCE)
            self.args.append(request)
        else:
            op, arg, data = request
            self.ops.append(op)
            self.args.append(arg)
            if data:
                self.payload.append(data)
        self.sent.append(slot)
        self.ask.append(slot)
        nxt = next(self.todo, None)
        if nxt is None:
            return self.main.switch(_STEP_DONE)
        self.cur = nxt[0]
        g = self.lets[nxt[0]]
        if g:  # started and not finished: resume it directly
            return g.switch(nxt[1])
        return self.main.switch(_START_NEXT)

    def step(self, chan: Any, slots: list[int], replies: list[Any]) -> list[int] | None:
        """Run one step of ``slots``; send its frame. The slots that wait for a reply, or None after a failure."""
        self.sent = []
        self.ask = []
        self.ops = bytearray()
        self.args = []
        self.payload = []
        todo = self.todo = zip(slots, replies, strict=True)
        lets = self.lets
        for slot, reply in todo:
            self.cur = slot
            msg = lets[slot].switch(reply)
            while msg is _START_NEXT:
                msg = lets[self.cur].switch(None)
            if msg is _STEP_DONE:
                break
            # An episode ended (the one switched into last): its answer, or the job's end.
            op, arg, data = msg
            if op == OP_FAIL:
                chan.send(encode_requests([self.cur], bytes((op,)), [arg], data))
                return None
            self.sent.append(self.cur)
            self.ops.append(op)
            self.args.append(arg)
            if data:
                self.payload.append(data)
        chan.send(encode_requests(self.sent, self.ops, self.args, b"".join(self.payload)))
        return self.ask


def _run_batch(chan: Any, cls: Any, episodes: list[tuple[float | None, int, int]]) -> None:
    """Play the judge's episodes side by side, one greenlet each, one frame per group step.

    Each greenlet runs until its session needs the judge (see :class:`_PyRelay`). The judge
    answers every frame, in order, and starts new episodes in the slots answers freed
    (they join that group); a group whose episodes all ended and that got none is done.
    """
    main = greenlet.getcurrent()
    lets: list[Any] = []
    relay: Any
    if speedups.EXTENSION is not None:
        relay = link = speedups.EXTENSION.Relay(main, lets)
    else:
        relay = _PyRelay(main, lets)
        link = relay.link

    def spawn(beta: float | None, n_total: int, delta: int) -> Any:
        return greenlet.greenlet(partial(_episode, cls, beta, n_total, delta, link), parent=main)

    lets += [spawn(*e) for e in episodes]
    n = len(lets)
    runnable: deque[tuple[list[int], list[Any]]] = deque(
        (list(range(i, min(n, i + GROUP))), [None] * min(GROUP, n - i)) for i in range(0, n, GROUP)
    )
    in_flight: deque[list[int]] = deque()
    while runnable or in_flight:
        if runnable:
            slots, replies = runnable.popleft()
        else:
            slots = in_flight.popleft()
            replies, starts = decode_replies(chan.recv())
            if len(replies) != len(slots):
                raise EOFError("the judge's reply does not match the requests")
            for slot, beta, n_total, delta in starts:
                if slot >= len(lets) or not lets[slot].dead:
                    raise EOFError(f"the judge started an episode in slot {slot}, which is busy")
                lets[slot] = spawn(beta, n_total, delta)
                slots.append(slot)
                replies.append(None)
            if not slots:
                continue
        ask = relay.step(chan, slots, replies)
        if ask is None:
            return
        in_flight.append(ask)


def _serve(chan: Any, cls: Any) -> None:
    """Answer the judge: settings per β, then batches of episodes, until told to quit."""
    while True:
        msg = chan.recv()
        tag = msg[:1]
        if tag == b"q":
            return
        if tag == b"s":
            (beta,) = _F64.unpack(msg[1:])
            schedule = getattr(cls, "schedule", None)
            try:
                text = "" if schedule is None else repr(schedule(beta))[:400]
            except MemoryError:
                _fail(chan, "memory", "memory limit exceeded")
                return
            except BaseException as exc:
                _fail(chan, "exception", _tb_tail(exc))
                return
            chan.send(b"S" + text.encode("utf-8", "replace"))
            continue
        if tag != b"b":
            _fail(chan, "protocol", f"unexpected message {tag!r} from the judge")
            return
        _run_batch(chan, cls, decode_batch(msg[1:]))


def main(argv: list[str]) -> int:
    """Entry point: ``python -m autotts.discovery._child JOBFILE``."""
    with open(argv[1], encoding="utf-8") as fh:
        job = json.load(fh)
    return run(job, int(job["rfd"]), int(job["wfd"]))


def run(job: dict[str, Any], rfd: int, wfd: int) -> int:
    """Play ``job`` against the judge on the channel ``rfd``/``wfd``: limit, load, lock, serve.

    Called in a fresh interpreter (:func:`main`) or in a process forked from the fork
    server (:mod:`autotts.discovery.forkserver`), whose imports are already done.
    """
    _limit(job["limits"])
    sys.stdout = sys.stderr  # print() of a candidate goes to stderr: the only other writable descriptor

    chan = Channel(rfd, wfd)
    code: str = job["code"]
    linecache.cache["controller.py"] = (len(code), None, code.splitlines(True), "controller.py")
    try:
        compiled = compile(code, "controller.py", "exec")
    except BaseException as exc:
        _fail(chan, "exception", _tb_tail(exc))
        return 0
    _preimport(code)
    # Everything imported so far lives as long as the process: keep it out of the cyclic
    # collector's full passes, which would otherwise walk NumPy's and SciPy's objects again
    # and again while the candidate's episodes allocate (a candidate's gc.get_objects()
    # then sees fewer objects, never more).
    gc.freeze()
    # Episodes keep their reveals and trace events until they end, so most young objects
    # survive a collection; collecting less often saved ~10% of this process's CPU.
    gc.set_threshold(20_000, 50, 100)
    _neuter_process_spawning()
    _close_other_fds({0, 1, 2, rfd, wfd})
    if job["isolation"] == "seccomp":
        from autotts.discovery.seccomp import install

        why = install((2, wfd))
        if why:
            _fail(chan, "isolation", f"the seccomp filter could not be installed: {why}")
            return 0
    _install_audit_hook()
    _lock()
    # A real module object, registered, because @dataclass looks the class's module up in sys.modules.
    module = types.ModuleType("candidate_controller")
    module.__file__ = "controller.py"
    sys.modules[module.__name__] = module
    namespace: dict[str, Any] = module.__dict__
    namespace["__builtins__"] = _restricted_builtins()
    try:
        exec(compiled, namespace)
        cls = namespace.get(job["class_name"])
    except MemoryError:
        _fail(chan, "memory", "memory limit exceeded while importing")
        return 0
    except BaseException as exc:
        _fail(chan, "exception", _tb_tail(exc))
        return 0
    if cls is None:
        _fail(chan, "class", f"class {job['class_name']} is not defined")
        return 0
    chan.send(b"R" + job["isolation"].encode())
    try:
        _serve(chan, cls)
    except EOFError:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
