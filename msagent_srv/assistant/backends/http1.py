"""A lean HTTP/1.1 client for calls to model servers: keep-alive connections to one origin, a request written
in one piece, the response parsed straight from the socket's buffer.

Model calls are the assistant's hot path, and a general client (redirects, cookies, proxies, tracing,
multipart) costs the server much CPU per request there; this one does only what a JSON POST to an
OpenAI-compatible server needs. Every wait has a deadline, so nothing hangs on a silent upstream.

Measured (#14: `python -m bench.chat --upstream-http both`, the chat benchmark with our server started once
per client, side by side in one run; 3 runs of 3 rounds, 2 cores, loopback, load 2-6) against aiohttp's
ClientSession tuned as far as it goes (aiohttp_pool.py, MSAGENT_UPSTREAM_HTTP=aiohttp):
- non-streamed: server CPU per request 218-259 us vs 333-371 (aiohttp 1.39-1.60x), requests/s at
  concurrency 32 1.25-1.91x aiohttp's, added latency p50 0.72-0.75 ms vs 0.86-0.93 (aiohttp 1.14-1.29x);
- streamed: CPU 500-533 us vs 547-583 (aiohttp 1.09-1.11x), requests/s even (0.98-1.12x), added p50
  mixed (aiohttp 0.84-1.31x); p99 too noisy on a shared machine to rank either.
So it stays the default for its gain on non-streamed calls; aiohttp's adapter remains the measured fallback.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

from ...netguard import InvalidUrl, NetGuard, PrivateAddressRefused, origin

_MAX_HEAD = 64 << 10  # bytes of status line + headers we accept
_MAX_BUFFER = 1 << 20  # pause reading from the socket beyond this much unread data
_MAX_BODY = 64 << 20  # no model reply is this large; an upstream sending more is refused
MAX_EVENT_LINE = 1 << 20  # longest line of a streamed reply (one server-sent event's data) we accept


class HttpError(Exception):
    """The connection failed or the upstream broke the protocol."""


class HttpRefused(HttpError):
    """The guard refused the address (a caller's URL that leads to a non-public host)."""


class HttpReplyTooLarge(HttpError):
    """The upstream sent more than we read: an over-long line, an over-large body."""


class HttpTimeout(HttpError, TimeoutError):
    """The deadline passed before the upstream answered."""


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection; reads are awaited against an absolute deadline."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.closed = False
        self.paused = False
        self.received_any = False  # bytes arrived for the current request
        self.idle_since = 0.0
        self._waiter: asyncio.Future[None] | None = None

    # -- protocol callbacks ------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self.received_any = True
        if len(self.buffer) > _MAX_BUFFER and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self.closed = True
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- reads -------------------------------------------------------------------------------------------
    async def _more(self, deadline: float) -> None:
        """Wait for more bytes (or the end of the connection) until the deadline."""
        if self.closed:
            raise HttpError("connection closed by upstream")
        if self.paused and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()
        waiter = self._waiter = self.loop.create_future()
        timer = self.loop.call_at(deadline, _expire, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None

    async def read_until(self, separator: bytes, deadline: float, limit: int = _MAX_HEAD) -> bytes:
        start = 0
        while True:
            found = self.buffer.find(separator, start)
            if found >= 0:
                end = found + len(separator)
                data = bytes(self.buffer[:end])
                del self.buffer[:end]
                return data
            if len(self.buffer) > limit:
                raise HttpError("upstream sent an over-long line")
            start = max(0, len(self.buffer) - len(separator) + 1)
            await self._more(deadline)

    async def read_exactly(self, size: int, deadline: float) -> bytes:
        while len(self.buffer) < size:
            await self._more(deadline)
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    async def read_some(self, deadline: float) -> bytes:
        """Whatever has arrived (at least one byte), or b"" at the end of the connection."""
        if not self.buffer:
            if self.closed:
                return b""
            try:
                await self._more(deadline)
            except HttpError:
                return b""
        data = bytes(self.buffer)
        self.buffer.clear()
        return data

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(HttpTimeout("upstream did not answer in time"))


async def split_lines(pieces: AsyncIterator[bytes], max_line: int = MAX_EVENT_LINE) -> AsyncIterator[bytes]:
    """Body lines without their line ending (Server-Sent Events are line-oriented); a line longer than
    `max_line` bytes ends the reply with HttpReplyTooLarge, so no upstream can make us buffer more. Each
    byte is searched once: a piece is scanned from where the last search ended."""
    pending = bytearray()
    async for piece in pieces:
        searched = len(pending)  # pending holds no line break
        pending += piece
        start = 0
        while (end := pending.find(b"\n", searched)) >= 0:
            if end - start > max_line:
                break
            yield bytes(pending[start : end - 1 if end > start and pending[end - 1] == 13 else end])
            start = searched = end + 1
        if start:
            del pending[:start]
            searched = 0
        # what is left holds no line break past `searched`: its length alone says if a line is too long
        if len(pending) > max_line:
            raise HttpReplyTooLarge(f"upstream sent a line over {max_line} bytes")
    if pending:
        yield bytes(pending)


class Http1Response:
    """Status, headers and a body read once: whole (`read`) or piece by piece (`iter_lines`)."""

    def __init__(
        self, pool: Http1Pool, connection: _Connection, status: int, headers: dict[str, str], deadline: float
    ) -> None:
        self.status, self.headers = status, headers
        self._pool, self._connection, self._deadline = pool, connection, deadline
        encoding = headers.get("transfer-encoding", "").lower()
        self._chunked = "chunked" in encoding
        length = headers.get("content-length")
        self._remaining: int | None = None
        if length is not None and not self._chunked:
            if not length.isdigit() or int(length) > _MAX_BODY:
                raise HttpError(f"upstream sent an unusable Content-Length: {length[:20]!r}")
            self._remaining = int(length)
        self._until_close = not self._chunked and self._remaining is None and status not in (204, 304)
        self._reusable = not self._until_close and headers.get("connection", "").lower() != "close"
        self._done = False

    async def _pieces(self) -> AsyncIterator[bytes]:
        total = 0
        async for piece in self._framed_pieces():
            total += len(piece)
            if total > _MAX_BODY:
                raise HttpReplyTooLarge(f"upstream reply is over {_MAX_BODY >> 20} MB")
            yield piece

    async def _framed_pieces(self) -> AsyncIterator[bytes]:
        connection, deadline = self._connection, self._deadline
        if self._chunked:
            while True:
                size_line = await connection.read_until(b"\r\n", deadline)
                try:
                    size = int(size_line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise HttpError("upstream sent a malformed chunk size") from None
                if size > _MAX_BODY:
                    raise HttpReplyTooLarge("upstream sent an over-large chunk")
                if size == 0:
                    while await connection.read_until(b"\r\n", deadline) != b"\r\n":
                        pass  # trailers: not used
                    break
                while size > 0:  # the chunk as it arrives: memory stays bounded by the socket buffer
                    if not connection.buffer:
                        await connection._more(deadline)
                        continue
                    piece = bytes(connection.buffer[:size])
                    del connection.buffer[: len(piece)]
                    size -= len(piece)
                    yield piece
                if await connection.read_exactly(2, deadline) != b"\r\n":
                    raise HttpError("upstream sent a malformed chunk")
        elif self._remaining is not None:
            while self._remaining > 0:
                if connection.buffer:
                    piece = bytes(connection.buffer[: self._remaining])
                    del connection.buffer[: len(piece)]
                else:
                    piece = await connection.read_some(deadline)
                    if not piece:
                        raise HttpError("upstream closed the connection mid-body")
                    if len(piece) > self._remaining:
                        raise HttpError("upstream sent more than its Content-Length")
                self._remaining -= len(piece)
                yield piece
        elif self._until_close:
            while piece := await connection.read_some(deadline):
                yield piece
        self._done = True

    async def read(self) -> bytes:
        if self._remaining is not None and len(self._connection.buffer) >= self._remaining:
            # The common case: the whole body is already buffered.
            body = bytes(self._connection.buffer[: self._remaining])
            del self._connection.buffer[: self._remaining]
            self._remaining, self._done = 0, True
            return body
        return b"".join([piece async for piece in self._pieces()])

    def iter_lines(self, max_line: int = MAX_EVENT_LINE) -> AsyncIterator[bytes]:
        return split_lines(self._pieces(), max_line)

    def release(self) -> None:
        """Hand the connection back for reuse if the exchange completed cleanly, else close it."""
        connection, self._connection = self._connection, None  # type: ignore[assignment]
        if connection is None:
            return
        self._pool._slots.release()
        if self._done and self._reusable and not connection.closed and not connection.buffer:
            self._pool._put_back(connection)
        else:
            connection.close()


class _Exchange:
    """`async with pool.post(...) as response`: the response, its connection released on exit."""

    __slots__ = ("_args", "_pool", "_response")

    def __init__(self, pool: Http1Pool, args: tuple[str, bytes, dict[str, str], float]) -> None:
        self._pool, self._args = pool, args
        self._response: Http1Response | None = None

    async def __aenter__(self) -> Http1Response:
        self._response = await self._pool._request(*self._args)
        return self._response

    async def __aexit__(self, *exc_info: object) -> None:
        if self._response is not None:
            self._response.release()


class Http1Pool:
    """Keep-alive connections to one origin (scheme, host, port)."""

    def __init__(
        self,
        tls: bool,
        host: str,
        port: int,
        *,
        limit: int,
        connect_timeout: float,
        keepalive: float,
        guard: NetGuard | None = None,
    ) -> None:
        self.tls, self.host, self.port, self.guard = tls, host, port, guard
        host_header = f"[{host}]" if ":" in host else host
        self.host_header = host_header if port == (443 if tls else 80) else f"{host_header}:{port}"
        self.connect_timeout, self.keepalive = connect_timeout, keepalive
        self._ssl = ssl.create_default_context() if tls else None
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(limit)
        self._closed = False

    def post(self, path: str, body: bytes, headers: dict[str, str], timeout: float) -> _Exchange:
        return _Exchange(self, (path, body, headers, timeout))

    async def _request(
        self, path: str, body: bytes, headers: dict[str, str], timeout: float
    ) -> Http1Response:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        lines = [f"POST {path} HTTP/1.1\r\nHost: {self.host_header}\r\n"
                 f"Content-Length: {len(body)}\r\nAccept-Encoding: identity\r\n"]  # fmt: skip
        lines += [f"{name}: {value}\r\n" for name, value in headers.items()]
        try:
            head = "".join(lines).encode("latin-1") + b"\r\n"
        except UnicodeEncodeError:
            raise HttpError("a request header is not Latin-1 text") from None
        if head.count(b"\n") != len(headers) + 5 or head.count(b"\r") != len(headers) + 5:
            raise HttpError("a request header contains a line break")  # no header injection
        await self._slots.acquire()  # released with the response, or here on failure
        try:
            for attempt in (0, 1):
                connection, reused = await self._connection(loop, deadline)
                connection.received_any = False
                try:
                    connection.transport.write(head + body)  # type: ignore[union-attr]
                    return await self._read_head(connection, deadline)
                except HttpTimeout:
                    connection.close()
                    raise
                except HttpError:
                    connection.close()
                    # A kept-alive connection the upstream had already closed: it never saw the
                    # request, so sending it once more on a fresh connection is safe.
                    if reused and not connection.received_any and attempt == 0:
                        continue
                    raise
                except BaseException:
                    connection.close()
                    raise
            raise AssertionError("unreachable: the second attempt returns or raises")
        except BaseException:
            self._slots.release()
            raise

    async def _connection(self, loop: asyncio.AbstractEventLoop, deadline: float) -> tuple[_Connection, bool]:
        if self._closed:
            raise HttpError("client closed")
        now = time.monotonic()
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed and now - connection.idle_since < self.keepalive:
                return connection, True
            connection.close()
        timeout = max(0.0, min(self.connect_timeout, deadline - loop.time()))
        try:
            transport, connection = await asyncio.wait_for(
                loop.create_connection(
                    lambda: _Connection(loop),
                    await self._address(),
                    self.port,
                    ssl=self._ssl,
                    server_hostname=self.host if self.tls else None,
                ),
                timeout=timeout,
            )
        except (asyncio.TimeoutError, TimeoutError):
            raise HttpTimeout(f"connecting to {self.host}:{self.port} timed out") from None
        except PrivateAddressRefused as exc:
            raise HttpRefused(str(exc)) from None
        except OSError as exc:
            raise HttpError(f"cannot connect to {self.host}:{self.port}: {exc.strerror or exc}") from None
        if self.guard is not None:
            try:  # the socket's actual peer, whatever happened between lookup and connect
                self.guard.check_peer(transport.get_extra_info("peername"))
            except PrivateAddressRefused as exc:
                connection.close()
                raise HttpRefused(str(exc)) from None
        return connection, False

    async def _address(self) -> str:
        """The host to connect to: for guarded pools, an address the guard checked (pinned, so a second
        lookup cannot answer differently)."""
        if self.guard is None:
            return self.host
        return (await self.guard.resolve(self.host, self.port))[0][1]

    async def _read_head(self, connection: _Connection, deadline: float) -> Http1Response:
        while True:
            head = await connection.read_until(b"\r\n\r\n", deadline)
            status_line, *header_lines = head[:-4].decode("latin-1").split("\r\n")
            version, _, rest = status_line.partition(" ")
            try:
                status = int(rest[:3])
            except ValueError:
                raise HttpError(f"upstream sent a malformed status line: {status_line[:80]!r}") from None
            if not version.startswith("HTTP/1."):
                raise HttpError(f"upstream does not speak HTTP/1.x: {status_line[:80]!r}")
            if 100 <= status < 200:
                continue  # interim responses carry no body
            headers: dict[str, str] = {}
            for line in header_lines:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            if version == "HTTP/1.0" and headers.get("connection", "").lower() != "keep-alive":
                headers["connection"] = "close"
            return Http1Response(self, connection, status, headers, deadline)

    def _put_back(self, connection: _Connection) -> None:
        if self._closed:
            connection.close()
            return
        connection.idle_since = time.monotonic()
        self._idle.append(connection)

    def close(self) -> None:
        """Close idle connections now and busy ones when they are released."""
        self._closed = True
        while self._idle:
            self._idle.pop().close()


class UpstreamClientOptions:
    """What every client for model calls is configured with (Http1Client, aiohttp_pool.AiohttpClient)."""

    def __init__(
        self,
        *,
        limit_per_origin: int = 256,
        connect_timeout: float = 10.0,
        keepalive: float = 30.0,
        max_origins: int = 64,
        public_only: bool = False,
        guard: NetGuard | None = None,
    ) -> None:
        """`guard`: connect only where it allows (for upstreams a caller named); `public_only`: a guard
        that allows public addresses only."""
        self.guard = guard if guard is not None else (NetGuard() if public_only else None)
        self.limit, self.connect_timeout, self.keepalive = limit_per_origin, connect_timeout, keepalive
        self.max_origins = max_origins  # agents may name their own api_base: keep the pool count bounded


class Http1Client(UpstreamClientOptions):
    """The pools of one application, one per origin, like a client session."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._pools: dict[tuple[bool, str, int], Http1Pool] = {}

    def endpoint(self, url: str) -> tuple[Http1Pool, str]:
        """The pool for `url`'s origin and the URL's path, for callers to resolve once."""
        try:
            scheme, host, port = origin(url)
        except InvalidUrl as exc:
            raise InvalidUrl(f"{exc}: {url[:200]!r}") from None
        tls = scheme == "https"
        key = (tls, host, port)
        parts = urlsplit(url)
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = Http1Pool(
                *key,
                limit=self.limit,
                connect_timeout=self.connect_timeout,
                keepalive=self.keepalive,
                guard=self.guard,
            )
            if len(self._pools) > self.max_origins:
                self._pools.pop(next(iter(self._pools))).close()
        return pool, parts.path or "/"

    async def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()
