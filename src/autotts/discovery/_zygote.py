"""The fork server's own process: import once, then fork one candidate process per job.

Started by :class:`autotts.discovery.forkserver.ForkServer` as
``python -s -P -m autotts.discovery._zygote FD LEVEL`` (``FD``: its end of the control socket,
``LEVEL``: what it preloads, :data:`LEVELS`);
the protocol is described there. Kept apart from the parent's side, with nothing but
``os`` and ``sys`` imported at the top, so that the modules a forked child inherits are
exactly those a freshly started candidate process would have imported — the candidate
module's imports, the judge's session and the allow-listed libraries — and the server's
own tools (sockets, selectors) are taken out of the child's ``sys.modules`` before the
candidate is loaded: importing them again would be an import after the lock, refused.
"""

from __future__ import annotations

import os
import sys
from typing import Any

#: The ``struct`` format of a pid on the status socket.
PID_FORMAT = "<q"
#: The ``struct`` format of a child's end: wait status, CPU seconds (user + system).
EXIT_FORMAT = "<qd"

#: Fork servers by the heavy modules they import before forking. A candidate is forked
#: from the first level that covers its imports (:func:`level_for`), so that its process
#: holds what a fresh process importing the same modules would hold (``scipy.special``
#: alone brings ``subprocess`` and ``socket`` into ``sys.modules``): the same modules are
#: importable after the lock, the same objects are on its heap.
LEVELS: dict[str, tuple[str, ...]] = {
    "light": (),
    "numpy": ("numpy",),
    # autotts.controllers.base imports the controllers package: NumPy and scipy.special.
    "scipy": ("numpy", "scipy.special", "autotts.controllers.base", "autotts.controllers.voting"),
}


def level_for(names: list[str]) -> str:
    """The fork-server level for a candidate importing ``names`` (allow-listed module names)."""
    if any(n.split(".")[0] == "scipy" or n.startswith("autotts.controllers") for n in names):
        return "scipy"
    if any(n.split(".")[0] == "numpy" for n in names):
        return "numpy"
    return "light"


def _preload(level: str) -> None:
    import importlib

    from autotts.discovery import _child

    _child._preimport("")  # what every candidate process imports
    for name in LEVELS[level]:
        try:
            importlib.import_module(name)
        except Exception as exc:  # an optional module missing: the candidate's own import reports it
            print(f"autotts fork server: could not preload {name}: {exc}", file=sys.stderr)


def main(argv: list[str]) -> int:
    """``FD LEVEL``: preload ``LEVEL``, then serve the control socket ``FD`` until it closes."""
    _preload(argv[2])
    baseline = frozenset(sys.modules)
    import gc
    import selectors
    import socket

    # Everything imported lives as long as the server and its children: keep it out of the
    # cyclic collector's passes, so that no child copies these pages by walking them.
    gc.freeze()
    return _Server(socket.socket(fileno=int(argv[1])), selectors.DefaultSelector(), baseline).serve()


class _Server:
    def __init__(self, ctl: Any, sel: Any, baseline: frozenset[str]) -> None:
        import struct

        self.ctl = ctl
        self.sel = sel
        #: ``sys.modules`` after the preload: what a fresh process would have imported.
        self.baseline = baseline
        self.pid = struct.Struct(PID_FORMAT)
        self.exit = struct.Struct(EXIT_FORMAT)
        #: pid -> [pidfd, status socket or None], for every child not yet reaped.
        self.children: dict[int, list[Any]] = {}

    def serve(self) -> int:
        import selectors

        self.sel.register(self.ctl, selectors.EVENT_READ, None)
        self.ctl.send(b"R")
        while True:
            for key, _events in self.sel.select():
                what = key.data
                if what is None:
                    if not self._job():
                        for pid in self.children:
                            _kill_group(pid)
                        return 0
                elif what[1] not in self.children:
                    continue  # reaped earlier in this same batch of events
                elif what[0] == "exit":
                    self._reap(what[1])
                else:
                    self._order(what[1])

    def _job(self) -> bool:
        """Take one request from the control socket; False when it closed."""
        import socket

        try:
            msg, fds, _flags, _addr = socket.recv_fds(self.ctl, 65536, 8)
        except OSError:
            return False
        if not msg:
            return False
        if msg[:1] != b"S" or len(fds) != 4:
            for fd in fds:
                _close(fd)
            return True
        self._fork(msg[1:], *fds)
        return True

    def _fork(self, body: bytes, rfd: int, wfd: int, errfd: int, sfd: int) -> None:
        import json
        import selectors
        import socket

        status = socket.socket(fileno=sfd)
        try:
            spec = json.loads(body.decode("utf-8"))
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
        except (OSError, ValueError) as exc:
            try:
                status.send(b"F" + str(exc).encode("utf-8", "replace")[:2000])
            except OSError:
                pass
            status.close()
            for fd in (rfd, wfd, errfd):
                _close(fd)
            return
        if pid == 0:
            self._child(spec, rfd, wfd, errfd, status)
        for fd in (rfd, wfd, errfd):
            _close(fd)
        pidfd = os.pidfd_open(pid)
        self.children[pid] = [pidfd, status]
        self.sel.register(pidfd, selectors.EVENT_READ, ("exit", pid))
        self.sel.register(status, selectors.EVENT_READ, ("status", pid))
        try:
            status.send(b"P" + self.pid.pack(pid))
        except OSError:
            pass

    def _reap(self, pid: int) -> None:
        pidfd, status = self.children.pop(pid)
        _, code, usage = os.wait4(pid, 0)
        self.sel.unregister(pidfd)
        os.close(pidfd)
        if status is not None:
            self.sel.unregister(status)
            try:
                status.send(b"X" + self.exit.pack(code, usage.ru_utime + usage.ru_stime))
            except OSError:
                pass
            status.close()

    def _order(self, pid: int) -> None:
        """A message on a child's status socket: ``K`` kills it; end of file kills it and forgets the socket."""
        entry = self.children[pid]
        status = entry[1]
        try:
            data = status.recv(64)
        except OSError:
            data = b""
        if data == b"K" or not data:
            _kill_group(pid)
        if not data:
            self.sel.unregister(status)
            status.close()
            entry[1] = None

    def _child(self, spec: dict[str, Any], rfd: int, wfd: int, errfd: int, status: Any) -> None:
        """In the forked child: a session of its own, stdio wired, the server's tools dropped; run the job."""
        code = 1
        try:
            os.setsid()
            self.ctl.close()
            self.sel.close()
            status.close()
            for pidfd, other in self.children.values():
                os.close(pidfd)
                if other is not None:
                    other.close()
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            os.close(null)
            os.dup2(errfd, 1)
            os.dup2(errfd, 2)
            os.close(errfd)
            os.chdir(spec["cwd"])
            import json

            from autotts.discovery import _child

            with open(spec["job"], encoding="utf-8") as fh:
                job = json.load(fh)
            # The server's own modules (sockets, selectors) are not the candidate's: importing
            # one after the lock must be refused, as in a fresh process.
            for name in [m for m in sys.modules if m not in self.baseline]:
                del sys.modules[name]
            code = _child.run(job, rfd, wfd)
        except BaseException:
            try:
                import traceback

                traceback.print_exc()
            except BaseException:
                pass
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            except BaseException:
                pass
            os._exit(code)


def _kill_group(pid: int) -> None:
    import signal

    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _close(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


if __name__ == "__main__":
    sys.exit(main(sys.argv))
