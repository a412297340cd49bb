"""Wire format of the tool manager: every request and reply is one of these models."""

from __future__ import annotations

from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

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


# -- OpenAPI tools: documents a tenant saves, their operations as tools, one call of an operation ------------
class OpenApiRef(BaseModel):
    openapi_name: SafeName = Field(description="the name the document was saved under")
    tenant_id: SafeName = "default"


class OpenApiSchemaRequest(OpenApiRef):
    format: Literal["openapi", "tools"] = Field(
        "openapi",
        description="openapi: the saved document itself (what the original's OpenapiServiceProxy converts); "
        "tools: its operations as tool schemas",
    )


class SaveOpenApiRequest(OpenApiRef):
    model_config = ConfigDict(populate_by_name=True)

    document: dict[str, Any] | str = Field(
        alias="schema", description="an OpenAPI 3 document: a JSON object, or its JSON text"
    )


class ExecuteOpenApiRequest(OpenApiRef):
    url: str = Field(max_length=8192, description="the operation's URL: under one of the document's servers")
    method: str = Field("GET", pattern=r"^[A-Za-z]{1,10}$")
    params: str | dict[str, Any] = Field(default_factory=dict, description="query parameters")
    data: dict[str, Any] | list[Any] | None = Field(
        default_factory=dict, description="the JSON body (POST, PUT, PATCH; DELETE when not empty)"
    )
    headers: dict[str, Any] = Field(
        default_factory=dict, description="request headers (Host and the like dropped)"
    )
    cookies: dict[str, Any] = Field(default_factory=dict)


class OpenApiToolParameter(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    name: str
    type: str = "string"
    description: str = ""
    required: bool = False
    location: Literal["path", "query", "header", "cookie", "body"] = Field(alias="in")
    enum: list[Any] | None = None


class OpenApiTool(BaseModel):
    name: str
    description: str
    url: str
    method: str
    parameters: list[OpenApiToolParameter]


class OpenApiToolsOutput(BaseModel):
    openapi_name: str
    tools: list[OpenApiTool]


class OpenApiListOutput(BaseModel):
    openapi_names: list[str]


class OpenApiRemovedOutput(BaseModel):
    openapi_name: str
    removed: bool


class ListOpenApiQuery(BaseModel):
    tenant_id: SafeName = "default"
