"""The OpenAI-compatible test-time-scaling proxy (FastAPI).

A client sends an ordinary chat completion; the proxy runs the configured controller
on the last user message through a live session against the upstream server(s) and
answers with an ordinary chat completion: the chosen answer as the assistant message,
``usage`` with every token spent upstream (branches, probes, prompts), and an
``autotts`` field (controller, β, branches, stop reason, trace summary).

Concurrency (why it looks like this): controllers are blocking code, and every model
call runs on this app's event loop, where one async HTTP client serves every episode.
Where the controller itself runs is :attr:`ProxyConfig.placement`
(:class:`~autotts.online.runner.Placement`). By default a built-in controller runs on
the loop's own thread, in a greenlet per episode: an action starts its model calls as
tasks and switches back to the loop, and their completion switches into it again — no
thread hop per action, which on a small VM is most of the proxy's cost per action.
Any other controller (a file, a discovered controller) runs in a worker thread of a pool
sized to ``max_concurrency``, so that its computing between actions cannot hold up other
requests and the deadline watchdog can answer it with 504 whatever it does. A controller
on the loop that holds it longer than :data:`LOOP_HOLD_LIMIT` in one go is logged and
runs in worker threads from the next request on (the one running cannot be moved; it is
answered when it next acts, its deadline having passed by then).

A request beyond ``max_concurrency`` is answered at once with 429 and ``Retry-After``
rather than queued, so latency stays bounded under overload. A client that disconnects,
or a shutdown that runs out of grace, aborts its episode: in-flight upstream calls are
cancelled and the episode ends at once (its greenlet finishes, or its worker thread is released).

Routes: ``POST /v1/chat/completions`` (``stream`` sends the final message as
server-sent events, with keep-alive comments while the controller works),
``GET /v1/models``, ``GET /health``, ``GET /metrics``. With API keys configured every
``/v1`` route needs ``Authorization: Bearer <key>``; keys are compared in constant time
and never logged.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from autotts.controllers.spec import ControllerSpec
from autotts.errors import ControllerError, ControllerSpecError
from autotts.online.errors import UpstreamError
from autotts.online.proxy.config import ProxyConfig, RequestError
from autotts.online.proxy.metrics import ProxyMetrics
from autotts.online.runner import LiveResult, run_episode, runs_on_loop, start_episode
from autotts.online.session import LiveLimits, LiveSession
from autotts.online.steps import BranchSteps

log = logging.getLogger(__name__)

_KEEPALIVE_SECONDS = 5.0
_WATCHDOG_GRACE = 5.0

#: Seconds a controller on the event loop may compute between two actions before it is moved to threads.
LOOP_HOLD_LIMIT = 0.05


class _Episode:
    """One request's episode: its session, and the future of its result (greenlet or worker thread)."""

    def __init__(self, session: LiveSession, future: asyncio.Future[LiveResult]) -> None:
        self.session = session
        self.future = future


class ProxyState:
    """What the routes share: config, upstream steps, worker pool, metrics, live episodes."""

    def __init__(self, config: ProxyConfig) -> None:
        self.config = config
        self.steps: BranchSteps | None = None
        self.metrics = ProxyMetrics()
        self.pool = ThreadPoolExecutor(max_workers=config.max_concurrency, thread_name_prefix="autotts-episode")
        self.in_flight = 0
        self.episodes: set[_Episode] = set()
        self.draining = False
        self.moved_to_threads: set[str] = set()
        """Labels of controller specs that held the event loop too long; they run in worker threads now."""

    def abort_all(self, reason: str) -> None:
        """Abort every running episode (shutdown)."""
        for ep in list(self.episodes):
            ep.session.abort(reason)


def _error(exc: RequestError, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status, headers=headers)


def _check_auth(state: ProxyState, request: Request) -> None:
    keys = state.config.api_keys
    if not keys:
        return
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    ok = False
    if scheme.lower() == "bearer" and given:
        for key in keys:  # every key compared, in constant time each
            ok |= hmac.compare_digest(given.strip().encode(), key.encode())
    if not ok:
        raise RequestError(
            401, "missing or invalid API key (send Authorization: Bearer <key>)", type="authentication_error"
        )


async def _read_body(request: Request, limit: int) -> dict[str, Any]:
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > limit):
        raise RequestError(413, f"the request body is larger than this server's limit of {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(413, f"the request body is larger than this server's limit of {limit} bytes")
        chunks.append(chunk)
    try:
        body = json.loads(b"".join(chunks))
    except (ValueError, UnicodeDecodeError):
        raise RequestError(400, "the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise RequestError(400, "the request body must be a JSON object")
    return body


def _question(body: dict[str, Any]) -> str:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError(400, "'messages' must be a non-empty list of chat messages", param="messages")
    for m in reversed(messages):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            raise RequestError(400, "every message needs a 'role' and a 'content'", param="messages")
        if m["role"] != "user":
            continue
        content = m.get("content")
        if isinstance(content, list):
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
        if not isinstance(content, str) or not content.strip():
            raise RequestError(400, "the last user message has no text", param="messages")
        return content
    raise RequestError(400, "'messages' holds no user message to answer", param="messages")


def _completion(rid: str, model: str, spec: ControllerSpec, result: LiveResult, reasoning: bool) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": result.answer or ""}
    if reasoning and result.reasoning:
        message["reasoning_content"] = result.reasoning
    return {
        "id": rid,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}],
        "usage": _usage(result),
        "autotts": _autotts(spec, result),
    }


