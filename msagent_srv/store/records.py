"""Typed records the store keeps in Redis (as JSON)."""

from __future__ import annotations

import time
from enum import Enum
from typing import Any

from pydantic import BaseModel, Field


class ToolStatus(str, Enum):
    pending = "pending"
    running = "running"
    exited = "exited"
    failed = "failed"


class ToolInstance(BaseModel):
    """One tool node of one tenant."""

    tool_name: str
    tenant_id: str
    image: str = ""
    status: ToolStatus = ToolStatus.pending
    port: int | None = None
    container_id: str | None = None
    # how the manager reaches the node: "http://host:port", or "unix:/path" for nodes without a network
    endpoint: str = ""
    runtime: str = ""
    config_digest: str = ""
    error: str | None = None
    # Secret the node requires on every call; never part of an API reply.
    node_token: str = ""
    created_at: float = Field(default_factory=time.time)
    updated_at: float = Field(default_factory=time.time)
    last_used_at: float = Field(default_factory=time.time)
    # an exited record is kept until then (a removed tool answers `exited`), then forgotten
    expires_at: float | None = None

    @property
    def node_name(self) -> str:
        return f"{self.tool_name}_{self.tenant_id}"


class ChatMessage(BaseModel):
    """One turn of a session's history, in OpenAI's message shape."""

    role: str
    content: str | None = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None


class FileStatus(str, Enum):
    pending = "pending"
    indexing = "indexing"
    indexed = "indexed"
    failed = "failed"
    not_indexed = "not_indexed"  # kept and listed, but no text to index (`error` says why)


class FileRecord(BaseModel):
    """An uploaded file of one session."""

    name: str
    path: str
    size: int
    sha256: str
    content_type: str = ""
    status: FileStatus = FileStatus.pending
    chunks: int = 0
    progress: float = 0.0  # share of the file's chunks indexed so far
    error: str | None = None
    uploaded_at: float = Field(default_factory=time.time)
