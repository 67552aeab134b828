r"""A replay store served as a live model: an OpenAI-compatible ``/v1/completions`` server on 127.0.0.1.

It is the bridge that proves "the deployment runs what discovery scored": a live
session pointed at this server must give exactly the answers, token costs and action
traces of offline replay with the same branch order.

How requests map onto the store
-------------------------------
* **Which question**: a request whose prompt holds no branch text yet is matched to the
  question whose text occurs in the prompt (the longest one when several do).
* **Which branch**: such a fresh request must carry an integer ``seed``; seed ``s`` opens
  store branch ``shuffle_order(N, s // N)[s % N]`` (``N`` = the question's branches),
  i.e. the live session that sends seed ``run * N + i`` for its ``i``-th branch sees
  exactly the branch order of replay run ``run``.
* **Where in the branch**: every interval the server generates starts with a marker
  ``[replay q<question> b<branch> #<interval>]``; a later request (a continuation or a
  probe) finds its question, branch and depth from the last marker of its prompt, so
  continuations need no seed.
* **Grow** (``max_tokens == Δ``): at depth ``c < K`` (``K`` probes stored) the reply is
  interval ``c``'s text, ``usage.completion_tokens = Δ`` and ``finish_reason="length"``;
  at ``c == K`` it is the branch's end, whose text carries ``\boxed{final}`` (nothing
  when the final answer is ``ERR``), ``completion_tokens = max(0, tokens - K·Δ)`` and
  ``finish_reason="stop"``. ``max_tokens > Δ`` generates the rest of the branch in one
  reply (``max(0, tokens - c·Δ)`` tokens): a full read. Usage is counted in the store's
  tokens, so the cost a client adds up is the replay cost. (Published stores sometimes
  hold fewer probes than their length has intervals; the end-of-branch reply then
  reports more tokens than ``max_tokens`` — the store is served as recorded.)
* **Probe**: a prompt that ends with ``probe_suffix`` is answered with the store's probe
  answer after the prompt's last interval, followed by ``}`` (greedy decoding writes
  the answer and closes the brace), or with text that holds no answer for ``ERR``.

Faults for tests: ``fault(info) -> Fault | None`` is consulted on every completion
request and may answer with an HTTP error, hang past the client's timeout, or drop the
connection without a reply.
"""

from __future__ import annotations

import logging
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

from autotts.env.protocols import shuffle_order
from autotts.store.schema import ERR, ReplayStore
from autotts.testing._http import LocalJSONServer

log = logging.getLogger(__name__)

_MARKER = re.compile(r"\[replay q(\d+) b(\d+) #(\d+)\]")


@dataclass(frozen=True)
class Fault:
    """An injected upstream failure: ``kind`` is ``"error"`` (HTTP ``status``), ``"hang"`` or ``"drop"``."""

    kind: str
    status: int = 500
    seconds: float = 30.0
    """How long a ``hang`` lasts before the server gives up on the request."""


@dataclass(frozen=True)
class RequestInfo:
    """What the fault hook sees of one completion request."""

    number: int
    """1-based count of completion requests served so far (this one included)."""
    question: int
    branch: int
    depth: int
    probe: bool


FaultHook = Callable[[RequestInfo], "Fault | None"]


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


