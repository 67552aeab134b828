"""The completions client's own HTTP/1.1 transport: keep-alive, framings, stale connections, proxies, timeouts.

Each test runs a real asyncio TCP server on 127.0.0.1 that answers with exactly the
bytes under test and records what it received, then drives the public
:class:`CompletionsClient` (or :class:`Http11Client` for framings the client never
asks for).
"""

from __future__ import annotations

import asyncio
import gzip
import json
import ssl
import subprocess
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from autotts.llm import CompletionRequest, CompletionsClient, LLMUnavailableError, RetryPolicy
from autotts.llm.http11 import Http11Client, uses_env_proxy

REPLY = {"choices": [{"text": "ok", "finish_reason": "stop"}], "usage": {"completion_tokens": 1, "prompt_tokens": 2}}

Respond = Callable[[int, bytes], Awaitable[bytes | None]]
"""``(request number, request head) -> reply bytes`` (None: close the connection without a reply)."""


class RawServer:
    """A TCP server answering each HTTP request with the bytes ``respond`` returns."""

    def __init__(self, respond: Respond, *, close_after_each: bool = False) -> None:
        self.respond = respond
        self.close_after_each = close_after_each
        self.connections = 0
        self.requests: list[bytes] = []
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> RawServer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/v1"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                body = await reader.readexactly(length) if length else b""
                self.requests.append(head + body)
                reply = await self.respond(len(self.requests), head)
                if reply is None:
                    return
                writer.write(reply)
                await writer.drain()
                if self.close_after_each:
                    return
        finally:
            writer.close()


def json_reply(payload: object = REPLY) -> bytes:
    data = json.dumps(payload).encode()
    head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    return head.encode() + data


async def always(number: int, head: bytes) -> bytes | None:
    return json_reply()


def run(coro: Awaitable[None]) -> None:
    asyncio.run(coro)  # type: ignore[arg-type]


def test_connections_are_kept_alive_and_reused() -> None:
    async def go() -> None:
        async with RawServer(always) as srv, CompletionsClient([srv.url], "m") as c:
            for _ in range(20):
                done = await c.complete(CompletionRequest("hi", max_tokens=1))
                assert done.text == "ok" and done.completion_tokens == 1
            assert srv.connections == 1 and len(srv.requests) == 20
            # The request is well-formed HTTP/1.1 with a JSON body the server can read.
            head, _, body = srv.requests[0].partition(b"\r\n\r\n")
            assert head.startswith(b"POST /v1/completions HTTP/1.1\r\n")
            assert f"Host: 127.0.0.1:{srv.url.split(':')[2].split('/')[0]}".encode() in head
            assert json.loads(body)["prompt"] == "hi" and json.loads(body)["model"] == "m"

    run(go())


def test_a_connection_closed_while_idle_is_replaced_without_a_retry() -> None:
    """The server's keep-alive timeout races the next request: not a server failure."""

    async def go() -> None:
        async with RawServer(always, close_after_each=True) as srv:
            async with CompletionsClient([srv.url], "m", policy=RetryPolicy(0, 0.01, 0.01)) as c:
                for _ in range(5):
                    await c.complete(CompletionRequest("hi", max_tokens=1))
                    await asyncio.sleep(0.01)  # let the close arrive, or not: both must work
                assert c.stats.attempts == 5 and c.stats.failures == 0
                assert srv.connections == 5

    run(go())


def test_a_reused_connection_dropped_before_the_reply_is_retried_once_transparently() -> None:
    # The server accepts the second request on the kept-alive connection, then hangs up without a reply.
    async def respond(number: int, head: bytes) -> bytes | None:
        return None if number == 2 else json_reply()

    async def go() -> None:
        async with RawServer(respond) as srv, CompletionsClient([srv.url], "m", policy=RetryPolicy(0, 0.01, 0.01)) as c:
            await c.complete(CompletionRequest("a", max_tokens=1))
            done = await c.complete(CompletionRequest("b", max_tokens=1))
            assert done.text == "ok" and c.stats.failures == 0 and srv.connections == 2

    run(go())


def test_a_fresh_connection_dropped_before_the_reply_is_a_retryable_failure() -> None:
    async def respond(number: int, head: bytes) -> bytes | None:
        return None

    async def go() -> None:
        async with RawServer(respond) as srv, CompletionsClient([srv.url], "m", policy=RetryPolicy(1, 0.01, 0.01)) as c:
            with pytest.raises(LLMUnavailableError, match=r"giving up after 2 attempts.*connection failed"):
                await c.complete(CompletionRequest("a", max_tokens=1))
            assert len(srv.requests) == 2

    run(go())


@pytest.mark.parametrize(
    "framing",
    ["chunked", "close-delimited", "gzip", "continue-first"],
)
def test_reply_framings_llm_servers_use(framing: str) -> None:
    data = json.dumps(REPLY).encode()

    async def respond(number: int, head: bytes) -> bytes | None:
        if framing == "chunked":
            chunks = [data[:7], data[7:]]
            body = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\nX-Trailer: 1\r\n\r\n"
            return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body
        if framing == "close-delimited":
            return b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n" + data
        if framing == "gzip":
            z = gzip.compress(data)
            return b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s" % (len(z), z)
        return b"HTTP/1.1 100 Continue\r\n\r\n" + json_reply()

    async def go() -> None:
        async with RawServer(respond, close_after_each=framing == "close-delimited") as srv:
            client = Http11Client(headers={}, timeout=5, connect_timeout=5)
            for _ in range(3):
                reply = await client.request("POST", srv.url + "/completions", b"{}")
                assert reply.status_code == 200 and reply.json() == REPLY
            # Only delimited replies leave the connection reusable.
            assert srv.connections == (3 if framing == "close-delimited" else 1)
            await client.aclose()

    run(go())


