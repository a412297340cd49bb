"""The Redis-backed state store every service uses."""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from .connection import connect, ping
from .errors import Conflict, NotFound, PortsExhausted, StoreError, StoreUnavailable
from .files import FileRecords
from .openapi_docs import OpenApiDocs
from .ports import PortAllocator
from .records import ChatMessage, FileRecord, FileStatus, ToolInstance, ToolStatus
from .registry import ToolRegistry
from .responses import ResponseStore, StoredResponse
from .sessions import SessionHistory


@dataclass
class Store:
    """All state of the stack, behind one Redis client."""

    redis: aioredis.Redis
    tools: ToolRegistry
    ports: PortAllocator
    sessions: SessionHistory
    files: FileRecords
    openapi_docs: OpenApiDocs
    responses: ResponseStore

    @classmethod
    def open(
        cls,
        url: str,
        *,
        timeout: float = 3.0,
        port_range: tuple[int, int] = (31513, 32512),
        port_bind_host: str = "127.0.0.1",
        history_cap: int = 200,
        history_ttl: int = 7 * 24 * 3600,
        history_max_bytes: int = 1 << 20,
        responses_ttl: int = 30 * 24 * 3600,
    ) -> Store:
        redis = connect(url, timeout)
        return cls(
            redis=redis,
            tools=ToolRegistry(redis),
            ports=PortAllocator(redis, *port_range, bind_host=port_bind_host),
            sessions=SessionHistory(redis, history_cap, history_ttl, history_max_bytes),
            files=FileRecords(redis),
            openapi_docs=OpenApiDocs(redis),
            responses=ResponseStore(redis, responses_ttl),
        )

    async def ping(self) -> bool:
        return await ping(self.redis)

    async def close(self) -> None:
        await self.redis.aclose()


__all__ = [
    "ChatMessage",
    "Conflict",
    "FileRecord",
    "FileRecords",
    "FileStatus",
    "NotFound",
    "OpenApiDocs",
    "PortAllocator",
    "PortsExhausted",
    "ResponseStore",
    "SessionHistory",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "StoredResponse",
    "ToolInstance",
    "ToolRegistry",
    "ToolStatus",
]
