"""Tenant tool registries: one Redis hash per tenant, status changes as atomic compare-and-set scripts."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

import redis.asyncio as aioredis

from . import keys
from .connection import translate_errors
from .errors import Conflict, NotFound
from .records import ToolInstance, ToolStatus

# KEYS[1] tenant hash, KEYS[2] tenants set; ARGV[1] tool, ARGV[2] record JSON, ARGV[3] tenant,
# ARGV[4..] statuses an existing record may have to be replaced. Returns {1, new} or {0, existing}.
_CREATE = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current then
  local status = cjson.decode(current)['status']
  local replaceable = false
  for i = 4, #ARGV do if ARGV[i] == status then replaceable = true end end
  if not replaceable then return {0, current} end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[3])
return {1, ARGV[2]}
"""

# KEYS[1] tenant hash; ARGV[1] tool, ARGV[2] patch JSON, ARGV[3] now, ARGV[4..] allowed current statuses
# (none given: any). Returns {1, new}, {0, current} when the status does not allow it, or {-1} if missing.
_TRANSITION = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
if not current then return {-1} end
local record = cjson.decode(current)
if #ARGV >= 4 then
  local allowed = false
  for i = 4, #ARGV do if ARGV[i] == record['status'] then allowed = true end end
  if not allowed then return {0, current} end
end
for k, v in pairs(cjson.decode(ARGV[2])) do record[k] = v end
record['updated_at'] = tonumber(ARGV[3])
local encoded = cjson.encode(record)
redis.call('HSET', KEYS[1], ARGV[1], encoded)
return {1, encoded}
"""

# KEYS[1] tenant hash; ARGV[1] tool, ARGV[2..] statuses that allow deletion (none: any).
_DELETE = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
if not current then return {-1} end
if #ARGV >= 2 then
  local status = cjson.decode(current)['status']
  local allowed = false
  for i = 2, #ARGV do if ARGV[i] == status then allowed = true end end
  if not allowed then return {0, current} end
end
redis.call('HDEL', KEYS[1], ARGV[1])
return {1, current}
"""


# KEYS[1] tenant hash; ARGV[1] tool, ARGV[2] the exited record JSON. Replaces the record with ARGV[2] and
# returns the one it replaced ({1, old}), or {-1} if there was none.
_RETIRE = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
if not current then return {-1} end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return {1, current}
"""


# KEYS[1] tenant hash; ARGV[1] tool, ARGV[2] now. Deletes the record only if it is past its keeping time
# (read and deleted in one step: a record re-made meanwhile is never taken for the expired one).
_EXPIRE = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
if not current then return 0 end
local expires = cjson.decode(current)['expires_at']
if expires and expires ~= cjson.null and tonumber(expires) <= tonumber(ARGV[2]) then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return 1
end
return 0
"""


def _statuses(values: Iterable[ToolStatus]) -> list[str]:
    return [ToolStatus(v).value for v in values]


