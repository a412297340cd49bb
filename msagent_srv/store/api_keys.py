"""Per-tenant API keys, stored hashed: the key is shown once, when it is made, and never kept."""

from __future__ import annotations

import hashlib
import secrets
import time

import redis.asyncio as aioredis
from pydantic import BaseModel, Field

from . import keys
from .connection import translate_errors

KEY_PREFIX = "msk_"


class ApiKeyRecord(BaseModel):
    tenant_id: str
    name: str = ""
    prefix: str  # the first characters, to tell keys apart in listings
    created_at: float = Field(default_factory=time.time)


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKeys:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis

    @translate_errors
    async def create(self, tenant_id: str, name: str = "") -> tuple[str, ApiKeyRecord]:
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        record = ApiKeyRecord(tenant_id=tenant_id, name=name, prefix=key[:12])
        await self._redis.hset(keys.API_KEYS, _digest(key), record.model_dump_json())
        return key, record

    @translate_errors
    async def tenant_of(self, key: str) -> str | None:
        raw = await self._redis.hget(keys.API_KEYS, _digest(key))
        return ApiKeyRecord.model_validate_json(raw).tenant_id if raw else None

    @translate_errors
    async def list(self, tenant_id: str | None = None) -> list[ApiKeyRecord]:
        records = [
            ApiKeyRecord.model_validate_json(v) for v in (await self._redis.hgetall(keys.API_KEYS)).values()
        ]
        return sorted((r for r in records if tenant_id in (None, r.tenant_id)), key=lambda r: r.created_at)

    @translate_errors
    async def revoke(self, prefix: str) -> int:
        """Revoke every key starting with `prefix` (at least 8 characters); returns how many."""
        if len(prefix) < 8:
            raise ValueError("give at least 8 characters of the key")
        removed = 0
        for digest, raw in (await self._redis.hgetall(keys.API_KEYS)).items():
            if ApiKeyRecord.model_validate_json(raw).prefix.startswith(prefix[:12]):
                removed += await self._redis.hdel(keys.API_KEYS, digest)
        return removed
