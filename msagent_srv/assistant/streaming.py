"""Streaming one engine reply in any wire format: the status waits for the upstream's first answer (so
its refusals still reach the caller as an HTTP status), then each batch is one write; an upstream failure
mid-stream is told in the wire's own way, and a caller who hangs up closes the upstream request."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Protocol

from aiohttp import web

from ..web.errors import ApiError
from .backends.base import UpstreamError
from .engine import Batch


class Wire(Protocol):
    content_type: str

    def head(self) -> bytes: ...  # before the first batch

    def batch(self, batch: Batch) -> bytes: ...

    def failure(self, exc: UpstreamError) -> bytes: ...  # the upstream failed mid-stream

    async def complete(self) -> None: ...  # the reply is whole, before its tail is sent (e.g. store it)

    def tail(self) -> bytes: ...  # after the last batch


async def stream_reply(request: web.Request, wire: Wire, batches: AsyncIterator[Batch]) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={
            "Content-Type": wire.content_type,
            "Cache-Control": "no-cache",
            "X-Request-ID": request["request_id"],
        }
    )
    try:
        first = await anext(batches)
    except UpstreamError as exc:
        raise ApiError(exc.status, exc.message, code=exc.code) from None
    await response.prepare(request)
    try:
        await response.write(wire.head() + wire.batch(first))
        async for batch in batches:
            if batch:
                await response.write(wire.batch(batch))
    except UpstreamError as exc:
        await response.write(wire.failure(exc))
    except ConnectionResetError:  # the caller hung up: close the upstream request; nothing is left to say
        await batches.aclose()
        return response
    except asyncio.CancelledError:
        await batches.aclose()
        raise
    else:
        await wire.complete()
        await response.write(wire.tail())
    await response.write_eof()
    return response
