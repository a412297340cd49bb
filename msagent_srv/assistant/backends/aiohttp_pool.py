"""aiohttp's ClientSession behind the small interface the OpenAI-compatible backend uses from http1.py:
`client.endpoint(url) -> (pool, path)`, `async with pool.post(path, body, headers, timeout) as response`,
`response.status`, `.headers` (lower-case keys), `await response.read()`, `async for line in
response.iter_lines()`, with http1's caps and errors (HttpReplyTooLarge for an over-long line or an
over-large body). Chosen with MSAGENT_UPSTREAM_HTTP=aiohttp; `python -m bench.chat --upstream-http both`
measures both clients side by side.

Tuned for a JSON POST to one model server: one session for all origins, keep-alive pools per host, no
cookie jar, no decompression (we ask for identity), no redirects (a 3xx is the answer, as with http1), no
tracing, no proxies from the environment, URLs parsed once per path, the body sent as prepared bytes.
Callers' URLs go through the guard: its resolver and socket check (NetGuard.connector), as for
`Http1Client(guard=...)`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from yarl import URL

from ...netguard import InvalidUrl, origin
from .http1 import (
    _MAX_BODY,
    MAX_EVENT_LINE,
    Http1Client,
    HttpReplyTooLarge,
    UpstreamClientOptions,
    split_lines,
)

_READ_BUFSIZE = 1 << 19  # aiohttp pauses the socket at twice this much unread data (http1: 1 MiB)


class AiohttpResponse:
    """An aiohttp response with http1's reading interface and caps."""

    __slots__ = ("_headers", "_response", "status")

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response, self.status = response, response.status
        self._headers: dict[str, str] | None = None

    @property
    def headers(self) -> dict[str, str]:
        if self._headers is None:
            self._headers = {name.lower(): value for name, value in self._response.headers.items()}
        return self._headers

    async def _pieces(self) -> AsyncIterator[bytes]:
        total, content = 0, self._response.content
        while piece := await content.readany():
            total += len(piece)
            if total > _MAX_BODY:
                raise HttpReplyTooLarge(f"upstream reply is over {_MAX_BODY >> 20} MB")
            yield piece

    async def read(self) -> bytes:
        length = self._response.content_length
        if length is not None and length <= _MAX_BODY:
            return await self._response.read()  # the common case: one read of a known length
        if length is not None:
            raise HttpReplyTooLarge(f"upstream reply is over {_MAX_BODY >> 20} MB")
        return b"".join([piece async for piece in self._pieces()])

    def iter_lines(self, max_line: int = MAX_EVENT_LINE) -> AsyncIterator[bytes]:
        """Body lines without their line ending, by the same rule and message as http1's."""
        return split_lines(self._pieces(), max_line)


class _Exchange:
    """`async with pool.post(...) as response`: the response, released on exit (aiohttp closes the
    connection of a body not read to its end)."""

    __slots__ = ("_args", "_pool", "_response")

    def __init__(self, pool: AiohttpPool, args: tuple[str, bytes, Mapping[str, str], float]) -> None:
        self._pool, self._args = pool, args
        self._response: aiohttp.ClientResponse | None = None

    async def __aenter__(self) -> AiohttpResponse:
        path, body, headers, timeout = self._args
        pool = self._pool
        url, timeouts = pool.url(path), pool.client.timeouts(timeout)
        post = pool.client.session.post
        try:
            self._response = await post(
                url, data=body, headers=headers, timeout=timeouts, allow_redirects=False
            )
        except aiohttp.ServerDisconnectedError:
            # A kept-alive connection the upstream closed as we sent (aiohttp retries only idempotent
            # methods); http1 sends once more on a fresh connection too.
            self._response = await post(
                url, data=body, headers=headers, timeout=timeouts, allow_redirects=False
            )
        return AiohttpResponse(self._response)

    async def __aexit__(self, *exc_info: object) -> None:
        response, self._response = self._response, None
        if response is not None:
            response.release()
            await response.wait_for_close()


class AiohttpPool:
    """One origin of the client's session: the full URL of each path, made once."""

    __slots__ = ("_urls", "client", "origin")

    def __init__(self, client: AiohttpClient, origin_url: URL) -> None:
        self.client, self.origin = client, origin_url
        self._urls: dict[str, URL] = {}

    def url(self, path: str) -> URL:
        url = self._urls.get(path)
        if url is None:
            if len(self._urls) > 64:
                self._urls.clear()
            url = self._urls[path] = self.origin.with_path(path, encoded=True)
        return url

    def post(self, path: str, body: bytes, headers: Mapping[str, str], timeout: float) -> _Exchange:
        return _Exchange(self, (path, body, headers, timeout))

    def close(self) -> None:
        """The session's connector owns the connections; they close with the client."""


class AiohttpClient(UpstreamClientOptions):
    """One aiohttp session for the model calls of one application, with Http1Client's interface."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        limit_per_origin, keepalive = self.limit, self.keepalive
        options = {
            "limit": limit_per_origin * 4,
            "limit_per_host": limit_per_origin,
            "keepalive_timeout": keepalive,
            "ttl_dns_cache": 60,
            "enable_cleanup_closed": False,
        }
        connector = self.guard.connector(**options) if self.guard else aiohttp.TCPConnector(**options)
        self.session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            headers={"Accept-Encoding": "identity"},
            skip_auto_headers=("User-Agent", "Accept"),
            auto_decompress=False,
            trust_env=False,
            read_bufsize=_READ_BUFSIZE,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.connect_timeout),
        )
        self._pools: dict[tuple[str, str, int], AiohttpPool] = {}
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}

    def timeouts(self, timeout: float) -> aiohttp.ClientTimeout:
        """The whole exchange within `timeout` seconds, the connection within the connect timeout."""
        found = self._timeouts.get(timeout)
        if found is None:
            if len(self._timeouts) > 16:
                self._timeouts.clear()
            found = self._timeouts[timeout] = aiohttp.ClientTimeout(
                total=timeout, sock_connect=min(timeout, self.connect_timeout)
            )
        return found

    def endpoint(self, url: str) -> tuple[AiohttpPool, str]:
        """The pool for `url`'s origin and the URL's path, for callers to resolve once."""
        try:
            key = origin(url)
        except InvalidUrl as exc:
            raise InvalidUrl(f"{exc}: {url[:200]!r}") from None
        pool = self._pools.get(key)
        if pool is None:
            scheme, host, port = key
            pool = self._pools[key] = AiohttpPool(self, URL.build(scheme=scheme, host=host, port=port))
            if len(self._pools) > self.max_origins:
                self._pools.pop(next(iter(self._pools))).close()
        return pool, urlsplit(url).path or "/"

    async def close(self) -> None:
        self._pools.clear()
        await self.session.close()


def upstream_client(kind: str, **options: Any) -> Http1Client | AiohttpClient:
    """The client for model calls that MSAGENT_UPSTREAM_HTTP names: "http1" (ours) or "aiohttp"."""
    if kind == "aiohttp":
        return AiohttpClient(**options)
    return Http1Client(**options)
