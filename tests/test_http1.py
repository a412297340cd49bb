"""The lean HTTP/1.1 client the assistant uses for model calls, against real sockets: servers here write raw
bytes so every framing a model server may use (and every way it may misbehave) is exercised."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from msagent_srv.assistant.backends.http1 import (
    MAX_EVENT_LINE,
    Http1Client,
    HttpError,
    HttpReplyTooLarge,
    HttpTimeout,
)

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class RawServer:
    """Counts connections and hands each request's head to `handler`."""

    def __init__(self, handler: Handler) -> None:
        self.handler, self.connections = handler, 0
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> str:
        async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            try:
                await self.handler(reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()

        self.server = await asyncio.start_server(on_connection, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/v1/chat"

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
    )
    return head, await reader.readexactly(length)


def answer(body: bytes, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


async def serve_forever(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, body: bytes) -> None:
    while True:
        _, request_body = await read_request(reader)
        writer.write(answer(body + request_body))
        await writer.drain()


@pytest.fixture
async def client() -> AsyncIterator[Http1Client]:
    http = Http1Client(connect_timeout=2)
    yield http
    await http.close()


async def post(http: Http1Client, url: str, body: bytes = b"{}", timeout: float = 5.0) -> tuple[int, bytes]:
    pool, path = http.endpoint(url)
    async with pool.post(path, body, {"Content-Type": "application/json"}, timeout) as response:
        return response.status, await response.read()


async def connections_for_two_requests(http: Http1Client, handler: Handler, reply: bytes) -> int:
    """Two requests in a row, each answered with `reply`; how many connections they took."""
    server = RawServer(handler)
    async with server as url:
        assert await post(http, url) == (200, reply)
        await asyncio.sleep(0.05)  # lets a server-side close arrive first
        assert await post(http, url) == (200, reply)
    return server.connections


async def test_requests_reuse_one_kept_alive_connection(client: Http1Client) -> None:
    server = RawServer(lambda r, w: serve_forever(r, w, b"echo:"))
    async with server as url:
        for n in range(20):
            assert await post(client, url, b"%d" % n) == (200, b"echo:%d" % n)
    assert server.connections == 1


async def test_request_head_names_path_host_and_length(client: Http1Client) -> None:
    heads: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head, _ = await read_request(reader)
        heads.append(head)
        writer.write(answer(b"ok"))

    async with RawServer(handler) as url:
        pool, path = client.endpoint(url + "/completions")
        async with pool.post(path, b'{"a":1}', {"Authorization": "Bearer k"}, 5) as response:
            assert await response.read() == b"ok"
    lines = heads[0].decode().split("\r\n")
    port = url.split(":")[2].split("/")[0]
    assert lines[0] == "POST /v1/chat/completions HTTP/1.1"
    assert f"Host: 127.0.0.1:{port}" in lines
    assert "Content-Length: 7" in lines and "Authorization: Bearer k" in lines


async def test_chunked_stream_yields_lines_across_chunk_boundaries(client: Http1Client) -> None:
    events = [b'data: {"n":%d}' % n for n in range(50)] + [b"data: [DONE]"]
    wire = b"".join(event + b"\n\n" for event in events)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for start in range(0, len(wire), 7):  # chunks that cut lines (and the CRLF) anywhere
            piece = wire[start : start + 7]
            writer.write(b"%x;ext=1\r\n%s\r\n" % (len(piece), piece))
            await writer.drain()
        writer.write(b"0\r\nX-Trailer: t\r\n\r\n")
        await serve_forever(reader, writer, b"")

    server = RawServer(handler)
    async with server as url:
        pool, path = client.endpoint(url)
        async with pool.post(path, b"{}", {}, 5) as response:
            lines = [line async for line in response.iter_lines()]
        assert [line for line in lines if line] == events
        assert await post(client, url, b"next") == (200, b"next")  # the connection was whole again
    assert server.connections == 1


async def test_body_split_over_many_writes_is_reassembled(client: Http1Client) -> None:
    body = bytes(range(256)) * 2000

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        wire = answer(body)
        for start in range(0, len(wire), 65_000):
            writer.write(wire[start : start + 65_000])
            await writer.drain()
            await asyncio.sleep(0.001)

    async with RawServer(handler) as url:
        assert await post(client, url) == (200, body)


async def test_connection_closed_while_idle_is_replaced_transparently(client: Http1Client) -> None:
    async def answer_once_then_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(b"one"))  # keep-alive is implied, but the server closes right after
        await writer.drain()

    assert await connections_for_two_requests(client, answer_once_then_close, b"one") == 2


async def test_request_on_a_connection_the_upstream_drops_unanswered_is_resent_once(
    client: Http1Client,
) -> None:
    async def drops_second_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(b"fresh"))
        await writer.drain()
        await read_request(reader)  # a keep-alive timeout racing our request: closed without a reply

    assert await connections_for_two_requests(client, drops_second_request, b"fresh") == 2


async def test_connection_close_and_read_until_close_bodies_are_not_reused(client: Http1Client) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end")
        await writer.drain()

    assert await connections_for_two_requests(client, handler, b"until the end") == 2


