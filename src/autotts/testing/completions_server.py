"""Base of the fake OpenAI-compatible *completions* servers: HTTP routes, tokenisation, request checks.

A subclass only decides what the model writes (:meth:`CompletionsServer.generate`);
this base speaks the protocol the way vLLM does, with switches for the ways other
servers differ:

* ``POST /v1/completions`` with a text or token-id prompt; ``usage`` always reported;
  ``choices[0].token_ids`` returned when the request sets ``return_token_ids`` and
  ``return_token_ids=True`` (vLLM);
* ``POST /tokenize`` at the server root (vLLM, SGLang), only when ``accept_token_ids``;
* ``GET /v1/models``; a request naming another model gets vLLM's 404;
* ``accept_token_ids=False`` refuses token-id prompts like llama.cpp's server (422);
* ``fail_next(n, status, headers)`` injects failures (429 with ``Retry-After``, 503 ...);
* ``latency`` delays every completion, so that a client can be killed mid-run.

Tokens are bytes (:class:`ByteTokenizer`): with ASCII text one character is one token,
which makes token counts in tests readable.
"""

from __future__ import annotations

import abc
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from autotts.testing._http import LocalJSONServer


class ByteTokenizer:
    """Token ids are UTF-8 bytes: ``encode("ab") == [97, 98]``."""

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``."""
        return list(text.encode("utf-8"))

    def decode(self, ids: Sequence[int]) -> str:
        """Text of token ids (invalid UTF-8 replaced)."""
        return bytes(i & 0xFF for i in ids).decode("utf-8", errors="replace")


@dataclass(frozen=True, slots=True)
class CompletionCall:
    """One decoded completions request, as :meth:`CompletionsServer.generate` sees it."""

    prompt: str
    prompt_ids: tuple[int, ...] | None
    """The prompt's token ids when it was sent as ids, else None."""
    max_tokens: int
    temperature: float
    seed: int | None
    body: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Generation:
    """What the fake model writes: token ids and why it stopped (``stop`` or ``length``)."""

    ids: Sequence[int]
    finish_reason: str


@dataclass(frozen=True, slots=True)
class _Fault:
    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    message: str = "injected failure"


class CompletionsServer(LocalJSONServer, abc.ABC):
    """The protocol half of a fake completions server (see the module docstring)."""

    thread_name = "fake-completions"

    def __init__(
        self,
        *,
        model: str = "scripted",
        accept_token_ids: bool = True,
        return_token_ids: bool = True,
        latency: float = 0.0,
        tokenizer: ByteTokenizer | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.accept_token_ids = accept_token_ids
        self.return_token_ids = return_token_ids
        self.latency = latency
        self.tokenizer = tokenizer or ByteTokenizer()
        self.calls: list[CompletionCall] = []
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()

    def start(self) -> CompletionsServer:
        """Bind to a free port on 127.0.0.1 and serve in a daemon thread."""
        super().start()
        return self

    def __enter__(self) -> CompletionsServer:
        return self.start()

    def fail_next(self, n: int, status: int = 503, headers: Mapping[str, str] | None = None) -> None:
        """Answer the next ``n`` completions requests with HTTP ``status`` (and ``headers``)."""
        with self._lock:
            self._faults.extend(_Fault(status, dict(headers or {})) for _ in range(n))

    def clear_faults(self) -> None:
        """Drop the failures not yet served."""
        with self._lock:
            self._faults.clear()

    @abc.abstractmethod
    def generate(self, call: CompletionCall) -> Generation:
        """What the model writes for ``call``: the one thing a concrete server defines."""

    # ------------------------------------------------------------------ serving
    def handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        """Route one request."""
        path = h.path.split("?")[0].rstrip("/")
        if method == "GET" and path == "/v1/models":
            self.send_json(h, 200, {"object": "list", "data": [{"id": self.model, "object": "model"}]})
            return
        if method != "POST":
            self.send_json(h, 404, {"error": {"message": f"no route {method} {h.path}"}})
            return
        _, body = self.read_body(h)
        if not isinstance(body, dict):
            self.send_json(h, 400, {"error": {"message": "body is not a JSON object"}})
            return
        if path == "/tokenize" and self.accept_token_ids:
            ids = self.tokenizer.encode(str(body.get("prompt", "")))
            self.send_json(h, 200, {"tokens": ids, "count": len(ids), "max_model_len": 1 << 20})
            return
        if path != "/v1/completions":
            self.send_json(h, 404, {"error": {"message": f"no route {method} {h.path}"}})
            return
        self._complete(h, body)

    def _complete(self, h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        with self._lock:
            fault = self._faults.pop(0) if self._faults else None
        if fault is not None:
            self.send_json(h, fault.status, {"error": {"message": fault.message}}, fault.headers)
            return
        if body.get("model") != self.model:
            self.send_json(
                h, 404, {"error": {"message": f"The model `{body.get('model')}` does not exist.", "code": 404}}
            )
            return
        prompt = body.get("prompt")
        if isinstance(prompt, list) and all(isinstance(t, int) for t in prompt):
            if not self.accept_token_ids:
                self.send_json(h, 422, {"detail": "prompt: Input should be a valid string (token ids not supported)"})
                return
            prompt_ids: tuple[int, ...] | None = tuple(prompt)
            text = self.tokenizer.decode(prompt)
        elif isinstance(prompt, str):
            prompt_ids, text = None, prompt
        else:
            self.send_json(h, 400, {"error": {"message": "prompt must be a string or a list of token ids"}})
            return
        try:
            max_tokens = int(body.get("max_tokens", 16))
            temperature = float(body.get("temperature", 1.0))
            seed = None if body.get("seed") is None else int(body["seed"])
        except (TypeError, ValueError):
            self.send_json(h, 400, {"error": {"message": "bad max_tokens, temperature or seed"}})
            return
        call = CompletionCall(text, prompt_ids, max_tokens, temperature, seed, body)
        with self._lock:
            self.calls.append(call)
        if self.latency:
            time.sleep(self.latency)
        try:
            gen = self.generate(call)
        except ValueError as exc:  # the fake model cannot continue this prompt: a client bug worth a loud 400
            self.send_json(h, 400, {"error": {"message": str(exc)}})
            return
        ids = list(gen.ids)[:max_tokens]
        n_prompt = len(prompt_ids) if prompt_ids is not None else len(self.tokenizer.encode(text))
        choice: dict[str, Any] = {
            "index": 0,
            "text": self.tokenizer.decode(ids),
            "finish_reason": gen.finish_reason,
            "logprobs": None,
        }
        if body.get("return_token_ids") and self.return_token_ids:
            choice["token_ids"] = ids
        payload = {
            "id": f"cmpl-fake-{len(self.calls)}",
            "object": "text_completion",
            "model": self.model,
            "choices": [choice],
            "usage": {"prompt_tokens": n_prompt, "completion_tokens": len(ids), "total_tokens": n_prompt + len(ids)},
        }
        self.send_json(h, 200, payload)
