"""The fork server: candidate processes forked from one clean interpreter whose imports are done.

Why: a candidate process started from scratch spends about a second importing Python's
standard library, NumPy and SciPy before it plays a single episode, and a discovery run
starts several per candidate (smoke stage, β sweep, leak pass, one per β of the final
evaluation) — in ``autotts demo`` that start-up was most of what the judge added. The
fork server is started once per discovering process and import level (see
:data:`autotts.discovery._zygote.LEVELS`), exactly as a candidate process used to be
(``python -s -P -m autotts.discovery._zygote``, its own session, the scrubbed environment
of the sandbox, stdin from ``/dev/null``), imports what the candidates of its level may
import, and from then on only forks: every job gets a fresh child, which
limits itself, loads the candidate, installs the seccomp filter and plays the judge
exactly as a freshly started process does (:func:`autotts.discovery._child.run`).

What the server holds: imported modules, nothing else. It never sees replay data (the
judge stays in the parent) nor a job's source (it is given the path of the job file,
which only the child reads), so a child starts with no more than a fresh process importing
the same modules would have had (the server's own modules are dropped from the child's
``sys.modules``). Each child calls ``setsid`` (its own session and process group, killed
as a group) and dies with the server (``PR_SET_PDEATHSIG``), which exits, killing its
children, when the parent's end of the control socket closes — also when the parent dies.

Protocol, over ``SOCK_SEQPACKET`` socket pairs (one message per ``sendmsg``):

* parent → server, control socket: ``S`` + JSON ``{"job": path, "cwd": dir}`` with four
  descriptors attached: the judge channel's read and write ends, the stderr file, and
  the server's end of a fresh *status* socket pair made for this job;
* server → parent, status socket: ``P`` + pid once forked (``F`` + reason if the fork
  failed), then ``X`` + the wait status and CPU seconds once the server reaped the child;
* parent → server, status socket: ``K`` kills the child's process group. The server does
  it only while the child is not yet reaped, so a recycled pid is never hit. Closing the
  status socket early kills the child too;
* the server kills every child and exits when the control socket closes.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from autotts.discovery._zygote import EXIT_FORMAT, PID_FORMAT, level_for
from autotts.discovery.validation import named_imports

_PID = struct.Struct(PID_FORMAT)
_EXIT = struct.Struct(EXIT_FORMAT)
_READY_SECONDS = 120.0
_FORK_REPLY_SECONDS = 60.0


class ForkServerError(OSError):
    """The fork server could not be started or did not answer."""


# ---------------------------------------------------------------------- parent side
class ForkedChild:
    """A candidate process forked by the server: the parts of :class:`subprocess.Popen` the sandbox uses."""

    def __init__(self, pid: int, status: socket.socket) -> None:
        self.pid = pid
        self.returncode: int | None = None
        #: CPU seconds (user + system) the process used, known once it has ended.
        self.cpu_seconds: float | None = None
        self._status = status
        self._lock = threading.Lock()

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the child's end; its return code as Popen gives it (``-N``: killed by signal N)."""
        with self._lock:
            if self.returncode is not None:
                return self.returncode
            self._status.settimeout(timeout)
            try:
                msg = self._status.recv(64)
            except TimeoutError:
                raise subprocess.TimeoutExpired(f"candidate process {self.pid}", timeout or 0.0) from None
            except OSError:
                msg = b""
            if msg[:1] == b"X" and len(msg) == 1 + _EXIT.size:
                status, self.cpu_seconds = _EXIT.unpack_from(msg, 1)
                self.returncode = os.waitstatus_to_exitcode(status)
            else:  # the server went away; its children were killed with it
                self.returncode = -int(signal.SIGKILL)
            with contextlib.suppress(OSError):
                self._status.close()
            return self.returncode

    def kill(self) -> None:
        """Kill the child's process group (a no-op once it has ended)."""
        if self.returncode is None:
            with contextlib.suppress(OSError):
                self._status.send(b"K")


