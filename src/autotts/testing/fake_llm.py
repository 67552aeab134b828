r"""A scripted LLM server on 127.0.0.1, speaking OpenAI chat-completions and Anthropic Messages.

It is a real HTTP server in a background thread, so proposers are tested through
their real HTTP code (headers, retries, timeouts, JSON) without any network::

    reply = "Here it is:\n```python\n" + code + "\n```\n"  # a fenced code block, as a model writes it
    with FakeLLMServer([reply, Reply(status=429), "no code here"], api_key="sk-test") as srv:
        cfg = ProposerConfig(kind="openai", base_url=srv.openai_base_url, model="m", api_key_env="KEY")

Replies are served in order (``cycle=True`` starts over when they run out; otherwise
the server answers 500). ``responder`` may instead compute a reply from the request.
Every request is recorded (path, headers, decoded JSON body) for assertions.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from autotts.testing._http import LocalJSONServer


@dataclass(frozen=True)
class Reply:
    """One scripted reply: a text answer, or an HTTP error (``status`` ≥ 400), after ``delay`` seconds."""

    text: str = ""
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    error: str = "scripted error"
    delay: float = 0.0


@dataclass(frozen=True)
class RecordedRequest:
    """A request the server received."""

    path: str
    headers: Mapping[str, str]
    body: Any

    def text(self) -> str:
        """Every message text of the request, concatenated (for "what did the explorer see" checks)."""
        b = self.body if isinstance(self.body, dict) else {}
        parts = [str(b.get("system", ""))]
        for m in b.get("messages", []) or []:
            content = m.get("content", "") if isinstance(m, dict) else ""
            if isinstance(content, list):
                parts += [str(c.get("text", "")) for c in content if isinstance(c, dict)]
            else:
                parts.append(str(content))
        return "\n".join(parts)


Responder = Callable[[RecordedRequest], "Reply | str"]


class FakeLLMServer(LocalJSONServer):
    """The scripted server (see the module docstring)."""

    thread_name = "fake-llm"

    def __init__(
        self,
        replies: Sequence[Reply | str] = (),
        *,
        responder: Responder | None = None,
        api_key: str | None = None,
        cycle: bool = False,
    ) -> None:
        self._replies = [r if isinstance(r, Reply) else Reply(text=r) for r in replies]
        self._responder = responder
        super().__init__()
        self._api_key = api_key
        self._cycle = cycle
        self._next = 0
        self._lock = threading.Lock()
        self.requests: list[RecordedRequest] = []

    def start(self) -> FakeLLMServer:
        """Bind to a free port on 127.0.0.1 and serve in a daemon thread."""
        super().start()
        return self

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    @property
    def anthropic_base_url(self) -> str:
        """Base URL for an Anthropic client."""
        return self.url

    # ------------------------------------------------------------------ serving
    def _reply_for(self, req: RecordedRequest) -> Reply:
        if self._responder is not None:
            r = self._responder(req)
            return r if isinstance(r, Reply) else Reply(text=r)
        with self._lock:
            if self._next >= len(self._replies):
                if not self._cycle or not self._replies:
                    return Reply(status=500, error="fake server: no scripted reply left")
                self._next = 0
            reply = self._replies[self._next]
            self._next += 1
        return reply

    def handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        """Serve one chat-completions or Messages request from the script."""
        raw, body = self.read_body(h)
        req = RecordedRequest(h.path, {k.lower(): v for k, v in h.headers.items()}, body)
        with self._lock:
            self.requests.append(req)
        anthropic = h.path.rstrip("/").endswith("/messages") and "chat" not in h.path
        if not h.path.rstrip("/").endswith(("/chat/completions", "/messages")):
            self.send_json(h, 404, {"error": {"message": f"no route {h.path}"}})
            return
        if body is None:
            self.send_json(h, 400, {"error": {"message": "body is not JSON"}})
            return
        if self._api_key is not None:
            given = req.headers.get("x-api-key") if anthropic else req.headers.get("authorization", "")
            expected = self._api_key if anthropic else f"Bearer {self._api_key}"
            if given != expected:
                self.send_json(h, 401, {"error": {"type": "authentication_error", "message": "invalid api key"}})
                return
        reply = self._reply_for(req)
        if reply.delay:
            time.sleep(reply.delay)
        if reply.status >= 400:
            self.send_json(h, reply.status, {"error": {"message": reply.error}}, reply.headers)
            return
        tin = max(1, len(raw) // 4)
        tout = max(1, len(reply.text) // 4)
        model = str(body.get("model", "fake"))
        if anthropic:
            payload: dict[str, Any] = {
                "id": f"msg_fake_{len(self.requests)}",
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [{"type": "text", "text": reply.text}],
                "stop_reason": "end_turn",
                "usage": {"input_tokens": tin, "output_tokens": tout},
            }
        else:
            payload = {
                "id": f"chatcmpl-fake-{len(self.requests)}",
                "object": "chat.completion",
                "model": model,
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": reply.text}, "finish_reason": "stop"}
                ],
                "usage": {"prompt_tokens": tin, "completion_tokens": tout, "total_tokens": tin + tout},
            }
        self.send_json(h, 200, payload, reply.headers)
