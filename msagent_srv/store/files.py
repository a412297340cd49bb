"""File records of uploaded documents, per `uuid_str`."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from . import keys
from .connection import translate_errors
from .errors import NotFound
from .records import FileRecord


class FileRecords:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis

    @translate_errors
    async def put(self, uuid: str, record: FileRecord) -> None:
        await self._redis.hset(keys.session_files(uuid), record.name, record.model_dump_json())

    @translate_errors
    async def get(self, uuid: str, name: str) -> FileRecord:
        raw = await self._redis.hget(keys.session_files(uuid), name)
        if raw is None:
            raise NotFound(f"file {name!r} not found")
        return FileRecord.model_validate_json(raw)

    @translate_errors
    async def list(self, uuid: str) -> list[FileRecord]:
        raw = await self._redis.hgetall(keys.session_files(uuid))
        return sorted((FileRecord.model_validate_json(v) for v in raw.values()), key=lambda f: f.name)

    async def update(self, uuid: str, name: str, **changes: Any) -> FileRecord:
        current = await self.get(uuid, name)
        record = FileRecord.model_validate({**current.model_dump(), **changes})
        await self.put(uuid, record)
        return record

    @translate_errors
    async def delete(self, uuid: str, name: str) -> bool:
        return bool(await self._redis.hdel(keys.session_files(uuid), name))
