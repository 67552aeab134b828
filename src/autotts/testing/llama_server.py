"""Run llama.cpp's OpenAI-compatible server (``python -m llama_cpp.server``) as a subprocess on 127.0.0.1.

For tests and benchmarks of collection against a real inference engine: the server is
started on a free port with one model (e.g. :func:`~autotts.testing.tiny_gguf.write_tiny_llama`),
waited for until ``GET /v1/models`` answers, and stopped (terminated, then killed) on
exit. Its output goes to a log file, never to a pipe that could fill up.

``interrupt_requests`` is switched off: by default llama-cpp-python aborts a running
completion when the next request arrives, which a concurrent client must not suffer.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LlamaCppServer:
    """``with LlamaCppServer(model_path) as srv: srv.base_url`` (see the module docstring)."""

    def __init__(
        self,
        model: str | os.PathLike[str],
        *,
        alias: str = "tiny",
        n_ctx: int = 4096,
        threads: int = 1,
        startup_timeout: float = 120.0,
        log_path: str | os.PathLike[str] | None = None,
    ) -> None:
        self.model = Path(model)
        self.alias = alias
        self.n_ctx = n_ctx
        self.threads = threads
        self.startup_timeout = startup_timeout
        self.log_path = Path(log_path) if log_path else Path(tempfile.mkstemp(prefix="llama-server-", suffix=".log")[1])
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``."""
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> LlamaCppServer:
        """Start the server and wait until it serves the model."""
        self.port = free_port()
        cmd = [
            sys.executable, "-m", "llama_cpp.server",
            "--model", str(self.model), "--model_alias", self.alias,
            "--host", "127.0.0.1", "--port", str(self.port),
            "--n_ctx", str(self.n_ctx), "--n_threads", str(self.threads), "--n_threads_batch", str(self.threads),
            "--interrupt_requests", "False", "--verbose", "False",
        ]  # fmt: skip
        with self.log_path.open("wb") as log:
            self._proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"llama.cpp server exited with code {self._proc.returncode}; log: {self.log_path}\n"
                    + self.log_path.read_text(errors="replace")[-2000:]
                )
            try:
                if httpx.get(self.base_url + "/models", timeout=2.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"llama.cpp server did not start within {self.startup_timeout:.0f} s; log: {self.log_path}")

    def stop(self) -> None:
        """Terminate the server (kill it if it does not exit within 10 s)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def __enter__(self) -> LlamaCppServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
