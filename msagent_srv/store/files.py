"""File records of uploaded documents, per `uuid_str`."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from ..identity import Space
from . import keys
from .connection import translate_errors
from .errors import NotFound
from .records import FileRecord


class FileRecords:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis

    @translate_errors
    async def put(self, space: Space, record: FileRecord) -> None:
        await self._redis.hset(keys.session_files(space), record.name, record.model_dump_json())

    @translate_errors
    async def get(self, space: Space, name: str) -> FileRecord:
        raw = await self._redis.hget(keys.session_files(space), name)
        if raw is None:
            raise NotFound(f"file {name!r} not found")
        return FileRecord.model_validate_json(raw)

    @translate_errors
    async def list(self, space: Space) -> list[FileRecord]:
        raw = await self._redis.hgetall(keys.session_files(space))
        return sorted((FileRecord.model_validate_json(v) for v in raw.values()), key=lambda f: f.name)

    async def update(self, space: Space, name: str, **changes: Any) -> FileRecord:
        current = await self.get(space, name)
        record = FileRecord.model_validate({**current.model_dump(), **changes})
        await self.put(space, record)
        return record

    @translate_errors
    async def delete(self, space: Space, name: str) -> bool:
        return bool(await self._redis.hdel(keys.session_files(space), name))
