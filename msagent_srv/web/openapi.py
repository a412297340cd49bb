"""OpenAPI 3.1 documents built from a service's pydantic wire models, and a self-contained page that renders
one (services often run offline: no JavaScript, no CDN)."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from .. import __version__

ERROR_DESCRIPTIONS = {
    400: "Invalid request",
    401: "Missing or unknown API key",
    403: "Not this key's tenant",
    404: "Not found",
    409: "Conflict with the current state",
    413: "Body too large",
    415: "File type not accepted",
    501: "Feature not available on this server",
    502: "Upstream failed",
    503: "State store unavailable",
    504: "Upstream timed out",
}


# `{name}` or aiohttp's `{name:regex}` in a route: a path parameter
_PATH_PARAMETER = re.compile(r"\{(\w+)(?::[^{}]+)?\}")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Operation:
    """One served route and its description: `mount` adds the route and documents it, from one table."""

    method: str
    path: str
    summary: str
    handler: Handler | None = None
    body: type[BaseModel] | None = None  # JSON request body
    query: type[BaseModel] | None = None  # query parameters, one per field
    form: dict[str, Any] | None = None  # multipart/form-data body schema
    reply: type[BaseModel] | None = None  # the 200 JSON reply (None: any JSON object)
    streams: bool = False  # may answer text/event-stream instead
    text: bool = False  # answers text/plain (metrics), not JSON
    errors: tuple[int, ...] = (400, 503)
    slash: bool = False  # served at `path/` too, answering the same (the original servers' paths)

    @property
    def paths(self) -> tuple[str, ...]:
        return (self.path, self.path + "/") if self.slash else (self.path,)


def build_document(title: str, operations: list[Operation], error_model: type[BaseModel]) -> dict[str, Any]:
    models: list[type[BaseModel]] = [error_model]
    for op in operations:
        models += [m for m in (op.body, op.reply) if m is not None]
    refs, definitions = models_json_schema(
        [(m, "validation") for m in dict.fromkeys(models)], ref_template="#/components/schemas/{model}"
    )
    error_ref = refs[(error_model, "validation")]
    paths: dict[str, Any] = {}
    for op in operations:
        for path in op.paths:
            documented = _PATH_PARAMETER.sub(r"{\1}", path)
            paths.setdefault(documented, {})[op.method] = _operation(op, path, refs, error_ref)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": __version__},
        "paths": paths,
        "components": {"schemas": definitions.get("$defs", {})},
    }


def _operation(op: Operation, path: str, refs: Any, error_ref: dict[str, Any]) -> dict[str, Any]:
    reply = refs[(op.reply, "validation")] if op.reply is not None else {"type": "object"}
    ok_content: dict[str, Any] = (
        {"text/plain": {"schema": {"type": "string"}}} if op.text else {"application/json": {"schema": reply}}
    )
    if op.streams:
        ok_content["text/event-stream"] = {"schema": {"type": "string"}}
    responses: dict[str, Any] = {"200": {"description": "OK", "content": ok_content}}
    for status in op.errors:
        responses[str(status)] = {
            "description": ERROR_DESCRIPTIONS.get(status, "Error"),
            "content": {"application/json": {"schema": error_ref}},
        }
    name = _PATH_PARAMETER.sub(r"\1", path).strip("/").replace("/", "_") or "root"
    operation: dict[str, Any] = {
        "summary": op.summary if path == op.path else f"{op.summary} (the same, at {path})",
        "operationId": f"{op.method}_{name}" + ("_slash" if path != op.path and path != "/" else ""),
        "responses": responses,
    }
    if op.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": refs[(op.body, "validation")]}},
        }
    if op.form is not None:
        operation["requestBody"] = {"required": True, "content": {"multipart/form-data": {"schema": op.form}}}
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
        for name in _PATH_PARAMETER.findall(path)
    ]
    if op.query is not None:
        parameters += _query_parameters(op.query)
    if parameters:
        operation["parameters"] = parameters
    return operation


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema()
    required = set(schema.get("required", []))
    return [
        {"name": name, "in": "query", "required": name in required, "schema": prop}
        for name, prop in schema["properties"].items()
    ]


def render_page(document: dict[str, Any], note: str) -> str:
    title = html.escape(document["info"]["title"])
    sections = []
    for path, methods in document["paths"].items():
        for method, op in methods.items():
            contents = op.get("requestBody", {}).get("content", {})
            body = next(iter(contents.values()), {}).get("schema")
            query = op.get("parameters")
            sections.append(
                f"<section><h2><code>{method.upper()} {html.escape(path)}</code></h2>"
                f"<p>{html.escape(op.get('summary', ''))}</p>"
                + (f"<h3>Request body</h3><pre>{_pretty(body)}</pre>" if body else "")
                + (f"<h3>Query</h3><pre>{_pretty(query)}</pre>" if query else "")
                + "</section>"
            )
    schemas = "".join(
        f"<h3 id='{html.escape(name)}'>{html.escape(name)}</h3><pre>{_pretty(schema)}</pre>"
        for name, schema in document["components"]["schemas"].items()
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}pre{background:#f4f4f4;padding:1em;"
        f"overflow:auto}}</style></head><body><h1>{title}</h1>"
        f"<p>Machine-readable document: <a href='/openapi.json'>/openapi.json</a>. {note}</p>"
        + "".join(sections)
        + "<h2>Schemas</h2>"
        + schemas
        + "</body></html>"
    )


def _pretty(value: Any) -> str:
    return html.escape(json.dumps(value, indent=2, ensure_ascii=False))


def add_routes(app: web.Application, document: dict[str, Any], note: str) -> None:
    """GET /openapi.json and GET /docs."""
    page = render_page(document, note)

    async def openapi_json(_request: web.Request) -> web.Response:
        return web.json_response(document)

    async def docs(_request: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html")

    app.router.add_get("/openapi.json", openapi_json)
    app.router.add_get("/docs", docs)


def mount(
    app: web.Application, title: str, operations: list[Operation], error_model: type[BaseModel], note: str
) -> None:
    """Serve every operation of the table, and the document describing exactly those, at /openapi.json
    and /docs."""
    for op in operations:
        assert op.handler is not None, f"{op.method} {op.path} has no handler"
        for path in op.paths:
            app.router.add_route(op.method.upper(), path, op.handler)
    add_routes(app, build_document(title, operations, error_model), note)
