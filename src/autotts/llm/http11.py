"""A lean asyncio HTTP/1.1 client with a keep-alive pool: the socket layer under the completions client.

Why not httpx here: a live session spends two requests per controller action (grow,
then probe), so the client's own cost is paid on every step a controller takes. httpx
(through httpcore and anyio) spends about 1 ms of CPU per request on a small VM; the
same exchange over plain asyncio streams costs about a sixth of that. This module is
that plain exchange, and no more than LLM servers need:

* one request at a time per connection, connections kept alive and reused (LIFO, so
  the warmest one goes first) per ``scheme://host:port``; no pipelining, no HTTP/2;
* bodies sized by ``Content-Length`` or ``Transfer-Encoding: chunked`` (or, on a
  connection the server closes, read to its end); ``gzip``/``deflate`` decoded, though
  ``Accept-Encoding: identity`` is asked for;
* ``https`` through :mod:`ssl`, verifying against the CA bundle httpx would use
  (``SSL_CERT_FILE``/``SSL_CERT_DIR``, else certifi's);
* a reused connection the server closed while it sat idle (its keep-alive timeout) is
  replaced by a fresh one once, transparently: that race is not a server failure and
  must not cost a retry or take the server out;
* a request cancelled mid-exchange closes its connection (its reply would otherwise be
  read as the next request's).

Errors are raised as httpx's exception classes (``ConnectError``, ``ConnectTimeout``,
``ReadTimeout``, ``RemoteProtocolError`` ...), the vocabulary the retry layer
(:func:`autotts.llm.retry.assess_exception`) already speaks. Proxies from the
environment are not spoken here: :class:`~autotts.llm.completions.CompletionsClient`
sends a server that the environment routes through a proxy over httpx instead
(:func:`uses_env_proxy`).
"""

from __future__ import annotations

import asyncio
import os
import ssl
import urllib.request
import zlib
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

_HEAD_LIMIT = 1 << 20  # longest status line + headers accepted (and StreamReader line limit)
_ENCODING_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


