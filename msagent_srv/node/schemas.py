"""Wire format of a tool node."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

NODE_TOKEN_HEADER = "X-Node-Token"


class ExecuteRequest(BaseModel):
    params: str | dict[str, Any] | None = Field(
        None, description="tool arguments: a JSON string or an object"
    )
    kwargs: dict[str, Any] = Field(default_factory=dict)


class ToolInfo(BaseModel):
    name: str
    description: str
    parameters: list[dict[str, Any]] | dict[str, Any]