class ToolRegistry:
    """Tool instances per tenant. Every change is one round trip and atomic."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis
        self._create = redis.register_script(_CREATE)
        self._transition = redis.register_script(_TRANSITION)
        self._delete = redis.register_script(_DELETE)
        self._retire = redis.register_script(_RETIRE)
        self._expire = redis.register_script(_EXPIRE)

    async def _live(self, tenant_id: str, raw: dict[str, str]) -> list[ToolInstance]:
        """The records, less exited ones past their keeping time (deleted as they are met)."""
        now, records, expired = time.time(), [], []
        for name, value in raw.items():
            record = ToolInstance.model_validate_json(value)
            if record.expires_at is not None and record.expires_at <= now:
                expired.append(name)
            else:
                records.append(record)
        if expired:
            await self._delete_expired(tenant_id, expired)
        return records

    async def _delete_expired(self, tenant_id: str, names: list[str]) -> None:
        now = repr(time.time())
        for name in names:  # only if still expired: a re-create may have replaced it meanwhile
            await self._expire(keys=[keys.tenant_tools(tenant_id)], args=[name, now])

    @translate_errors
    async def get(self, tenant_id: str, tool_name: str) -> ToolInstance:
        raw = await self._redis.hget(keys.tenant_tools(tenant_id), tool_name)
        found = await self._live(tenant_id, {tool_name: raw}) if raw is not None else []
        if not found:
            raise NotFound(f"tool {tool_name!r} not found for tenant {tenant_id!r}")
        return found[0]

    @translate_errors
    async def list(self, tenant_id: str) -> list[ToolInstance]:
        raw = await self._redis.hgetall(keys.tenant_tools(tenant_id))
        return sorted(await self._live(tenant_id, raw), key=lambda t: t.tool_name)

    @translate_errors
    async def retire(self, tenant_id: str, tool_name: str, keep_seconds: float) -> ToolInstance:
        """Mark the tool exited and keep that record `keep_seconds` (status checks and listings answer
        `exited`, as the original servers did); returns the record it replaced, for its node's cleanup."""
        now = time.time()
        exited = ToolInstance(
            tool_name=tool_name, tenant_id=tenant_id, status=ToolStatus.exited, updated_at=now,
            expires_at=now + keep_seconds,
        )  # fmt: skip
        result = await self._retire(
            keys=[keys.tenant_tools(tenant_id)], args=[tool_name, exited.model_dump_json()]
        )
        if result[0] == -1:
            raise NotFound(f"tool {tool_name!r} not found for tenant {tenant_id!r}")
        return ToolInstance.model_validate_json(result[1])

    @translate_errors
    async def tenants(self) -> list[str]:
        return sorted(await self._redis.smembers(keys.TENANTS))

    async def all(self) -> list[ToolInstance]:
        instances: list[ToolInstance] = []
        for tenant in await self.tenants():
            instances.extend(await self.list(tenant))
        return instances

    @translate_errors
    async def create(
        self, instance: ToolInstance, replace: Iterable[ToolStatus] = (ToolStatus.exited, ToolStatus.failed)
    ) -> tuple[bool, ToolInstance]:
        """Store `instance` unless a record exists whose status is not in `replace`.

        Returns (created, record): the new record, or the existing one that blocked it.
        """
        created, raw = await self._create(
            keys=[keys.tenant_tools(instance.tenant_id), keys.TENANTS],
            args=[instance.tool_name, instance.model_dump_json(), instance.tenant_id, *_statuses(replace)],
        )
        return bool(created), ToolInstance.model_validate_json(raw)

    @translate_errors
    async def transition(
        self,
        tenant_id: str,
        tool_name: str,
        *,
        allowed_from: Iterable[ToolStatus] = (),
        **changes: Any,
    ) -> ToolInstance:
        """Apply `changes` if the current status is one of `allowed_from` (empty: any status).

        Raises NotFound if there is no record and Conflict if its status does not allow the change.
        """
        patch = json.loads(ToolInstance.model_construct(**changes).model_dump_json(include=set(changes)))
        result = await self._transition(
            keys=[keys.tenant_tools(tenant_id)],
            args=[tool_name, json.dumps(patch), repr(time.time()), *_statuses(allowed_from)],
        )
        return _outcome(result, tenant_id, tool_name)

    @translate_errors
    async def delete(
        self, tenant_id: str, tool_name: str, *, allowed_from: Iterable[ToolStatus] = ()
    ) -> ToolInstance:
        result = await self._delete(
            keys=[keys.tenant_tools(tenant_id)], args=[tool_name, *_statuses(allowed_from)]
        )
        return _outcome(result, tenant_id, tool_name)


def _outcome(result: list, tenant_id: str, tool_name: str) -> ToolInstance:
    """A guarded script's answer: [1, record] done; [0, record] its status refused it; [-1] no record."""
    if result[0] == -1:
        raise NotFound(f"tool {tool_name!r} not found for tenant {tenant_id!r}")
    record = ToolInstance.model_validate_json(result[1])
    if result[0] == 0:
        raise Conflict(f"tool {tool_name!r} is {record.status.value}")
    return record