@dataclass(frozen=True, slots=True)
class Reply:
    """A complete HTTP reply: status, headers (names lower-cased) and the decoded body."""

    status_code: int
    headers: Mapping[str, str]
    content: bytes

    @property
    def text(self) -> str:
        """The body as text (UTF-8, undecodable bytes replaced)."""
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON (``ValueError`` when it is not JSON)."""
        return orjson.loads(self.content)


@dataclass(frozen=True, slots=True)
class _Target:
    key: tuple[str, str, int]
    host: str
    port: int
    tls: bool
    request_prefix: bytes
    """``METHOD``-less start of the request: `` <path> HTTP/1.1\\r\\nHost: ...\\r\\n`` plus the fixed headers."""


class _Conn:
    __slots__ = ("reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    def usable(self) -> bool:
        return not (self.reader.at_eof() or self.writer.is_closing())

    def close(self) -> None:
        try:
            self.writer.close()
        except RuntimeError:  # its event loop is gone; the socket goes with the transport
            pass


class _StaleConnection(Exception):
    """A reused connection died before any byte of the reply arrived."""


def uses_env_proxy(url: str) -> bool:
    """True when the environment (``HTTP(S)_PROXY``/``ALL_PROXY``, ``NO_PROXY``) routes ``url`` through a proxy."""
    parts = urlsplit(url)
    proxies = urllib.request.getproxies_environment()
    if not (proxies.get(parts.scheme) or proxies.get("all")):
        return False
    return not urllib.request.proxy_bypass(parts.hostname or "")


def _ssl_context() -> ssl.SSLContext:
    """The CA bundle httpx would use: ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` when set, else certifi's."""
    if os.environ.get("SSL_CERT_FILE"):
        return ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
    if os.environ.get("SSL_CERT_DIR"):
        return ssl.create_default_context(capath=os.environ["SSL_CERT_DIR"])
    try:
        import certifi

        return ssl.create_default_context(cafile=certifi.where())
    except ImportError:  # pragma: no cover - certifi comes with httpx
        return ssl.create_default_context()


class Http11Client:
    """Keep-alive HTTP/1.1 over asyncio streams (see the module docstring).

    ``headers`` are sent with every request (the caller's ``Authorization`` among
    them). ``timeout`` bounds one whole exchange, ``connect_timeout`` opening a
    connection. At most ``max_idle`` idle connections are kept per server.
    """

    def __init__(
        self,
        *,
        headers: Mapping[str, str],
        timeout: float,
        connect_timeout: float,
        max_idle: int = 64,
    ) -> None:
        for name, value in headers.items():
            if any(c in name + value for c in "\r\n\0"):
                raise ValueError(f"header {name!r} holds a line break or NUL; refusing to send it")
        self._headers = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._max_idle = max_idle
        self._targets: dict[str, _Target] = {}
        self._idle: dict[tuple[str, str, int], deque[_Conn]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ssl: ssl.SSLContext | None = None

    # ------------------------------------------------------------------ targets
    def _target(self, url: str) -> _Target:
        target = self._targets.get(url)
        if target is None:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise httpx.UnsupportedProtocol(f"cannot request {url!r}: only http:// and https:// URLs are supported")
            tls = parts.scheme == "https"
            port = parts.port or (443 if tls else 80)
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            host = parts.hostname
            host_header = f"[{host}]" if ":" in host else host
            if parts.port is not None:
                host_header += f":{port}"
            prefix = f" {path} HTTP/1.1\r\nHost: {host_header}\r\n{self._headers}".encode("latin-1")
            target = _Target((parts.scheme, host, port), host, port, tls, prefix)
            self._targets[url] = target
        return target

    # -------------------------------------------------------------- connections
    def _idle_for(self, key: tuple[str, str, int]) -> deque[_Conn]:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # connections belong to the loop that opened them
            self._drop_idle()
            self._loop = loop
        idle = self._idle.get(key)
        if idle is None:
            idle = self._idle[key] = deque()
        return idle

    def _drop_idle(self) -> None:
        for idle in self._idle.values():
            while idle:
                idle.pop().close()

    async def _connect(self, target: _Target) -> _Conn:
        context = None
        if target.tls:
            if self._ssl is None:
                self._ssl = _ssl_context()
            context = self._ssl
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(target.host, target.port, ssl=context, limit=_HEAD_LIMIT),
                self._connect_timeout,
            )
        except TimeoutError:
            raise httpx.ConnectTimeout(f"connecting to {target.host}:{target.port} timed out") from None
        except OSError as exc:
            raise httpx.ConnectError(f"cannot connect to {target.host}:{target.port}: {exc}") from None
        return _Conn(reader, writer)

    async def aclose(self) -> None:
        """Close every idle connection (in-flight ones close when their requests end)."""
        conns = [c for idle in self._idle.values() for c in idle]
        self._drop_idle()
        if conns and self._loop is asyncio.get_running_loop():
            await asyncio.gather(*(_wait_closed(c) for c in conns))

    # ------------------------------------------------------------------ requests
    async def request(self, method: str, url: str, body: bytes | None = None) -> Reply:
        """Send one request and read its whole reply."""
        target = self._target(url)
        head = method.encode("ascii") + target.request_prefix
        if body is not None:
            head += b"Content-Length: %d\r\n" % len(body)
        data = head + b"\r\n" + body if body is not None else head + b"\r\n"
        idle = self._idle_for(target.key)
        try:
            async with asyncio.timeout(self._timeout):
                while idle:
                    conn = idle.pop()
                    if not conn.usable():
                        conn.close()
                        continue
                    try:
                        return await self._exchange(conn, method, data, idle, reused=True)
                    except _StaleConnection:
                        continue
                conn = await self._connect(target)
                return await self._exchange(conn, method, data, idle, reused=False)
        except TimeoutError:
            raise httpx.ReadTimeout(f"no complete reply from {url} within {self._timeout:g} s") from None

    async def _exchange(self, conn: _Conn, method: str, data: bytes, idle: deque[_Conn], *, reused: bool) -> Reply:
        got_bytes = False
        try:
            conn.writer.write(data)
            await conn.writer.drain()
            head = await conn.reader.readuntil(b"\r\n\r\n")
            got_bytes = True
            status, headers, keep = _parse_head(head)
            while 100 <= status < 200 and status != 101:  # informational replies precede the real one
                head = await conn.reader.readuntil(b"\r\n\r\n")
                status, headers, keep = _parse_head(head)
            content, delimited = await _read_body(conn.reader, method, status, headers)
        except BaseException as exc:
            conn.close()
            if isinstance(exc, asyncio.IncompleteReadError) and exc.partial:
                got_bytes = True
            if isinstance(exc, OSError | asyncio.IncompleteReadError) and not got_bytes and reused:
                raise _StaleConnection from None
            if isinstance(exc, asyncio.LimitOverrunError | ValueError | asyncio.IncompleteReadError):
                raise httpx.RemoteProtocolError(f"malformed or truncated HTTP reply: {exc}") from None
            if isinstance(exc, ConnectionError):
                raise httpx.ReadError(f"connection lost: {exc}") from None
            if isinstance(exc, OSError):
                raise httpx.ReadError(f"connection failed: {exc}") from None
            raise
        if keep and delimited and conn.usable() and len(idle) < self._max_idle:
            idle.append(conn)
        else:
            conn.close()
        encoding = headers.get("content-encoding", "").strip().lower()
        if encoding and encoding != "identity":
            content = _decode(content, encoding)
        return Reply(status, headers, content)


def _parse_head(head: bytes) -> tuple[int, dict[str, str], bool]:
    """``(status, headers, keep-alive)`` of a reply head (raises ValueError when malformed)."""
    lines = head.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    if not version.startswith("HTTP/1."):
        raise ValueError(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
    status = int(rest[:3])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise ValueError(f"malformed header line {line[:80]!r}")
        name = name.strip().lower()
        value = value.strip()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
    keep = "keep-alive" in tokens if version == "HTTP/1.0" else "close" not in tokens
    return status, headers, keep


async def _read_body(
    reader: asyncio.StreamReader, method: str, status: int, headers: Mapping[str, str]
) -> tuple[bytes, bool]:
    """The raw body and whether its end was delimited (so the connection can carry another request)."""
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        return b"", True
    if "chunked" in headers.get("transfer-encoding", "").lower():
        parts: list[bytes] = []
        while True:
            line = await reader.readuntil(b"\r\n")
            size = int(line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
                    pass
                return b"".join(parts), True
            parts.append(await reader.readexactly(size))
            if await reader.readexactly(2) != b"\r\n":
                raise ValueError("a chunk does not end with CRLF")
    length = headers.get("content-length")
    if length is not None:
        n = int(length)
        if n < 0:
            raise ValueError(f"negative Content-Length {length!r}")
        return (await reader.readexactly(n) if n else b""), True
    return await reader.read(), False


def _decode(content: bytes, encoding: str) -> bytes:
    wbits = _ENCODING_WBITS.get(encoding)
    if wbits is None:
        raise httpx.DecodingError(f"the server sent an unsupported Content-Encoding {encoding!r}")
    try:
        return zlib.decompress(content, wbits)
    except zlib.error as exc:
        raise httpx.DecodingError(f"cannot decode the {encoding} body: {exc}") from None


async def _wait_closed(conn: _Conn) -> None:
    try:
        await asyncio.wait_for(conn.writer.wait_closed(), 1.0)
    except (OSError, TimeoutError, ssl.SSLError):
        pass
