"""OpenAPI 3.1 document built from the pydantic models, and a self-contained page that renders it."""

from __future__ import annotations

import html
import json
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from .. import __version__
from .schemas import (
    CreateToolRequest,
    Envelope,
    ExecuteToolRequest,
    ToolInfoOutput,
    ToolListOutput,
    ToolRef,
    ToolStatusOutput,
)

# (method, path, summary, request model or None, reply output model or None)
OPERATIONS: list[tuple[str, str, str, type[BaseModel] | None, type[BaseModel] | None]] = [
    (
        "post",
        "/create_tool_service",
        "Create a tool node (answers pending at once)",
        CreateToolRequest,
        ToolStatusOutput,
    ),
    (
        "post",
        "/update_tool_service",
        "Restart a tool node with new config or image",
        CreateToolRequest,
        ToolStatusOutput,
    ),
    ("post", "/check_tool_service_status", "Status of a tool node", ToolRef, ToolStatusOutput),
    ("post", "/remove_tool", "Stop and remove a tool node", ToolRef, ToolStatusOutput),
    ("get", "/tools", "Tool nodes of a tenant", None, ToolListOutput),
    ("post", "/tool_info", "Name, description and parameters of a running tool", ToolRef, ToolInfoOutput),
    ("post", "/execute_tool", "Run a tool; output is the tool's result", ExecuteToolRequest, None),
]


def build_document() -> dict[str, Any]:
    envelopes = {out: Envelope[out] for *_, out in OPERATIONS if out is not None}  # type: ignore[valid-type]
    models: list[type[BaseModel]] = [m for _, _, _, m, _ in OPERATIONS if m is not None]
    models += [*envelopes.values(), Envelope[Any]]
    refs, definitions = models_json_schema(
        [(m, "validation") for m in dict.fromkeys(models)], ref_template="#/components/schemas/{model}"
    )
    error_ref = refs[(Envelope[Any], "validation")]
    paths: dict[str, Any] = {}
    for method, path, summary, request_model, output_model in OPERATIONS:
        reply = envelopes.get(output_model, Envelope[Any]) if output_model else Envelope[Any]
        operation: dict[str, Any] = {
            "summary": summary,
            "operationId": path.strip("/"),
            "responses": {
                "200": {
                    "description": "OK",
                    "content": {"application/json": {"schema": refs[(reply, "validation")]}},
                },
                "400": {
                    "description": "Invalid request",
                    "content": {"application/json": {"schema": error_ref}},
                },
                "404": {
                    "description": "No such tool",
                    "content": {"application/json": {"schema": error_ref}},
                },
                "409": {
                    "description": "Tool not running",
                    "content": {"application/json": {"schema": error_ref}},
                },
                "503": {
                    "description": "State store unavailable",
                    "content": {"application/json": {"schema": error_ref}},
                },
            },
        }
        if request_model is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": refs[(request_model, "validation")]}},
            }
        else:
            operation["parameters"] = [
                {
                    "name": "tenant_id",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "string", "default": "default"},
                }
            ]
        paths[path] = {method: operation}
    paths["/health"] = {
        "get": {
            "summary": "Liveness and state store check",
            "operationId": "health",
            "responses": {"200": {"description": "OK"}, "503": {"description": "Store down"}},
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "msagent-srv tool manager", "version": __version__},
        "paths": paths,
        "components": {"schemas": definitions.get("$defs", {})},
    }


def render_page(document: dict[str, Any]) -> str:
    """A browsable page that needs no JavaScript or CDN (the manager often runs offline)."""
    sections = []
    for path, methods in document["paths"].items():
        for method, op in methods.items():
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            sections.append(
                f"<section><h2><code>{method.upper()} {html.escape(path)}</code></h2>"
                f"<p>{html.escape(op.get('summary', ''))}</p>"
                + (
                    f"<h3>Request body</h3><pre>{html.escape(json.dumps(body, indent=2))}</pre>"
                    if body
                    else ""
                )
                + "</section>"
            )
    schemas = "".join(
        f"<h3 id='{html.escape(name)}'>{html.escape(name)}</h3><pre>{html.escape(json.dumps(schema, indent=2, ensure_ascii=False))}</pre>"
        for name, schema in document["components"]["schemas"].items()
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>msagent-srv tool manager API</title>"
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}pre{background:#f4f4f4;padding:1em;"
        "overflow:auto}</style></head><body><h1>msagent-srv tool manager API</h1>"
        "<p>Machine-readable document: <a href='/openapi.json'>/openapi.json</a>. Every reply is "
        "<code>{request_id, message, output}</code>.</p>"
        + "".join(sections)
        + "<h2>Schemas</h2>"
        + schemas
        + "</body></html>"
    )


def add_routes(app: web.Application) -> None:
    document = build_document()
    page = render_page(document)

    async def openapi_json(_request: web.Request) -> web.Response:
        return web.json_response(document)

    async def docs(_request: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html")

    app.router.add_get("/openapi.json", openapi_json)
    app.router.add_get("/docs", docs)