async def test_silent_upstream_times_out_at_the_deadline(client: Http1Client) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(10)

    async with RawServer(silent) as url:
        started = time.monotonic()
        with pytest.raises(HttpTimeout):
            await post(client, url, timeout=0.3)
        assert time.monotonic() - started < 2


async def test_stream_stalling_mid_body_times_out(client: Http1Client) -> None:
    async def stalls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
        await writer.drain()
        await asyncio.sleep(10)

    async with RawServer(stalls) as url:
        pool, path = client.endpoint(url)
        with pytest.raises(HttpTimeout):
            async with pool.post(path, b"{}", {}, 0.3) as response:
                [line async for line in response.iter_lines()]


@pytest.mark.parametrize(
    "reply",
    [
        b"garbage\r\n\r\n",
        b"HTTP/2 200\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffff\r\n",
    ],
    ids=["not-http", "not-http1", "bad-chunk", "bad-length", "huge-chunk"],
)
async def test_broken_replies_raise_http_errors(client: Http1Client, reply: bytes) -> None:
    async def broken(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(reply)
        await writer.drain()
        await asyncio.sleep(1)

    async with RawServer(broken) as url:
        with pytest.raises(HttpError):
            await post(client, url)


async def test_upstream_closing_mid_body_is_an_error_not_a_short_body(client: Http1Client) -> None:
    async def short(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this")

    async with RawServer(short) as url:
        with pytest.raises(HttpError, match="mid-body"):
            await post(client, url)


async def test_abandoned_stream_closes_its_connection(client: Http1Client) -> None:
    async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        while True:
            writer.write(b"6\r\ndata:\n\r\n")
            await writer.drain()
            await asyncio.sleep(0.001)

    server = RawServer(endless)
    async with server as url:
        pool, path = client.endpoint(url)
        async with pool.post(path, b"{}", {}, 5) as response:
            async for _line in response.iter_lines():
                break
        assert not pool._idle  # a half-read connection must never serve the next request


async def test_refused_connection_and_header_injection_are_errors(client: Http1Client) -> None:
    async with RawServer(lambda r, w: serve_forever(r, w, b"")) as url:
        pool, path = client.endpoint(url)
        with pytest.raises(HttpError, match="line break"):
            async with pool.post(path, b"{}", {"Authorization": "Bearer k\r\nX-Evil: 1"}, 5):
                pass
    with pytest.raises(HttpError, match="cannot connect"):
        await post(client, url)
    with pytest.raises(ValueError):
        client.endpoint("ftp://example.com/v1")


async def stream_lines(client: Http1Client, handler: Handler, max_line: int) -> list[bytes]:
    async with RawServer(handler) as url:
        pool, path = client.endpoint(url)
        async with pool.post(path, b"{}", {}, 10) as response:
            return [line async for line in response.iter_lines(max_line)]


@pytest.mark.parametrize("framing", ["chunked", "length"])
async def test_a_line_over_the_cap_ends_the_stream(client: Http1Client, framing: str) -> None:
    body = b"data: short\r\n\r\ndata: " + b"x" * 5000 + b"\n\ndata: [DONE]\n\n"

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        if framing == "length":
            writer.write(answer(body))
            return
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for start in range(0, len(body), 333):
            piece = body[start : start + 333]
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await writer.drain()
        writer.write(b"0\r\n\r\n")

    lines = await stream_lines(client, handler, 5006)  # the long line fits exactly
    assert lines == [b"data: short", b"", b"data: " + b"x" * 5000, b"", b"data: [DONE]", b""]
    with pytest.raises(HttpReplyTooLarge, match="over 5005 bytes"):
        await stream_lines(client, handler, 5005)


async def test_a_line_without_end_is_refused_before_the_body_ends(client: Http1Client) -> None:
    """An upstream sending one endless line: refused once the cap is passed, not buffered to 64 MB."""
    sent = 0

    async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal sent
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n" % (64 << 20))
        while True:  # one 64 MB chunk, no line break in it
            writer.write(b"x" * 65536)
            sent += 65536
            await writer.drain()

    with pytest.raises(HttpReplyTooLarge):
        await stream_lines(client, endless, MAX_EVENT_LINE)
    assert sent < (32 << 20)  # what the client read plus what the kernel buffers; the body is 64 MB


async def test_lines_of_a_large_chunk_arrive_before_the_chunk_ends(client: Http1Client) -> None:
    release = asyncio.Event()

    async def slow_chunk(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        first, rest = b"data: 1\n\n" * 100, b"data: 2\n\n" * 100
        writer.write(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n" % (len(first) + len(rest))
        )
        writer.write(first)
        await writer.drain()
        await release.wait()
        writer.write(rest + b"\r\n0\r\n\r\n")
        await writer.drain()

    async with RawServer(slow_chunk) as url:
        pool, path = client.endpoint(url)
        async with pool.post(path, b"{}", {}, 10) as response:
            lines = response.iter_lines()
            assert await asyncio.wait_for(anext(lines), 5) == b"data: 1"  # the chunk is not complete yet
            release.set()
            rest = [line async for line in lines]
    assert rest.count(b"data: 1") == 99 and rest.count(b"data: 2") == 100
