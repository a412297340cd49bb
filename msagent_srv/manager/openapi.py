"""The manager's OpenAPI document: its operations, each reply in the `{request_id, message, output}`
envelope."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..web import openapi
from ..web.openapi import Operation
from . import openapi_tools, routes
from .keys import METRICS
from .schemas import (
    CreateToolRequest,
    Envelope,
    ExecuteOpenApiRequest,
    ExecuteToolRequest,
    ListOpenApiQuery,
    ListToolsQuery,
    OpenApiListOutput,
    OpenApiRef,
    OpenApiRemovedOutput,
    OpenApiSchemaRequest,
    OpenApiToolsOutput,
    SaveOpenApiRequest,
    ToolInfoOutput,
    ToolListOutput,
    ToolRef,
    ToolStatusOutput,
)

STATUS = Envelope[ToolStatusOutput]
NODE_ERRORS = (400, 401, 403, 404, 409, 503)
CREATE_ERRORS = (*NODE_ERRORS, 429)  # 400 unknown tool, 403 refused on this runtime, 429 tenant at its cap
CALL_ERRORS = (*NODE_ERRORS, 502, 504)
OPENAPI_ERRORS = (400, 401, 403, 404, 503)


async def metrics(request: web.Request) -> web.Response:
    return await request.app[METRICS].handle(request)


# Every path of the original servers is served with and without its trailing slash (`slash=True`).
OPERATIONS = [
    Operation("get", "/", "Reachability: answers Hello World (no key needed)", routes.root, errors=()),
    Operation("post", "/", "Reachability: answers Hello World (no key needed)", routes.root, errors=()),
    Operation("post", "/create_tool_service", "Create a tool node (answers pending at once)",
              routes.create_tool_service, body=CreateToolRequest, reply=STATUS, errors=CREATE_ERRORS, slash=True),
    Operation("post", "/update_tool_service", "Restart a tool node with new config or image",
              routes.update_tool_service, body=CreateToolRequest, reply=STATUS, errors=CREATE_ERRORS, slash=True),
    Operation("post", "/check_tool_service_status", "Status of a tool node", routes.check_tool_service_status,
              body=ToolRef, reply=STATUS, errors=NODE_ERRORS, slash=True),
    Operation("get", "/check_tool_service_status", "Status of a tool node (query parameters)",
              routes.check_tool_service_status, query=ToolRef, reply=STATUS, errors=NODE_ERRORS, slash=True),
    Operation("post", "/remove_tool", "Stop and remove a tool node (idempotent: unknown ones answer exited)",
              routes.remove_tool, body=ToolRef, reply=STATUS, errors=NODE_ERRORS, slash=True),
    Operation("delete", "/remove_tool", "Stop and remove a tool node (query parameters)", routes.remove_tool,
              query=ToolRef, reply=STATUS, errors=NODE_ERRORS, slash=True),
    Operation("get", "/tools", "Tool nodes of a tenant", routes.list_tools, query=ListToolsQuery,
              reply=Envelope[ToolListOutput], errors=(400, 401, 403, 503), slash=True),
    Operation("post", "/tool_info", "Name, description and parameters of a running tool", routes.tool_info,
              body=ToolRef, reply=Envelope[ToolInfoOutput], errors=CALL_ERRORS, slash=True),
    Operation("get", "/tool_info", "Name, description and parameters of a running tool (query parameters)",
              routes.tool_info, query=ToolRef, reply=Envelope[ToolInfoOutput], errors=CALL_ERRORS, slash=True),
    Operation("post", "/execute_tool", "Run a tool; output is the tool's result", routes.execute_tool,
              body=ExecuteToolRequest, errors=CALL_ERRORS, slash=True),
    Operation("post", "/openapi_schema/save", "Save an OpenAPI 3 document under a name (replaces one of that name)",
              openapi_tools.save_openapi, body=SaveOpenApiRequest, reply=Envelope[OpenApiToolsOutput],
              errors=(*OPENAPI_ERRORS, 409, 413), slash=True),
    Operation("post", "/openapi_schema", "A saved OpenAPI document (format=tools: its operations as tools)",
              openapi_tools.openapi_schema, body=OpenApiSchemaRequest, errors=OPENAPI_ERRORS, slash=True),
    Operation("get", "/openapi_schema/list", "Names of a tenant's saved OpenAPI documents",
              openapi_tools.list_openapi, query=ListOpenApiQuery, reply=Envelope[OpenApiListOutput],
              errors=(400, 401, 403, 503), slash=True),
    Operation("post", "/openapi_schema/remove", "Remove a saved OpenAPI document (idempotent)",
              openapi_tools.remove_openapi, body=OpenApiRef, reply=Envelope[OpenApiRemovedOutput],
              errors=(400, 401, 403, 503), slash=True),
    Operation("post", "/execute_openapi", "Call one operation of a saved OpenAPI document; output is its reply",
              openapi_tools.execute_openapi, body=ExecuteOpenApiRequest, errors=(*OPENAPI_ERRORS, 502, 504),
              slash=True),
    Operation("get", "/health", "Liveness and state store check", routes.health, errors=(503,)),
    Operation("get", "/metrics", "Prometheus metrics", metrics, text=True, errors=()),
]  # fmt: skip


def add_routes(app: web.Application) -> None:
    """Every route of the manager, and the document describing exactly those."""
    openapi.mount(
        app, "msagent-srv tool manager", OPERATIONS, Envelope[Any],
        "Every reply is <code>{request_id, message, output}</code>.",
    )  # fmt: skip
