"""A lean asyncio HTTP/1.1 client with a keep-alive pool: the socket layer under the completions client.

Why not httpx here: a live session spends two requests per controller action (grow,
then probe), so the client's own cost is paid on every step a controller takes. httpx
(through httpcore and anyio) spends about 1 ms of CPU per request on a small VM; the
same exchange over plain asyncio costs about a sixth of that. This module is that plain
exchange, and no more than LLM servers need:

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
* a request cancelled mid-exchange, or past its timeout, closes its connection (its
  reply would otherwise be read as the next request's).

Each connection is an :class:`asyncio.Protocol` that parses the reply as it arrives and
resolves one future per request, and one timer serves the timeouts of every request in
flight: per request that is one future and no stream buffers, reader waiters or timer
handles, which is what the proxy pays between a reply and its next request.

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
import time
import urllib.request
import zlib
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

_HEAD_LIMIT = 1 << 20  # longest status line + headers (or chunk line) accepted
_CLOCK_RESOLUTION = time.get_clock_info("monotonic").resolution
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


# Body framings of the reply being read (``_Conn._need`` holds a byte count, or one of these).
_UNTIL_EOF = -1
_CHUNKED = -2
# Where a chunked body is (``_Conn._chunk``): a size line next, chunk data (+ CRLF) next, or trailers.
_SIZE, _DATA, _TRAILERS = 0, 1, 2


class _Incomplete(Exception):
    """The connection ended before the reply did (``got_bytes``: some of the reply had arrived)."""

    def __init__(self, message: str, got_bytes: bool) -> None:
        super().__init__(message)
        self.got_bytes = got_bytes


class _Expired(Exception):
    """The request's deadline passed (set by :meth:`Http11Client._sweep`)."""