def _usage(result: LiveResult) -> dict[str, int]:
    return {
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": result.completion_tokens,
        "total_tokens": result.prompt_tokens + result.completion_tokens,
    }


def _autotts(spec: ControllerSpec, result: LiveResult) -> dict[str, Any]:
    return {
        "controller": spec.label,
        "beta": spec.params.get("beta"),
        "branches": result.branches,
        "stop_reason": result.stop_reason,
        "trace": result.summary(),
    }


def create_app(config: ProxyConfig, connect: Callable[[], Awaitable[BranchSteps]]) -> FastAPI:
    """The proxy app serving ``config`` (see the module docstring).

    ``connect`` builds the upstream steps on the server's event loop at startup (a
    :class:`~autotts.online.upstream.RecipeSteps` in production); an ``aclose()`` it
    has is awaited at shutdown.
    """
    state = ProxyState(config)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.steps = await connect()
        try:
            yield
        finally:
            state.draining = True
            state.abort_all("shutdown")
            state.pool.shutdown(wait=False, cancel_futures=True)
            close = getattr(state.steps, "aclose", None)
            if close is not None:
                await close()

    app = FastAPI(title="autotts test-time-scaling proxy", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.proxy = state
    m = state.metrics

    @app.exception_handler(RequestError)
    async def _on_request_error(request: Request, exc: RequestError) -> JSONResponse:
        return _error(exc)

    @app.get("/health")
    async def health() -> JSONResponse:
        body: dict[str, Any] = {
            "status": "draining" if state.draining else "ok",
            "in_flight": state.in_flight,
            "max_concurrency": config.max_concurrency,
        }
        if state.draining:
            body["message"] = (
                f"shutting down: finishing {state.in_flight} in-flight request(s), refusing new ones; "
                "send traffic elsewhere"
            )
        return JSONResponse(body, status_code=503 if state.draining else 200)

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/models")
    async def models(request: Request) -> JSONResponse:
        _check_auth(state, request)
        return JSONResponse(
            {"object": "list", "data": [{"id": config.model, "object": "model", "created": 0, "owned_by": "autotts"}]}
        )

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        t0 = time.monotonic()
        try:
            _check_auth(state, request)
            body = await _read_body(request, config.max_body_bytes)
            question = _question(body)
            spec, limits = config.resolve(body)
            stream = body.get("stream", False)
            if not isinstance(stream, bool):
                raise RequestError(400, "'stream' must be true or false", param="stream")
            n = body.get("n", 1)
            if n != 1:
                raise RequestError(
                    400, "only n=1 is supported (the controller already samples many branches)", param="n"
                )
            seed = body.get("seed")
            if seed is None:
                seed = secrets.randbelow(1 << 31)
            elif isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
                raise RequestError(400, "'seed' must be a non-negative integer", param="seed")
            reasoning = body.get("include_reasoning", config.include_reasoning)
            if not isinstance(reasoning, bool):
                raise RequestError(400, "'include_reasoning' must be true or false", param="include_reasoning")
            try:
                controller = spec.build()
            except ControllerSpecError as exc:
                raise RequestError(400, str(exc), param="controller") from None
            if state.draining:
                raise RequestError(
                    503,
                    "the server is shutting down and takes no new requests; retry on another server",
                    type="server_shutting_down",
                )
            if state.in_flight >= config.max_concurrency:
                m.rejected.labels("busy").inc()
                m.requests.labels("429").inc()
                return _error(
                    RequestError(429, "too many requests in flight; retry later", type="rate_limit_exceeded"),
                    {"Retry-After": str(config.retry_after)},
                )
        except RequestError as exc:
            m.requests.labels(str(exc.status)).inc()
            return _error(exc)

        loop = asyncio.get_running_loop()
        if state.steps is None:
            raise RuntimeError("the proxy app was not started through its lifespan")
        session = LiveSession(question, state.steps, loop, delta=config.delta, limits=limits, seed=seed)
        state.in_flight += 1
        m.in_flight.inc()
        on_loop = runs_on_loop(controller, config.placement) and spec.label not in state.moved_to_threads
        if on_loop:
            future = start_episode(controller, session, label=spec.label)
        else:
            future = loop.run_in_executor(state.pool, lambda: run_episode(controller, session, label=spec.label))
        m.episodes.labels("loop" if on_loop else "thread").inc()
        episode = _Episode(session, future)
        state.episodes.add(episode)
        rid = f"chatcmpl-{uuid.uuid4().hex}"

        def finish(result: LiveResult | None, status: int) -> None:
            if on_loop and session.longest_hold > LOOP_HOLD_LIMIT and spec.label not in state.moved_to_threads:
                state.moved_to_threads.add(spec.label)
                log.warning(
                    "controller %s held the event loop for %.3f s between two actions (limit %g s), stalling "
                    "every other request meanwhile; it runs in worker threads from now on",
                    spec.label,
                    session.longest_hold,
                    LOOP_HOLD_LIMIT,
                )
            state.episodes.discard(episode)
            state.in_flight -= 1
            m.in_flight.dec()
            m.requests.labels(str(status)).inc()
            m.request_seconds.labels(spec.name).observe(time.monotonic() - t0)
            if result is not None:
                m.tokens.labels("completion").inc(result.cost)
                m.tokens.labels("probe").inc(result.probe_tokens)
                m.tokens.labels("prompt").inc(result.prompt_tokens)
                m.branches.inc(result.branches)
                counts: dict[str, int] = {}
                for e in result.trace:  # one labelled increment per kind, not per action (labels() is not free)
                    counts[e.action] = counts.get(e.action, 0) + 1
                for action, n in counts.items():
                    m.actions.labels(action).inc(n)
                for s in result.branch_latency:
                    m.branch_seconds.observe(s)

        async def outcome() -> tuple[LiveResult | None, RequestError | None]:
            """Wait for the episode; map its failures to error objects."""
            # The session enforces the deadline at every action; this watchdog also covers a
            # controller that computes for too long between actions (its thread cannot be
            # killed, but the request is answered and the session refuses further actions).
            watchdog = None if limits.deadline is None else limits.deadline + _WATCHDOG_GRACE
            try:
                result = await asyncio.wait_for(asyncio.shield(future), watchdog)
            except asyncio.CancelledError:
                session.abort("shutdown")
                raise
            except TimeoutError:
                session.abort("deadline")
                return None, RequestError(504, "the request's deadline passed before any answer", type="timeout")
            except UpstreamError as exc:
                m.upstream_errors.inc()
                log.warning("upstream failure: %s", exc)
                return None, RequestError(502, f"the upstream model server failed: {exc}", type="upstream_error")
            except ControllerError as exc:
                log.warning("controller failure: %s", exc)
                return None, RequestError(500, str(exc), type="controller_error")
            except Exception as exc:  # a bug: answer cleanly, keep the trace in the log
                log.exception("episode failed")
                return None, RequestError(500, f"internal error: {type(exc).__name__}", type="server_error")
            if result.answer is None and result.stop_reason == "deadline":
                return result, RequestError(504, "the request's deadline passed before any answer", type="timeout")
            if result.answer is None and result.stop_reason == "shutdown":
                return result, RequestError(
                    503, "the server shut down before the request had an answer; retry", type="server_shutting_down"
                )
            return result, None

        if not stream:
            watcher = asyncio.create_task(_watch_disconnect(request, session))
            try:
                result, error = await outcome()
            except asyncio.CancelledError:
                finish(None, 499)
                raise
            finally:
                watcher.cancel()
            if error is not None or result is None:
                error = error or RequestError(500, "the episode produced no result", type="server_error")
                finish(result, error.status)
                return _error(error)
            finish(result, 200)
            return JSONResponse(_completion(rid, config.model, spec, result, reasoning))

        async def events() -> AsyncIterator[str]:
            done = False
            try:
                task = asyncio.ensure_future(outcome())
                while not task.done():
                    await asyncio.wait({task}, timeout=_KEEPALIVE_SECONDS)
                    if not task.done():
                        yield ": keep-alive\n\n"
                result, error = task.result()
                if error is not None or result is None:
                    error = error or RequestError(500, "the episode produced no result", type="server_error")
                    finish(result, error.status)
                    done = True
                    yield f"data: {json.dumps(error.body())}\n\n"
                    yield "data: [DONE]\n\n"
                    return
                finish(result, 200)
                done = True
                for chunk in _stream_chunks(rid, config.model, spec, result, reasoning):
                    yield f"data: {json.dumps(chunk)}\n\n"
                yield "data: [DONE]\n\n"
            finally:
                if not done:  # the client went away or the server is shutting down
                    session.abort("client_disconnected")
                    finish(None, 499)

        return StreamingResponse(
            events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        )

    return app


async def _watch_disconnect(request: Request, session: LiveSession) -> None:
    """Abort the episode when the client hangs up before its answer."""
    while True:
        message = await request.receive()
        if message.get("type") == "http.disconnect":
            session.abort("client_disconnected")
            return


def _stream_chunks(
    rid: str, model: str, spec: ControllerSpec, result: LiveResult, reasoning: bool
) -> list[dict[str, Any]]:
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
        return {
            "id": rid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
            **extra,
        }

    chunks = [chunk({"role": "assistant", "content": ""})]
    if reasoning and result.reasoning:
        chunks.append(chunk({"reasoning_content": result.reasoning}))
    chunks.append(chunk({"content": result.answer or ""}))
    chunks.append(chunk({}, "stop", usage=_usage(result), autotts=_autotts(spec, result)))
    return chunks


__all__ = ["LiveLimits", "ProxyConfig", "create_app"]
