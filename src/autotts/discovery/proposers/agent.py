"""Proposer that runs an external coding agent in a prepared workspace (the paper's own setup).

The workspace is a fresh temporary directory — outside the run directory, so the
agent cannot wander into held-out configuration — holding ``TASK.md`` (the rendered
task: environment, rules, seeds, history), ``seeds/``, ``history/`` and a
``controller.py`` to edit. The configured command line is run there with a timeout
(its whole process group is killed at the deadline); placeholders ``{workspace}``,
``{task_file}`` and ``{task}`` (the task text itself) are substituted into each
argument. Afterwards ``controller.py`` is the candidate, and the workspace is copied
into the candidate's folder as a snapshot. An agent may report its usage by writing
``usage.json`` (``input_tokens``, ``output_tokens``, ``cost_usd``) into the workspace.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from autotts.discovery.config import ProposerConfig
from autotts.discovery.errors import ProposerError
from autotts.discovery.proposers.base import ProposalRequest, ProposalResult
from autotts.discovery.records import Usage

log = logging.getLogger(__name__)

_LOG_TAIL = 100_000
_SNAPSHOT_MAX_FILE = 5_000_000


def _tail(path: Path, limit: int) -> str:
    try:
        data = path.read_bytes()
    except OSError:
        return ""
    return data[-limit:].decode("utf-8", "replace")


class AgentProposer:
    """Runs ``proposer.command`` in a workspace (``kind = "agent"``)."""

    kind = "agent"

    def __init__(self, cfg: ProposerConfig) -> None:
        if not cfg.command:
            raise ProposerError("proposer.command is empty; give the agent's command line")
        self.cfg = cfg

    def __repr__(self) -> str:
        return f"AgentProposer(command={self.cfg.command[0]!r})"

    def max_cost(self, request: ProposalRequest) -> float:
        """Unknown in advance: agents report usage afterwards, if at all."""
        return 0.0

    def close(self) -> None:
        """Nothing to release."""

    def _argv(self, ws: Path, task_text: str) -> list[str]:
        subs = {"workspace": str(ws), "task_file": str(ws / "TASK.md"), "task": task_text}
        argv = []
        for arg in self.cfg.command:
            for key, value in subs.items():
                arg = arg.replace("{" + key + "}", value)
            argv.append(arg)
        return argv

    def propose(self, request: ProposalRequest) -> ProposalResult:
        """Prepare the workspace, run the agent, read back ``controller.py``."""
        ws = Path(tempfile.mkdtemp(prefix="autotts-agent-"))
        logs = Path(tempfile.mkdtemp(prefix="autotts-agent-log-"))
        try:
            for rel, text in request.workspace_files.items():
                target = ws / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text, encoding="utf-8")
            start_code = request.workspace_files.get("controller.py", request.starting_code)
            if "controller.py" not in request.workspace_files:
                (ws / "controller.py").write_text(start_code, encoding="utf-8")
            task_text = request.workspace_files.get("TASK.md", request.prompt)
            argv = self._argv(ws, task_text)
            env = dict(os.environ)
            env["AUTOTTS_WORKSPACE"] = str(ws)
            env["AUTOTTS_TASK_FILE"] = str(ws / "TASK.md")
            t0 = time.monotonic()
            timed_out = False
            with open(logs / "stdout", "wb") as out, open(logs / "stderr", "wb") as errf:
                try:
                    proc = subprocess.Popen(
                        argv, cwd=ws, stdin=subprocess.DEVNULL, stdout=out, stderr=errf, env=env, start_new_session=True
                    )
                except OSError as exc:
                    raise ProposerError(
                        f"agent command {argv[0]!r} could not be started: {exc.strerror or exc}; check proposer.command"
                    ) from None
                try:
                    proc.wait(timeout=self.cfg.agent_timeout_seconds)
                except subprocess.TimeoutExpired:
                    timed_out = True
                finally:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
            seconds = time.monotonic() - t0
            stdout = _tail(logs / "stdout", _LOG_TAIL)
            stderr = _tail(logs / "stderr", _LOG_TAIL // 4)
            ending = f"exit code {proc.returncode}" + (", timed out" if timed_out else "")
            response = f"$ {' '.join(self.cfg.command)}\n[{ending}]\n"
            response += f"--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}\n"
            usage = self._usage(ws, seconds)
            ctrl = ws / "controller.py"
            code = ctrl.read_text(encoding="utf-8", errors="replace") if ctrl.is_file() else None
            message = ""
            if code is None:
                message = "the agent deleted controller.py"
            elif code.strip() == start_code.strip():
                message = "the agent left controller.py unchanged"
                code = None
            if timed_out:
                message = (message + "; " if message else "") + (
                    f"the agent timed out after {self.cfg.agent_timeout_seconds:g} s and was killed"
                )
            elif proc.returncode != 0:
                message = (message + "; " if message else "") + f"the agent exited with code {proc.returncode}"
            if request.slot_dir is not None:
                self._snapshot(ws, request.slot_dir / "workspace")
            return ProposalResult(response, code, usage, message if code is None else "")
        finally:
            shutil.rmtree(ws, ignore_errors=True)
            shutil.rmtree(logs, ignore_errors=True)

    def _usage(self, ws: Path, seconds: float) -> Usage:
        p = ws / "usage.json"
        if p.is_file():
            try:
                d = json.loads(p.read_text(encoding="utf-8"))
                return Usage(
                    calls=1,
                    input_tokens=int(d.get("input_tokens", 0)),
                    output_tokens=int(d.get("output_tokens", 0)),
                    money=float(d.get("cost_usd", 0.0)),
                    seconds=seconds,
                    attempts=1,
                    reported=True,
                )
            except (ValueError, TypeError, AttributeError):
                log.warning("ignoring malformed usage.json written by the agent")
        return Usage(calls=1, seconds=seconds, attempts=1, reported=False)

    @staticmethod
    def _snapshot(ws: Path, dest: Path) -> None:
        if dest.exists():
            shutil.rmtree(dest, ignore_errors=True)

        def ignore(directory: str, names: list[str]) -> list[str]:
            skip = []
            for n in names:
                p = Path(directory) / n
                if p.is_symlink() or (p.is_file() and p.stat().st_size > _SNAPSHOT_MAX_FILE) or n == "__pycache__":
                    skip.append(n)
            return skip

        shutil.copytree(ws, dest, ignore=ignore)