class ForkServer:
    """One fork server process, started on first use, restarted if it died."""

    def __init__(self, env: dict[str, str], level: str) -> None:
        self._env = env
        self._level = level
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._ctl: socket.socket | None = None
        self._owner = 0
        self._errlog: Path | None = None

    def spawn(self, job_path: str, cwd: str, rfd: int, wfd: int, errfd: int) -> ForkedChild:
        """Fork a candidate process for the job file ``job_path``; raises :class:`ForkServerError`."""
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            body = b"S" + json.dumps({"job": job_path, "cwd": cwd}).encode("utf-8")
            with self._lock:
                for attempt in (0, 1):
                    ctl = self._ensure()
                    try:
                        socket.send_fds(ctl, [body], [rfd, wfd, errfd, theirs.fileno()])
                        break
                    except OSError as exc:
                        self._stop_locked()
                        if attempt:
                            raise ForkServerError(f"the fork server stopped answering: {exc}") from None
            theirs.close()
            mine.settimeout(_FORK_REPLY_SECONDS)
            try:
                msg = mine.recv(4096)
            except OSError as exc:
                raise ForkServerError(f"no reply from the fork server: {exc}") from None
            if msg[:1] == b"P" and len(msg) == 1 + _PID.size:
                mine.settimeout(None)
                return ForkedChild(_PID.unpack_from(msg, 1)[0], mine)
            why = msg[1:].decode("utf-8", "replace") if msg[:1] == b"F" else "it closed the connection"
            raise ForkServerError(f"the fork server could not start a candidate process: {why}")
        except BaseException:
            mine.close()
            with contextlib.suppress(OSError):
                theirs.close()
            raise

    def _ensure(self) -> socket.socket:
        if (
            self._ctl is not None
            and self._owner == os.getpid()
            and self._proc is not None
            and self._proc.poll() is None
        ):
            return self._ctl
        self._stop_locked()
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        fd, name = tempfile.mkstemp(prefix="autotts-forkserver-", suffix=".log")
        self._errlog = Path(name)
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-s", "-P", "-m", "autotts.discovery._zygote", str(theirs.fileno()), self._level],
                cwd="/",
                stdin=subprocess.DEVNULL,
                stdout=fd,
                stderr=fd,
                env=self._env,
                start_new_session=True,
                pass_fds=(theirs.fileno(),),
            )
        finally:
            os.close(fd)
            theirs.close()
        self._ctl = mine
        self._owner = os.getpid()
        mine.settimeout(_READY_SECONDS)
        try:
            ready = mine.recv(64)
        except OSError:
            ready = b""
        mine.settimeout(None)
        if ready != b"R":
            tail = self._log_tail()
            self._stop_locked()
            raise ForkServerError(f"the fork server did not start{': ' + tail if tail else ''}")
        return mine

    def _log_tail(self) -> str:
        if self._errlog is None:
            return ""
        try:
            return self._errlog.read_text("utf-8", "replace")[-1500:].strip()
        except OSError:
            return ""

    def _stop_locked(self) -> None:
        if self._ctl is not None:
            with contextlib.suppress(OSError):
                self._ctl.close()
            self._ctl = None
        if self._proc is not None and self._owner == os.getpid():
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None
        if self._errlog is not None:
            with contextlib.suppress(OSError):
                self._errlog.unlink()
            self._errlog = None

    def stop(self) -> None:
        """Close the server (its children are killed with it)."""
        with self._lock:
            self._stop_locked()


_SERVERS: dict[str, ForkServer] = {}
_SERVERS_LOCK = threading.Lock()


@functools.lru_cache(maxsize=64)
def _level(code: str) -> str:
    """:func:`level_for` of the source's imports, parsed once per candidate (not per job and process)."""
    return level_for(named_imports(code))


def server(env: dict[str, str], code: str) -> ForkServer:
    """The process's fork server for candidate source ``code`` (by what it imports, :func:`level_for`).

    Created on first use, started on its first :meth:`ForkServer.spawn`, stopped at exit.
    """
    level = _level(code)
    with _SERVERS_LOCK:
        if level not in _SERVERS:
            _SERVERS[level] = ForkServer(env, level)
            atexit.register(_SERVERS[level].stop)
        return _SERVERS[level]
