"""A JSON HTTP server on 127.0.0.1 in a background thread: the plumbing every fake LLM server shares.

Subclasses implement :meth:`LocalJSONServer.handle` and answer with
:meth:`LocalJSONServer.send_json`. The server binds a free port (never a fixed one),
serves each connection in its own daemon thread and shuts down on ``stop()`` or at
the end of a ``with`` block.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger(__name__)


class _QuietServer(ThreadingHTTPServer):
    """A client that vanishes mid-request (a killed run) is normal here; log it instead of printing a traceback."""

    daemon_threads = True
    # The default listen backlog (5) drops connections when many clients connect at
    # once (a load test), which costs each of them a 1 s SYN retransmit.
    request_queue_size = 256

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("local test server: client %s went away", client_address, exc_info=True)


class LocalJSONServer:
    """Base of the test servers: lifecycle, URL, JSON body reading and JSON replies."""

    thread_name = "local-json-server"

    def __init__(self) -> None:
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> LocalJSONServer:
        """Bind to a free port on 127.0.0.1 and serve in a daemon thread."""
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes; with Nagle on, the client's delayed
            # ACK adds ~40 ms to every reply on loopback.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                owner.handle(self, "POST")

            def do_GET(self) -> None:
                owner.handle(self, "GET")

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        server = self._server
        self._thread = threading.Thread(
            target=lambda: server.serve_forever(poll_interval=0.05), name=self.thread_name, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Shut the server down."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        if self._server is None:
            raise RuntimeError("the server is not running; call start()")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def openai_base_url(self) -> str:
        """Base URL for an OpenAI-compatible client (``…/v1``)."""
        return self.url + "/v1"

    # ------------------------------------------------------------------ serving
    def handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        """Answer one request (subclasses override)."""
        self.send_json(h, 404, {"error": {"message": f"no route {method} {h.path}"}})

    @staticmethod
    def read_body(h: BaseHTTPRequestHandler) -> tuple[bytes, Any]:
        """The raw body and its decoded JSON (None when it is not JSON)."""
        length = int(h.headers.get("Content-Length", "0") or 0)
        raw = h.rfile.read(length) if length else b""
        try:
            return raw, (json.loads(raw.decode("utf-8")) if raw else {})
        except ValueError:
            return raw, None

    @staticmethod
    def send_json(
        h: BaseHTTPRequestHandler, status: int, payload: Any, headers: Mapping[str, str] | None = None
    ) -> None:
        """Send ``payload`` as a JSON reply."""
        data = json.dumps(payload).encode("utf-8")
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)