def test_malformed_reply_is_a_protocol_error() -> None:
    async def respond(number: int, head: bytes) -> bytes | None:
        return b"SPDY/9 banana\r\n\r\n"

    async def go() -> None:
        async with RawServer(respond) as srv:
            client = Http11Client(headers={}, timeout=5, connect_timeout=5)
            with pytest.raises(httpx.RemoteProtocolError, match="status line"):
                await client.request("GET", srv.url + "/models")
            await client.aclose()

    run(go())


def test_a_reply_slower_than_the_timeout_times_out_and_frees_the_connection() -> None:
    async def respond(number: int, head: bytes) -> bytes | None:
        if number == 1:
            await asyncio.sleep(1.0)
        return json_reply()

    async def go() -> None:
        async with RawServer(respond) as srv:
            async with CompletionsClient([srv.url], "m", timeout_seconds=0.2, policy=RetryPolicy(0, 0.01, 0.01)) as c:
                with pytest.raises(LLMUnavailableError, match=r"timed out \(ReadTimeout\)"):
                    await c.complete(CompletionRequest("a", max_tokens=1))
                # The late reply of the abandoned request must not be read as this one's.
                await asyncio.sleep(1.0)
                done = await c.complete(CompletionRequest("b", max_tokens=1))
                assert done.text == "ok" and srv.connections == 2

    run(go())


def test_a_server_the_environment_routes_through_a_proxy_goes_through_it(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)

    async def go() -> None:
        async with RawServer(always) as proxy:
            monkeypatch.setenv("HTTP_PROXY", proxy.url.removesuffix("/v1"))
            target = "http://llm.internal.test:8000/v1"  # never resolved: only the proxy is spoken to
            assert uses_env_proxy(target)
            async with CompletionsClient([target], "m") as c:
                done = await c.complete(CompletionRequest("hi", max_tokens=1))
            assert done.text == "ok"
            assert proxy.requests[0].startswith(b"POST http://llm.internal.test:8000/v1/completions HTTP/1.1")
            monkeypatch.setenv("NO_PROXY", "llm.internal.test")
            assert not uses_env_proxy(target)

    run(go())


def test_a_key_with_a_line_break_is_refused_without_showing_it() -> None:
    with pytest.raises(ValueError, match="line break") as info:
        CompletionsClient(["http://127.0.0.1:9/v1"], "m", api_key="sk-abc\r\nX-Evil: 1")
    assert "sk-abc" not in str(info.value)


def test_https_verifies_the_server_against_the_configured_ca(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)

    async def go() -> None:
        srv = RawServer(always)
        srv.server = await asyncio.start_server(srv._serve, "127.0.0.1", 0, ssl=server_ctx)
        url = srv.url.replace("http://127.0.0.1", "https://localhost")
        try:
            monkeypatch.delenv("SSL_CERT_DIR", raising=False)
            monkeypatch.setenv("SSL_CERT_FILE", str(cert))
            async with CompletionsClient([url], "m", policy=RetryPolicy(0, 0.01, 0.01)) as c:
                for _ in range(3):
                    assert (await c.complete(CompletionRequest("hi", max_tokens=1))).text == "ok"
            assert srv.connections == 1
            # Without that CA the certificate is refused: no silent downgrade to unverified TLS.
            monkeypatch.delenv("SSL_CERT_FILE")
            async with CompletionsClient([url], "m", policy=RetryPolicy(0, 0.01, 0.01)) as c:
                with pytest.raises(LLMUnavailableError, match="CERTIFICATE_VERIFY_FAILED"):
                    await c.complete(CompletionRequest("hi", max_tokens=1))
        finally:
            await srv.__aexit__()

    run(go())


def test_each_request_times_out_at_its_own_deadline() -> None:
    """One timer serves every request in flight: each still fails at its own start + timeout, no sooner or later."""

    async def respond(number: int, head: bytes) -> bytes | None:
        await asyncio.sleep(5.0)
        return json_reply()

    async def go() -> None:
        async with RawServer(respond) as srv:
            client = Http11Client(headers={}, timeout=0.4, connect_timeout=5)
            loop = asyncio.get_running_loop()
            t0 = loop.time()

            async def one(delay: float) -> float:
                await asyncio.sleep(delay)
                with pytest.raises(httpx.ReadTimeout, match=r"within 0\.4 s"):
                    await client.request("POST", srv.url + "/completions", b"{}")
                return loop.time() - t0

            first, second = await asyncio.gather(one(0.0), one(0.2))
            assert 0.38 <= first < 0.55 and 0.58 <= second < 0.75, (first, second)
            await client.aclose()

    run(go())


def test_bytes_after_a_complete_reply_are_never_read_as_the_next_reply() -> None:
    """A server that sends more than its Content-Length: the extra bytes are dropped with the connection."""

    async def respond(number: int, head: bytes) -> bytes | None:
        extra = json_reply({"choices": [{"text": "stale", "finish_reason": "stop"}], "usage": {"completion_tokens": 9}})
        return json_reply() + (extra if number == 1 else b"")

    async def go() -> None:
        async with RawServer(respond) as srv, CompletionsClient([srv.url], "m") as c:
            for _ in range(3):
                done = await c.complete(CompletionRequest("hi", max_tokens=1))
                assert done.text == "ok" and done.completion_tokens == 1
            assert srv.connections == 2  # the first connection was not reused

    run(go())