class _Conn(asyncio.Protocol):
    """One keep-alive connection that reads each reply as its bytes arrive (no ``StreamReader``).

    Why a protocol: reading a reply through asyncio streams takes a ``readuntil`` for
    the head and a ``readexactly`` for the body, each with its own waiter future, a
    ``drain`` after the write, and a buffer copied twice; here ``data_received`` parses
    the head and frames the body in place and resolves one future per request with the
    finished reply. Between requests any byte from the server (or its closing the
    connection) makes the connection unusable, so nothing unsolicited is ever read as
    the next reply.
    """

    __slots__ = (
        "_buf",
        "_chunk",
        "_chunk_left",
        "_got",
        "_head",
        "_lost_waiter",
        "_method",
        "_need",
        "_parts",
        "_waiter",
        "deadline",
        "ended",
        "transport",
    )

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.ended = False
        """The server closed its side, the connection was lost, or it carried something nobody asked for."""
        self.deadline = 0.0
        self._waiter: asyncio.Future[Reply] | None = None
        self._lost_waiter: asyncio.Future[None] | None = None
        self._buf = bytearray()
        self._method = ""
        self._head: tuple[int, dict[str, str], bool] | None = None
        self._need = 0
        self._chunk = _SIZE
        self._chunk_left = 0
        self._parts: list[bytes] = []
        self._got = False

    # ------------------------------------------------------------ asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():  # a byte nobody asked for: the framing can no longer be trusted
            self.ended = True
            self.close()
            return
        self._got = True
        self._buf += data
        try:
            self._advance()
        except ValueError as exc:
            self._fail(exc)

    def eof_received(self) -> bool:
        self.ended = True
        self._lost(None)
        return False  # let the transport close itself

    def connection_lost(self, exc: Exception | None) -> None:
        self.ended = True
        self._lost(exc)
        lost = self._lost_waiter
        if lost is not None and not lost.done():
            lost.set_result(None)

    # ---------------------------------------------------------------- requests
    def usable(self) -> bool:
        return not self.ended and self.transport is not None and not self.transport.is_closing()

    def send(self, method: str, data: bytes, waiter: asyncio.Future[Reply]) -> None:
        """Write one request; ``waiter`` gets its reply (or the exception that ended it)."""
        self._waiter = waiter
        self._method = method
        self._head = None
        self._got = False
        self._buf.clear()
        if self.transport is None:
            raise ConnectionError("the connection is not open")
        self.transport.write(data)

    def close(self) -> None:
        if self.transport is not None:
            try:
                self.transport.close()
            except RuntimeError:  # its event loop is gone; the socket goes with the transport
                pass

    async def wait_closed(self) -> None:
        if self.transport is None or self.ended:
            return
        if self._lost_waiter is None:
            self._lost_waiter = asyncio.get_running_loop().create_future()
        await self._lost_waiter

    # ----------------------------------------------------------------- parsing
    def _advance(self) -> None:
        """Parse what has arrived; resolve the waiter once the reply is complete."""
        buf = self._buf
        while self._head is None:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > _HEAD_LIMIT:
                    raise ValueError(f"the reply head exceeds {_HEAD_LIMIT} bytes")
                return
            head = bytes(buf[: end + 4])
            del buf[: end + 4]
            status, headers, keep = _parse_head(head)
            if 100 <= status < 200 and status != 101:  # informational replies precede the real one
                continue
            self._head = (status, headers, keep)
            self._need = _framing(self._method, status, headers)
            self._chunk, self._parts = _SIZE, []
        need = self._need
        if need >= 0:
            if len(buf) >= need:
                content = bytes(buf[:need]) if need else b""
                self._done(content, len(buf) == need)
        elif need == _CHUNKED:
            self._advance_chunked(buf)

    def _advance_chunked(self, buf: bytearray) -> None:
        while True:
            if self._chunk == _DATA:
                if len(buf) < self._chunk_left + 2:
                    return
                n = self._chunk_left
                if buf[n : n + 2] != b"\r\n":
                    raise ValueError("a chunk does not end with CRLF")
                self._parts.append(bytes(buf[:n]))
                del buf[: n + 2]
                self._chunk = _SIZE
                continue
            nl = buf.find(b"\r\n")
            if nl < 0:
                if len(buf) > _HEAD_LIMIT:
                    raise ValueError(f"a chunk line exceeds {_HEAD_LIMIT} bytes")
                return
            line = bytes(buf[:nl])
            del buf[: nl + 2]
            if self._chunk == _TRAILERS:
                if not line:
                    self._done(b"".join(self._parts), not buf)
                    return
                continue
            size = int(line.split(b";", 1)[0].strip(), 16)
            if size < 0:
                raise ValueError(f"negative chunk size {line[:40]!r}")
            if size == 0:
                self._chunk = _TRAILERS
            else:
                self._chunk, self._chunk_left = _DATA, size

    def _done(self, content: bytes, delimited: bool) -> None:
        """The reply is complete; ``delimited``: its end was framed and nothing followed it."""
        waiter, head = self._waiter, self._head
        self._waiter = None
        if head is None or waiter is None:  # pragma: no cover - only called with both
            return
        status, headers, keep = head
        if not (keep and delimited):
            self.ended = True
            self.close()
        if not waiter.done():
            waiter.set_result(Reply(status, headers, content))

    def _fail(self, exc: BaseException) -> None:
        waiter = self._waiter
        self._waiter = None
        self.ended = True
        self.close()
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def _lost(self, exc: Exception | None) -> None:
        """The connection ended (EOF or lost) while a reply may still be owed."""
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if self._head is not None and self._need == _UNTIL_EOF:
            self._done(bytes(self._buf), False)
            return
        if exc is not None and not self._got:
            self._fail(exc)
            return
        got = self._got
        self._fail(_Incomplete(f"the connection ended after {len(self._buf)} unread bytes of the reply", got))

    def expire(self) -> None:
        """The deadline passed: fail the request in flight (the connection is closed)."""
        self._fail(_Expired())


