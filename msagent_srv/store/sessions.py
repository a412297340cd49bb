"""Session history: per Space, ordered messages with a count cap, a size cap and a TTL."""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio as aioredis

from ..identity import Space
from . import keys
from .connection import translate_errors
from .records import ChatMessage

# KEYS[1] the history; ARGV[1] count cap, ARGV[2] size cap (bytes), ARGV[3] TTL, ARGV[4..] new messages.
# Keeps the newest messages that fit both caps, in one step. Returns the new length.
_APPEND = """
for i = 4, #ARGV do redis.call('RPUSH', KEYS[1], ARGV[i]) end
redis.call('LTRIM', KEYS[1], -tonumber(ARGV[1]), -1)
local items = redis.call('LRANGE', KEYS[1], 0, -1)
local budget, keep = tonumber(ARGV[2]), 0
for i = #items, 1, -1 do
  budget = budget - #items[i]
  if budget < 0 then break end
  keep = keep + 1
end
if keep == 0 then redis.call('DEL', KEYS[1]) return 0 end
if keep < #items then redis.call('LTRIM', KEYS[1], -keep, -1) end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
return keep
"""
_TRUNCATED = " [... truncated: the message was larger than the session history keeps]"


class SessionHistory:
    """`cap` messages and `max_bytes` of them (as stored JSON) at most: a few huge messages must not
    fill Redis, nor be re-sent upstream with every later turn."""

    def __init__(
        self, redis: aioredis.Redis, cap: int = 200, ttl: int = 7 * 24 * 3600, max_bytes: int = 1 << 20
    ) -> None:
        self._redis, self.cap, self.ttl, self.max_bytes = redis, cap, ttl, max_bytes
        self._append = redis.register_script(_APPEND)

    def _encode(self, message: ChatMessage) -> str:
        """The stored JSON, at most half the size cap: a larger message keeps the head of its text, and
        tool calls too large to keep keep their ids and names (so their results still pair up)."""
        raw = message.model_dump_json(exclude_none=True)
        room = self.max_bytes // 2
        if len(raw.encode()) <= room:
            return raw
        if message.tool_calls:
            calls = [
                {**c, "function": {**(c.get("function") or {}), "arguments": "{}"}}
                for c in message.tool_calls
            ]
            message = message.model_copy(update={"tool_calls": calls})
            raw = message.model_dump_json(exclude_none=True)
        content = message.content or ""
        over = len(raw.encode()) - room + len(_TRUNCATED.encode())
        kept = content.encode()[: max(0, len(content.encode()) - over)]
        text = kept.decode(errors="ignore") + _TRUNCATED
        return message.model_copy(update={"content": text}).model_dump_json(exclude_none=True)

    @translate_errors
    async def append(self, space: Space, messages: Sequence[ChatMessage]) -> int:
        """Append messages, keep the newest that fit the caps, refresh the TTL; returns the new length."""
        if not messages:
            return await self.length(space)
        args = [self.cap, self.max_bytes, self.ttl, *(self._encode(m) for m in messages)]
        return int(await self._append(keys=[keys.session_history(space)], args=args))

    @translate_errors
    async def get(self, space: Space, last: int | None = None) -> list[ChatMessage]:
        start = -last if last else 0
        raw = await self._redis.lrange(keys.session_history(space), start, -1)
        return [ChatMessage.model_validate_json(r) for r in raw]

    @translate_errors
    async def length(self, space: Space) -> int:
        return int(await self._redis.llen(keys.session_history(space)))

    @translate_errors
    async def clear(self, space: Space) -> None:
        await self._redis.delete(keys.session_history(space))
