"""OpenAPI documents a tenant saved under a name (the manager's /openapi_schema endpoints), per tenant."""

from __future__ import annotations

import time
from typing import Any

import redis.asyncio as aioredis
from pydantic import BaseModel, Field

from . import keys
from .connection import translate_errors
from .errors import Conflict, NotFound

# one step: a new name is refused once the tenant holds `limit` documents; replacing one always works
_PUT = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 or redis.call('HLEN', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  return 1
end
return 0
"""


class OpenApiDocument(BaseModel):
    name: str
    tenant_id: str
    document: dict[str, Any]
    saved_at: float = Field(default_factory=time.time)


class OpenApiDocs:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis
        self._put = redis.register_script(_PUT)

    @translate_errors
    async def put(self, record: OpenApiDocument, limit: int) -> None:
        """Save (or replace) the document; Conflict when the tenant already holds `limit` others."""
        saved = await self._put(
            keys=[keys.openapi_docs(record.tenant_id)], args=[record.name, record.model_dump_json(), limit]
        )
        if not saved:
            raise Conflict(f"tenant {record.tenant_id!r} already holds {limit} OpenAPI documents")

    @translate_errors
    async def get(self, tenant_id: str, name: str) -> OpenApiDocument:
        raw = await self._redis.hget(keys.openapi_docs(tenant_id), name)
        if raw is None:
            raise NotFound(f"no OpenAPI document named {name!r}")
        return OpenApiDocument.model_validate_json(raw)

    @translate_errors
    async def names(self, tenant_id: str) -> list[str]:
        return sorted(await self._redis.hkeys(keys.openapi_docs(tenant_id)))

    @translate_errors
    async def delete(self, tenant_id: str, name: str) -> bool:
        return bool(await self._redis.hdel(keys.openapi_docs(tenant_id), name))
