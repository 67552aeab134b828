"""An asynchronous client for OpenAI-compatible ``/v1/completions`` over one or more servers.

This is what ``autotts collect`` and live sessions talk to (vLLM, SGLang, llama.cpp,
any hosted OpenAI-compatible API). Why it looks like this:

* **Several base URLs, bounded in-flight requests per server.** A request goes to the
  live server with the most free slots; each server takes at most ``max_in_flight``
  requests at once, so a big collection saturates every server without flooding any.
* **Dead servers are taken out and retried later.** A connection error, a timeout, a
  5xx or a 429 takes the server out until its backoff delay has passed; the retry goes
  to another live server at once, or waits for the first revival when none is left.
  The delay is the :class:`~autotts.llm.retry.RetryPolicy` delay, so ``Retry-After`` is
  honoured but capped.
* **One retry layer.** Attempts per request are bounded by the policy; callers never
  retry on their own. A refused request (4xx) raises
  :class:`~autotts.llm.errors.LLMRequestError` at once: retrying a wrong model name
  cannot help.
* **Token truth.** A :class:`Completion` carries ``usage.completion_tokens`` as the
  token count, the finish reason, and the generated token ids when the server returns
  them (vLLM with ``return_token_ids``); prompts may be text or token ids.

Cancelling the task awaiting :meth:`CompletionsClient.complete` is safe: the request's
slot is released and the connection closed.

The bytes travel over :class:`~autotts.llm.http11.Http11Client`, a lean keep-alive
HTTP/1.1 pool on asyncio protocols (a live session makes two requests per controller
action, and httpx's own cost per request was most of the proxy's overhead). A server
that the environment routes through a proxy (``HTTPS_PROXY`` ...) is spoken to through
httpx, which implements proxies. Either way the retries, failover and redaction above
are the same code.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from autotts.llm.errors import LLMError, LLMRequestError, LLMUnavailableError
from autotts.llm.http11 import Http11Client, uses_env_proxy
from autotts.llm.retry import Failure, HTTPReply, RetryPolicy, assess_exception, assess_response, decode_json
from autotts.llm.secrets import read_key, redact

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class EncodedPrompt:
    """A prompt given as its JSON encoding: a string literal, or an array of token ids.

    Why: a branch is grown on its own prefix, so every call of a live session or a
    collection sends the whole branch again, Δ tokens longer than last time. Encoding
    30k token ids afresh costs ~0.35 ms per call (tuple, list, JSON); a caller that keeps
    the encoding of the prefix appends that of the new tokens only
    (:class:`autotts.collect.recipe.Brancher` does). The request's bytes are the same.
    """

    json: bytes


@dataclass(frozen=True, slots=True)
class CompletionRequest:
    """One completion: a prompt (text, or token ids where the server accepts them) and sampling settings."""

    prompt: str | tuple[int, ...] | EncodedPrompt
    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    return_token_ids: bool = False
    """Ask for the generated token ids (vLLM's ``return_token_ids``); servers that ignore it return none."""
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Further body fields passed through verbatim (``top_k``, ``min_p``, ``repetition_penalty`` ...)."""

    def body(self, model: str) -> dict[str, Any]:
        """The JSON body of ``POST /v1/completions``."""
        body: dict[str, Any] = {
            "model": model,
            "prompt": _prompt_value(self.prompt),
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "n": 1,
            "stream": False,
        }
        if self.seed is not None:
            body["seed"] = self.seed
        if self.stop:
            body["stop"] = list(self.stop)
        if self.return_token_ids:
            body["return_token_ids"] = True
        body.update(self.extra)
        return body


def _prompt_value(prompt: str | tuple[int, ...] | EncodedPrompt) -> Any:
    if isinstance(prompt, EncodedPrompt):
        return orjson.Fragment(prompt.json)
    return list(prompt) if isinstance(prompt, tuple) else prompt


@dataclass(frozen=True, slots=True)
class Completion:
    """What came back: text, token count (the server's ``usage.completion_tokens``), finish reason."""

    text: str
    completion_tokens: int
    finish_reason: str
    """``stop`` (the model ended: EOS or a stop string), ``length`` (``max_tokens`` reached) or the server's word."""
    token_ids: tuple[int, ...] | None = None
    prompt_tokens: int = 0
    server: str = ""
    attempts: int = 1
    seconds: float = 0.0

    @property
    def stopped(self) -> bool:
        """True when the model ended the text itself (not cut by ``max_tokens``)."""
        return self.finish_reason == "stop"


@dataclass
class ClientStats:
    """Running totals of one client (for progress bars, money and the store metadata)."""

    requests: int = 0
    attempts: int = 0
    failures: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass
class _Server:
    base_url: str
    limit: int
    in_flight: int = 0
    dead_until: float = 0.0
    consecutive_failures: int = 0
    last_failure: str = ""


class _Slots:
    """Free request slots over all servers, handed out first come, first served.

    What :class:`asyncio.Semaphore` does, for less per request: its ``acquire`` is a
    coroutine and its release scans the waiters, on every request; here a free slot
    with nobody queued is taken without an await, and a freed slot goes straight to the
    first waiter still waiting (one wake-up per freed slot, however many are queued).
    """

    __slots__ = ("free", "loop", "waiters")

    def __init__(self, free: int, loop: asyncio.AbstractEventLoop) -> None:
        self.free = free
        self.loop = loop
        self.waiters: deque[asyncio.Future[None]] = deque()

    def take_now(self) -> bool:
        """Take a slot if one is free and nobody is queued before us."""
        if self.free > 0 and not self.waiters:
            self.free -= 1
            return True
        return False

    async def take(self) -> None:
        """Queue for a slot; returns holding it."""
        waiter = self.loop.create_future()
        self.waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.give()  # handed a slot, then cancelled before running: pass it on
            else:
                try:
                    self.waiters.remove(waiter)
                except ValueError:
                    pass
            raise

    def give(self) -> None:
        """Free a slot: to the first waiter still waiting, else to the pool."""
        waiters = self.waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.free += 1


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def parse_completion(data: Mapping[str, Any], url: str) -> tuple[str, str, tuple[int, ...] | None, int, int]:
    """``(text, finish_reason, token_ids, completion_tokens, prompt_tokens)`` of a completions reply.

    A reply without ``usage`` is an error: the token count is the truth a replay store
    is built on, and estimating it from text would silently change every cost.
    """
    try:
        choice = data["choices"][0]
        text = choice["text"]
    except (KeyError, IndexError, TypeError):
        raise LLMError(f"reply has no choices[0].text (keys: {sorted(data)})", url=url) from None
    if not isinstance(text, str):
        raise LLMError("choices[0].text is not a string", url=url)
    usage = data.get("usage")
    if not (usage.__class__ is dict or isinstance(usage, Mapping)) or "completion_tokens" not in usage:
        raise LLMError("reply has no usage.completion_tokens; the server must report token usage", url=url)
    ids_raw = choice.get("token_ids")
    ids = tuple(int(t) for t in ids_raw) if isinstance(ids_raw, list) else None
    finish = str(choice.get("finish_reason") or "length")
    return text, finish, ids, _int(usage.get("completion_tokens")), _int(usage.get("prompt_tokens"))


class CompletionsClient:
    """Async OpenAI-compatible completions over several base URLs (see the module docstring).

    ``base_urls`` are API roots such as ``http://host:8000/v1``. Use as an async context
    manager, or call :meth:`aclose`.
    """

    def __init__(
        self,
        base_urls: Sequence[str],
        model: str,
        *,
        api_key: str = "",
        max_in_flight: int = 8,
        policy: RetryPolicy | None = None,
        timeout_seconds: float = 600.0,
        sleep: Sleep | None = None,
        rng: random.Random | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not base_urls:
            raise ValueError("at least one base URL is needed")
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self.model = model
        self.policy = policy or RetryPolicy()
        self._key = api_key
        self._servers = [_Server(u.rstrip("/"), max_in_flight) for u in base_urls]
        self._sleep: Sleep = sleep or asyncio.sleep
        self._rng = rng or random.Random()
        self._sync_state: tuple[_Slots, asyncio.Event, asyncio.AbstractEventLoop] | None = None
        headers = {"Content-Type": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._timeout = httpx.Timeout(timeout_seconds, connect=min(30.0, timeout_seconds))
        self._limits = httpx.Limits(max_connections=max_in_flight * len(base_urls), max_keepalive_connections=None)
        self._headers = headers
        self._transport = transport
        try:
            self._fast = Http11Client(
                headers={**headers, "Accept": "application/json", "Accept-Encoding": "identity"},
                timeout=timeout_seconds,
                connect_timeout=min(30.0, timeout_seconds),
                max_idle=max_in_flight,
            )
        except ValueError:
            raise ValueError("the API key holds a line break or NUL; check its environment variable") from None
        self._slow: httpx.AsyncClient | None = None
        self._via_httpx: dict[str, bool] = {}
        self.stats = ClientStats()

    @classmethod
    def from_env(
        cls,
        base_urls: Sequence[str],
        model: str,
        *,
        api_key_env: str | None,
        env: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> CompletionsClient:
        """A client whose key is read from the environment variable *named* ``api_key_env``."""
        return cls(base_urls, model, api_key=read_key(api_key_env, env), **kwargs)

    def __repr__(self) -> str:  # never shows the key
        return f"CompletionsClient(model={self.model!r}, servers={[s.base_url for s in self._servers]!r})"

    @property
    def base_urls(self) -> tuple[str, ...]:
        """The servers, in configuration order."""
        return tuple(s.base_url for s in self._servers)

    def redact(self, text: str) -> str:
        """``text`` with this client's key removed (for callers that log server text)."""
        return redact(text, [self._key])

    async def __aenter__(self) -> CompletionsClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pools."""
        await self._fast.aclose()
        if self._slow is not None:
            await self._slow.aclose()
            self._slow = None

    # ------------------------------------------------------------------ scheduling
    # The slots of all servers queue requests FIFO and wake one waiter per freed
    # slot (thousands of queued requests must not all wake on every release). Past it,
    # choosing a server and taking its slot happen with no await in between, so no lock
    # is needed; releasing is synchronous, so it also runs when a task is cancelled.
    def _sync(self) -> tuple[_Slots, asyncio.Event]:
        loop = asyncio.get_running_loop()
        if self._sync_state is None or self._sync_state[2] is not loop:
            # Bound to the running loop, so a client may serve successive asyncio.run calls.
            self._sync_state = (_Slots(sum(s.limit for s in self._servers), loop), asyncio.Event(), loop)
        return self._sync_state[0], self._sync_state[1]

    async def _acquire(self) -> _Server:
        slots, changed = self._sync()
        if not slots.take_now():
            await slots.take()
        try:
            while True:
                now = time.monotonic()
                # The live server with the most free slots (the first of equals); a plain loop,
                # as this runs once per request.
                server = None
                live = False
                for s in self._servers:
                    if s.dead_until <= now:
                        live = True
                        if s.in_flight < s.limit and (server is None or s.in_flight < server.in_flight):
                            server = s
                if server is not None:
                    server.in_flight += 1
                    return server
                # Only while servers are out: slots exist, but on dead servers.
                changed.clear()
                timeout = None if live else max(0.0, min(s.dead_until for s in self._servers) - now)
                try:
                    await asyncio.wait_for(changed.wait(), timeout=timeout)
                except TimeoutError:
                    pass
        except BaseException:
            slots.give()
            raise

    def _release(self, server: _Server) -> None:
        server.in_flight -= 1
        slots, changed = self._sync()
        slots.give()
        changed.set()

    def _mark_failed(self, server: _Server, failure: Failure, attempt: int) -> float:
        """Take a failing server out for the policy's delay; return that delay."""
        wait = self.policy.delay(attempt, failure.retry_after, self._rng)
        server.consecutive_failures += 1
        server.last_failure = failure.message
        server.dead_until = time.monotonic() + wait
        if len(self._servers) > 1:
            log.warning("server %s taken out for %.1f s: %s", server.base_url, wait, failure.message)
        return wait

    # -------------------------------------------------------------------- requests
    def _uses_httpx(self, url: str) -> bool:
        """Whether ``url`` goes through httpx: a given test transport, or a proxy the environment names."""
        if self._transport is not None:
            return True
        verdict = self._via_httpx.get(url)  # per URL: a client requests a handful of them
        if verdict is None:
            verdict = self._via_httpx[url] = uses_env_proxy(url)
        return verdict

    async def _send(self, method: str, url: str, body: Mapping[str, Any] | None = None) -> HTTPReply:
        """One HTTP exchange (no retries); raises httpx's exception classes on transport failures."""
        if self._uses_httpx(url):
            if self._slow is None:
                self._slow = httpx.AsyncClient(
                    headers=self._headers, timeout=self._timeout, limits=self._limits, transport=self._transport
                )
            # orjson, as below: an EncodedPrompt is an orjson fragment.
            content = None if body is None else orjson.dumps(body if isinstance(body, dict) else dict(body))
            return await self._slow.request(method, url, content=content)
        # orjson: a token-id prompt of 30k ids encodes in ~0.15 ms instead of ~3 ms.
        data = None if body is None else orjson.dumps(body if isinstance(body, dict) else dict(body))
        return await self._fast.request(method, url, data)

    async def request_json(self, path: str, body: Mapping[str, Any]) -> tuple[dict[str, Any], _Server, int]:
        """POST ``body`` to ``path`` under a live server's base URL, with retries and failover.

        Returns the decoded reply, the server that answered and the attempts made.
        """
        last: Failure | None = None
        last_url = self._servers[0].base_url + path
        attempts = self.policy.max_retries + 1
        data: bytes | None = None  # the body encoded once for every attempt over the lean transport
        for attempt in range(attempts):
            server = await self._acquire()
            last_url = server.base_url + path
            self.stats.attempts += 1
            try:
                try:
                    if self._uses_httpx(last_url):
                        response: HTTPReply = await self._send("POST", last_url, body)
                    else:
                        if data is None:
                            # orjson: a token-id prompt of 30k ids encodes in ~0.15 ms instead of ~3 ms.
                            data = orjson.dumps(body if isinstance(body, dict) else dict(body))
                        response = await self._fast.request("POST", last_url, data)
                except httpx.HTTPError as exc:
                    last = assess_exception(exc, [self._key])
                else:
                    last = assess_response(response, [self._key])
                    if last is None:
                        server.consecutive_failures = 0
                        return decode_json(response, last_url, [self._key]), server, attempt + 1
            finally:
                self._release(server)
            self.stats.failures += 1
            if not last.retryable:
                raise LLMRequestError(last.message, url=last_url, status_code=last.status_code)
            wait = self._mark_failed(server, last, attempt)
            if attempt + 1 < attempts:
                retries = self.policy.max_retries
                log.warning("LLM call to %s failed (%s); retry %d/%d", last_url, last.message, attempt + 1, retries)
                if len(self._servers) == 1:
                    await self._sleep(wait)
        raise LLMUnavailableError(
            f"giving up after {attempts} attempts; last error: {last.message if last else 'none'}",
            url=last_url,
            status_code=last.status_code if last else None,
        )

    async def complete(self, request: CompletionRequest) -> Completion:
        """One completion, retried and failed over as described in the module docstring."""
        t0 = time.monotonic()
        data, server, attempts = await self.request_json("/completions", request.body(self.model))
        url = server.base_url + "/completions"
        text, finish, ids, completion_tokens, prompt_tokens = parse_completion(data, url)
        self.stats.requests += 1
        self.stats.prompt_tokens += prompt_tokens
        self.stats.completion_tokens += completion_tokens
        seconds = time.monotonic() - t0
        done = Completion(text, completion_tokens, finish, ids, prompt_tokens, server.base_url, attempts, seconds)
        self._completed(done)
        return done

    def _completed(self, done: Completion) -> None:
        """Called with every completion :meth:`complete` returns: a hook for subclasses.

        A plain call rather than an overridden coroutine, which would add a frame to every resumption.
        """

    async def tokenize(self, text: str) -> tuple[int, ...]:
        """Token ids of ``text`` without special tokens, from the server's ``/tokenize`` (vLLM, SGLang).

        The endpoint lives beside ``/v1``, at the server root.
        """
        body = {"model": self.model, "prompt": text, "add_special_tokens": False}
        last: LLMError | None = None
        for server in self._servers:
            root = server.base_url.removesuffix("/v1")
            try:
                response = await self._send("POST", root + "/tokenize", body)
            except httpx.HTTPError as exc:
                last = LLMUnavailableError(assess_exception(exc, [self._key]).message, url=root + "/tokenize")
                continue
            failure = assess_response(response, [self._key])
            if failure is not None:
                raise LLMRequestError(
                    f"{failure.message}; the server has no usable /tokenize endpoint, which token-id prompts need "
                    "(set token_prompts = false to send text prompts)",
                    url=root + "/tokenize",
                    status_code=failure.status_code,
                )
            data = decode_json(response, root + "/tokenize", [self._key])
            tokens = data.get("tokens")
            if not isinstance(tokens, list):
                raise LLMError("the /tokenize reply has no 'tokens' list", url=root + "/tokenize")
            return tuple(int(t) for t in tokens)
        raise last or LLMUnavailableError("no server to tokenize on")

    async def models(self) -> list[str]:
        """Model ids served by the first reachable server (``GET /v1/models``)."""
        last: Exception | None = None
        for server in self._servers:
            try:
                response = await self._send("GET", server.base_url + "/models")
            except httpx.HTTPError as exc:
                last = exc
                continue
            if response.status_code >= 400:
                return []
            data = decode_json(response, server.base_url + "/models", [self._key])
            items = data.get("data")
            return [str(m.get("id")) for m in items if isinstance(m, dict)] if isinstance(items, list) else []
        reason = assess_exception(last, [self._key]).message if isinstance(last, httpx.HTTPError) else "no server"
        raise LLMUnavailableError(
            "no server reachable: " + reason,
            url=self._servers[0].base_url,
        )
