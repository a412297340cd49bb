"""Reading a reply body that may be larger than we keep."""

from __future__ import annotations

import aiohttp


async def read_bounded(response: aiohttp.ClientResponse, limit: int, too_large: Exception) -> bytes:
    """The body, refused with `too_large` past `limit` bytes: on its declared length before reading, else as
    soon as what arrived passes it. Leaving the `async with` unread closes the connection."""
    if response.content_length is not None and response.content_length > limit:
        raise too_large
    body = bytearray()
    async for chunk in response.content.iter_chunked(1 << 16):
        body += chunk
        if len(body) > limit:
            raise too_large
    return bytes(body)
