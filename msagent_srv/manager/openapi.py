"""The manager's OpenAPI document: its operations, each reply in the `{request_id, message, output}`
envelope."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..web import openapi
from ..web.openapi import Operation
from .schemas import (
    CreateToolRequest,
    Envelope,
    ExecuteToolRequest,
    ListToolsQuery,
    ToolInfoOutput,
    ToolListOutput,
    ToolRef,
    ToolStatusOutput,
)

STATUS = Envelope[ToolStatusOutput]
NODE_ERRORS = (400, 401, 403, 404, 409, 503)
CREATE_ERRORS = (*NODE_ERRORS, 429)  # 400 unknown tool, 403 refused on this runtime, 429 tenant at its cap
OPERATIONS = [
    Operation("post", "/create_tool_service", "Create a tool node (answers pending at once)",
              body=CreateToolRequest, reply=STATUS, errors=CREATE_ERRORS),
    Operation("post", "/update_tool_service", "Restart a tool node with new config or image",
              body=CreateToolRequest, reply=STATUS, errors=CREATE_ERRORS),
    Operation("post", "/check_tool_service_status", "Status of a tool node", body=ToolRef, reply=STATUS,
              errors=NODE_ERRORS),
    Operation("post", "/remove_tool", "Stop and remove a tool node", body=ToolRef, reply=STATUS,
              errors=NODE_ERRORS),
    Operation("get", "/tools", "Tool nodes of a tenant", query=ListToolsQuery,
              reply=Envelope[ToolListOutput], errors=(400, 401, 403, 503)),
    Operation("post", "/tool_info", "Name, description and parameters of a running tool", body=ToolRef,
              reply=Envelope[ToolInfoOutput], errors=(*NODE_ERRORS, 502, 504)),
    Operation("post", "/execute_tool", "Run a tool; output is the tool's result", body=ExecuteToolRequest,
              errors=(*NODE_ERRORS, 502, 504)),
]  # fmt: skip


def build_document() -> dict[str, Any]:
    document = openapi.build_document("msagent-srv tool manager", OPERATIONS, Envelope[Any])
    document["paths"]["/health"] = {
        "get": {
            "summary": "Liveness and state store check",
            "operationId": "health",
            "responses": {"200": {"description": "OK"}, "503": {"description": "Store down"}},
        }
    }
    return document


def add_routes(app: web.Application) -> None:
    openapi.add_routes(app, build_document(), "Every reply is <code>{request_id, message, output}</code>.")
