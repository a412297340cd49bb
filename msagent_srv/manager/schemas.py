"""Wire format of the tool manager: every request and reply is one of these models."""

from __future__ import annotations

from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, Field, StringConstraints

from ..identity import SafeName
from ..node.schemas import ToolInfo
from ..store.records import ToolStatus

ImageName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_./:@-]{0,254}$")]

T = TypeVar("T")


class ToolRef(BaseModel):
    tool_name: SafeName
    tenant_id: SafeName = "default"


class CreateToolRequest(ToolRef):
    tool_cfg: dict[str, Any] = Field(default_factory=dict, description="configuration given to the tool")
    tool_image: ImageName | None = Field(None, description="node image; the manager's default when empty")


class ExecuteToolRequest(ToolRef):
    params: str | dict[str, Any] = Field("{}", description="tool arguments: a JSON string or an object")
    kwargs: dict[str, Any] = Field(default_factory=dict)


class ListToolsQuery(BaseModel):
    tenant_id: SafeName = "default"


class ToolStatusOutput(BaseModel):
    tool_node_name: str
    status: ToolStatus
    error: str | None = None


class ToolListOutput(BaseModel):
    tools: dict[str, ToolStatus]


ToolInfoOutput = ToolInfo  # what the manager relays is what the node says of its tool


class Envelope(BaseModel, Generic[T]):
    request_id: str
    message: str = ""
    output: T | None = None