class ReplayLLMServer(LocalJSONServer):
    """Serve ``store`` as a live model (see the module docstring); a context manager."""

    thread_name = "replay-llm"

    def __init__(
        self,
        store: ReplayStore,
        *,
        probe_suffix: str,
        model: str = "replay",
        latency: float = 0.0,
        fault: FaultHook | None = None,
    ) -> None:
        if not probe_suffix:
            raise ValueError("probe_suffix must be the non-empty suffix the probe step appends")
        super().__init__()
        self.store = store
        self.probe_suffix = probe_suffix
        self.model = model
        self.latency = latency
        self.fault = fault
        self._texts = sorted(((q.text, i) for i, q in enumerate(store.questions)), key=lambda t: -len(t[0]))
        self._lock = threading.Lock()
        self.completions = 0
        """Completion requests received (faulted ones included)."""

    def start(self) -> ReplayLLMServer:
        """Bind a free port on 127.0.0.1 and serve from a daemon thread."""
        super().start()
        return self

    def __enter__(self) -> ReplayLLMServer:
        return self.start()

    # ------------------------------------------------------------------- model
    def seed_for(self, question: int, run: int, position: int) -> int:
        """The seed that opens the ``position``-th branch of run ``run``'s order on ``question``."""
        n = len(self.store.questions[question].branches)
        return run * n + position

    def _locate(self, prompt: str, seed: Any) -> tuple[int, int, int, int]:
        """``(question, store branch, depth, end of the last marker)`` of a prompt."""
        markers = list(_MARKER.finditer(prompt))
        if markers:
            last = markers[-1]
            qi, b, j = (int(g) for g in last.groups())
            if qi >= len(self.store.questions) or b >= len(self.store.questions[qi].branches):
                raise _BadRequest(400, f"marker {last.group(0)!r} names no branch of this store")
            return qi, b, j + 1, last.end()
        qi = next((i for text, i in self._texts if text in prompt), -1)
        if qi < 0:
            raise _BadRequest(400, "the prompt holds none of this store's questions")
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise _BadRequest(400, "a request that opens a branch needs a non-negative integer 'seed'")
        n = len(self.store.questions[qi].branches)
        run, position = divmod(seed, n)
        return qi, shuffle_order(n, run)[position], 0, -1

    def _complete(self, body: dict[str, Any]) -> tuple[dict[str, Any], RequestInfo]:
        prompt = body.get("prompt")
        if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
            prompt = prompt[0]
        if not isinstance(prompt, str):
            raise _BadRequest(400, "'prompt' must be a string")
        max_tokens = body.get("max_tokens", 16)
        if not isinstance(max_tokens, int) or max_tokens < 1:
            raise _BadRequest(400, "'max_tokens' must be a positive integer")
        qi, b, depth, _ = self._locate(prompt, body.get("seed"))
        q = self.store.questions[qi]
        branch = q.branches[b]
        delta, k = q.delta, len(branch.probes)
        probe = prompt.endswith(self.probe_suffix)
        with self._lock:
            self.completions += 1
            number = self.completions
        info = RequestInfo(number, qi, b, depth, probe)
        if probe:
            if depth == 0:
                raise _BadRequest(400, "a probe needs at least one generated interval in its prompt")
            answer = branch.probes[depth - 1] if depth <= k else branch.final
            text = "" if answer == ERR else answer + "}"
            return self._payload(prompt, text, max(1, len(text) // 4), "stop"), info
        if depth > k:
            raise _BadRequest(400, f"branch b{b} of question {qi} has already ended")
        if max_tokens < delta:
            raise _BadRequest(400, f"this replay store grows branches by Δ={delta} tokens; got max_tokens={max_tokens}")
        if max_tokens == delta and depth < k:
            return self._payload(prompt, self._interval(qi, b, depth), delta, "length"), info
        # The rest of the branch: its remaining intervals and its end.
        text = "".join(self._interval(qi, b, j) for j in range(depth, k))
        text += f"[replay q{qi} b{b} #{k}] done."
        if branch.final != ERR:
            text += f" The answer is \\boxed{{{branch.final}}}."
        return self._payload(prompt, text, max(0, branch.tokens - depth * delta), "stop"), info

    @staticmethod
    def _interval(qi: int, b: int, j: int) -> str:
        return f"[replay q{qi} b{b} #{j}] thinking...\n"

    def _payload(self, prompt: str, text: str, completion_tokens: int, finish: str) -> dict[str, Any]:
        prompt_tokens = len(prompt.split())
        return {
            "id": f"cmpl-replay-{self.completions}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": self.model,
            "choices": [{"index": 0, "text": text, "finish_reason": finish, "logprobs": None}],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }

    # ----------------------------------------------------------------- serving
    def handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        """Route one request: ``GET /v1/models``, ``POST /v1/completions``."""
        path = h.path.split("?")[0].rstrip("/")
        # Read the body first, whatever the route: left unread, it would be taken for the
        # next request on this keep-alive connection.
        _, body = self.read_body(h) if method == "POST" else (b"", None)
        if method == "GET" and path == "/v1/models":
            self._send(h, 200, {"object": "list", "data": [{"id": self.model, "object": "model"}]})
            return
        if method != "POST" or path != "/v1/completions":
            self._send(h, 404, {"error": {"message": f"no route {method} {h.path}"}})
            return
        try:
            if not isinstance(body, dict):
                raise _BadRequest(400, "the body must be a JSON object")
            payload, info = self._complete(body)
        except _BadRequest as exc:
            self._send(h, exc.status, {"error": {"message": str(exc), "type": "invalid_request_error"}})
            return
        fault = self.fault(info) if self.fault is not None else None
        if fault is not None:
            if fault.kind == "drop":
                # Close the socket without a reply: the client sees a dropped connection.
                h.close_connection = True
                try:
                    h.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            if fault.kind == "hang":
                time.sleep(fault.seconds)
            self._send(h, fault.status, {"error": {"message": "injected fault", "type": "server_error"}})
            return
        if self.latency:
            time.sleep(self.latency)
        self._send(h, 200, payload)

    def _send(self, h: BaseHTTPRequestHandler, status: int, payload: Any) -> None:
        try:
            self.send_json(h, status, payload)
        except OSError:  # the client gave up on this request (a cancelled branch)
            log.debug("replay server: client went away before the reply")
