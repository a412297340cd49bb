"""Session history: per `uuid_str`, ordered messages with a length cap and a TTL."""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio as aioredis

from . import keys
from .connection import translate_errors
from .records import ChatMessage


class SessionHistory:
    def __init__(self, redis: aioredis.Redis, cap: int = 200, ttl: int = 7 * 24 * 3600) -> None:
        self._redis, self.cap, self.ttl = redis, cap, ttl

    @translate_errors
    async def append(self, uuid: str, messages: Sequence[ChatMessage]) -> int:
        """Append messages, keep the newest `cap`, refresh the TTL; returns the new length."""
        if not messages:
            return await self.length(uuid)
        key = keys.session_history(uuid)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.rpush(key, *(m.model_dump_json(exclude_none=True) for m in messages))
            pipe.ltrim(key, -self.cap, -1)
            pipe.expire(key, self.ttl)
            pipe.llen(key)
            *_, length = await pipe.execute()
        return int(length)

    @translate_errors
    async def get(self, uuid: str, last: int | None = None) -> list[ChatMessage]:
        start = -last if last else 0
        raw = await self._redis.lrange(keys.session_history(uuid), start, -1)
        return [ChatMessage.model_validate_json(r) for r in raw]

    @translate_errors
    async def length(self, uuid: str) -> int:
        return int(await self._redis.llen(keys.session_history(uuid)))

    @translate_errors
    async def clear(self, uuid: str) -> None:
        await self._redis.delete(keys.session_history(uuid))