def _framing(method: str, status: int, headers: Mapping[str, str]) -> int:
    """How the body of a reply ends: a byte count, ``_CHUNKED`` or ``_UNTIL_EOF``."""
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        return 0
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return _CHUNKED
    length = headers.get("content-length")
    if length is None:
        return _UNTIL_EOF
    n = int(length)
    if n < 0:
        raise ValueError(f"negative Content-Length {length!r}")
    return n


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
    """Keep-alive HTTP/1.1 over asyncio protocols (see the module docstring).

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
        self._busy: set[_Conn] = set()
        self._sweeper: asyncio.TimerHandle | None = None

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
        if loop is not self._loop:  # connections (and the deadline timer) belong to the loop that opened them
            self._drop_idle()
            self._busy.clear()
            self._sweeper = None
            self._loop = loop
        idle = self._idle.get(key)
        if idle is None:
            idle = self._idle[key] = deque()
        return idle

    def _drop_idle(self) -> None:
        for idle in self._idle.values():
            while idle:
                idle.pop().close()

    async def _connect(self, target: _Target, deadline: float) -> _Conn:
        context = None
        if target.tls:
            if self._ssl is None:
                self._ssl = _ssl_context()
            context = self._ssl
        loop = asyncio.get_running_loop()
        remaining = deadline - loop.time()
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(_Conn, target.host, target.port, ssl=context),
                min(self._connect_timeout, remaining),
            )
        except TimeoutError:
            if remaining < self._connect_timeout:  # the request's own timeout ran out first
                raise _Expired from None
            raise httpx.ConnectTimeout(f"connecting to {target.host}:{target.port} timed out") from None
        except OSError as exc:
            raise httpx.ConnectError(f"cannot connect to {target.host}:{target.port}: {exc}") from None
        return conn

    async def aclose(self) -> None:
        """Close every idle connection (in-flight ones close when their requests end)."""
        conns = [c for idle in self._idle.values() for c in idle]
        self._drop_idle()
        if conns and self._loop is asyncio.get_running_loop():
            await asyncio.gather(*(_wait_closed(c) for c in conns))

    # ---------------------------------------------------------------- deadlines
    # One timer for every request in flight rather than one per request
    # (``asyncio.timeout`` arms and cancels a timer handle per call): it is armed for the
    # earliest deadline when the first request starts and re-armed, when it fires, for
    # the earliest deadline still pending. Deadlines only grow with start time, so the
    # timer never fires late for anyone.
    def _watch(self, conn: _Conn, loop: asyncio.AbstractEventLoop) -> None:
        self._busy.add(conn)
        if self._sweeper is None:
            self._sweeper = loop.call_at(conn.deadline, self._sweep, loop)

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        if loop is not self._loop:  # armed on a loop this client has since left: its requests went with it
            return
        self._sweeper = None
        now = loop.time() + _CLOCK_RESOLUTION  # the loop runs a timer that close to its time
        for conn in [c for c in self._busy if c.deadline <= now]:
            self._busy.discard(conn)
            conn.expire()
        if self._busy:
            self._sweeper = loop.call_at(min(c.deadline for c in self._busy), self._sweep, loop)

    # ------------------------------------------------------------------ requests
    async def request(self, method: str, url: str, body: bytes | None = None) -> Reply:
        """Send one request and read its whole reply."""
        target = self._targets.get(url) or self._target(url)
        if body is None:
            data = method.encode("ascii") + target.request_prefix + b"\r\n"
        else:
            head = method.encode("ascii") + target.request_prefix
            data = b"%sContent-Length: %d\r\n\r\n%s" % (head, len(body), body)
        loop = asyncio.get_running_loop()
        idle = self._idle.get(target.key) if loop is self._loop else None
        if idle is None:
            idle = self._idle_for(target.key)
        deadline = loop.time() + self._timeout
        reused = True
        try:
            while True:  # one pass per connection tried: idle ones (warmest first), then a fresh one
                conn = None
                while idle:
                    conn = idle.pop()
                    if conn.usable():
                        break
                    conn.close()
                    conn = None
                if conn is None:
                    conn = await self._connect(target, deadline)
                    reused = False
                waiter: asyncio.Future[Reply] = loop.create_future()
                conn.deadline = deadline
                self._watch(conn, loop)
                try:
                    conn.send(method, data, waiter)
                    reply = await waiter
                except BaseException as exc:
                    conn.close()
                    if isinstance(exc, _Expired | asyncio.CancelledError):
                        raise
                    got_bytes = exc.got_bytes if isinstance(exc, _Incomplete) else not isinstance(exc, OSError)
                    if isinstance(exc, OSError | _Incomplete) and not got_bytes and reused:
                        continue  # a stale connection: the server closed it while idle
                    mapped = _transport_error(exc)
                    if mapped is exc:
                        raise
                    raise mapped from None
                finally:
                    self._busy.discard(conn)
                if conn.usable() and len(idle) < self._max_idle:
                    idle.append(conn)
                else:
                    conn.close()
                encoding = reply.headers.get("content-encoding")
                if encoding:
                    encoding = encoding.strip().lower()
                    if encoding != "identity":
                        return Reply(reply.status_code, reply.headers, _decode(reply.content, encoding))
                return reply
        except _Expired:
            raise httpx.ReadTimeout(f"no complete reply from {url} within {self._timeout:g} s") from None


def _transport_error(exc: BaseException) -> BaseException:
    """The httpx exception (the retry layer's vocabulary) for what ended an exchange."""
    if isinstance(exc, ValueError | _Incomplete):
        return httpx.RemoteProtocolError(f"malformed or truncated HTTP reply: {exc}")
    if isinstance(exc, ConnectionError):
        return httpx.ReadError(f"connection lost: {exc}")
    if isinstance(exc, OSError):
        return httpx.ReadError(f"connection failed: {exc}")
    return exc


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
    connection = headers.get("connection")
    if connection is None:
        return status, headers, version != "HTTP/1.0"
    tokens = {t.strip().lower() for t in connection.split(",")}
    keep = "keep-alive" in tokens if version == "HTTP/1.0" else "close" not in tokens
    return status, headers, keep


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
        await asyncio.wait_for(conn.wait_closed(), 1.0)
    except (OSError, TimeoutError, ssl.SSLError):
        pass
