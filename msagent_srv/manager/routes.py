"""Manager HTTP handlers: parse the request model, call the node manager, answer in the envelope."""

from __future__ import annotations

import asyncio
import json

import aiohttp
from aiohttp import web

from ..node.schemas import NODE_TOKEN_HEADER
from ..store import NotFound, ToolInstance, ToolStatus
from ..web.auth import scope
from ..web.bodies import read_model, validation_error
from ..web.bounded import read_bounded
from ..web.envelopes import envelope
from ..web.errors import ApiError
from .keys import METRICS, NODES
from .schemas import (
    CreateToolRequest,
    ExecuteToolRequest,
    ListToolsQuery,
    ToolInfoOutput,
    ToolListOutput,
    ToolRef,
    ToolStatusOutput,
)

USER_TOKEN_HEADER = "X-Modelscope-Agent-Token"  # the original's ToolServiceProxy(user_token=...)


def _status_output(record: ToolInstance) -> dict[str, object]:
    return ToolStatusOutput(
        tool_node_name=record.node_name, status=record.status, error=record.error
    ).model_dump(mode="json", exclude_none=True)


async def create_tool_service(request: web.Request) -> web.Response:
    body = await read_model(request, CreateToolRequest, merge_query=True)
    body = scope(request, body)
    record = await request.app[NODES].create(body.tenant_id, body.tool_name, body.tool_cfg, body.tool_image)
    return envelope(request, _status_output(record))


async def update_tool_service(request: web.Request) -> web.Response:
    body = await read_model(request, CreateToolRequest, merge_query=True)
    body = scope(request, body)
    record = await request.app[NODES].update(body.tenant_id, body.tool_name, body.tool_cfg, body.tool_image)
    return envelope(request, _status_output(record))


async def check_tool_service_status(request: web.Request) -> web.Response:
    body = await read_model(request, ToolRef, merge_query=True)
    body = scope(request, body)
    record = await request.app[NODES].status(body.tenant_id, body.tool_name)
    # a failed node's reason in `message` too, where the original servers' clients look for it
    message = record.error or "" if record.status is ToolStatus.failed else ""
    return envelope(request, _status_output(record), message)


async def remove_tool(request: web.Request) -> web.Response:
    """Idempotent, as the original's: an unknown or already removed tool answers `exited` too."""
    body = await read_model(request, ToolRef, merge_query=True)
    body = scope(request, body)
    try:
        record = await request.app[NODES].remove(body.tenant_id, body.tool_name)
    except NotFound:
        record = ToolInstance(tool_name=body.tool_name, tenant_id=body.tenant_id, status=ToolStatus.exited)
    return envelope(request, _status_output(record))


async def list_tools(request: web.Request) -> web.Response:
    try:
        query = scope(request, ListToolsQuery.model_validate(dict(request.query)))
    except ValueError as exc:
        raise validation_error(exc) from None  # type: ignore[arg-type]
    records = await request.app[NODES].list(query.tenant_id)
    output = ToolListOutput(tools={r.node_name: r.status for r in records})
    return envelope(request, output.model_dump(mode="json"))


async def _call_node(
    request: web.Request, record: ToolInstance, method: str, path: str, payload: object = None
) -> object:
    nodes = request.app[NODES]
    headers = {NODE_TOKEN_HEADER: record.node_token, "X-Request-ID": request["request_id"]}
    timeout = aiohttp.ClientTimeout(total=nodes.call_timeout + 5, sock_connect=5)
    try:
        async with nodes.request(
            nodes.endpoint_of(record), method, path, json=payload, headers=headers, timeout=timeout
        ) as response:
            limit = nodes.max_reply_bytes
            too_large = ApiError(
                502, f"tool {record.tool_name}: node reply larger than {limit / (1 << 20):g} MB (MSAGENT_NODE_MAX_REPLY_MB)",
                code="node_reply_too_large",
            )  # fmt: skip
            raw = await read_bounded(response, limit, too_large)
    except asyncio.TimeoutError:
        raise ApiError(
            504, f"tool {record.tool_name}: node did not answer in time", code="node_timeout"
        ) from None
    except aiohttp.ClientError as exc:
        await nodes.status(record.tenant_id, record.tool_name)  # mark the node if it died
        raise ApiError(
            502,
            f"tool {record.tool_name}: node unreachable ({exc.__class__.__name__})",
            code="node_unreachable",
        ) from None
    try:
        data = json.loads(raw)
    except ValueError:
        raise ApiError(
            502, f"tool {record.tool_name}: node sent a malformed reply", code="node_bad_reply"
        ) from None
    if response.status != 200:
        message = data.get("message") if isinstance(data, dict) else None
        status = response.status if 400 <= response.status < 600 else 502
        raise ApiError(
            status, message or f"tool {record.tool_name}: node answered {response.status}", code="tool_error"
        )
    return data.get("output") if isinstance(data, dict) else data


async def tool_info(request: web.Request) -> web.Response:
    body = await read_model(request, ToolRef, merge_query=True)
    body = scope(request, body)
    record = await request.app[NODES].running_node(body.tenant_id, body.tool_name)
    info = await _call_node(request, record, "GET", "/tool_info")
    return envelope(request, ToolInfoOutput.model_validate(info).model_dump(mode="json"))


async def execute_tool(request: web.Request) -> web.Response:
    body = await read_model(request, ExecuteToolRequest, merge_query=True)
    body = scope(request, body)
    nodes = request.app[NODES]
    record = await nodes.running_node(body.tenant_id, body.tool_name)
    executions = request.app[METRICS].executions
    kwargs = dict(body.kwargs)
    user_token = request.headers.get(USER_TOKEN_HEADER, "").strip()
    if user_token:  # the original's user token reaches the tool call, as it did there
        kwargs.setdefault("user_token", user_token)
    try:
        output = await _call_node(
            request, record, "POST", "/execute_tool", {"params": body.params, "kwargs": kwargs}
        )
    except ApiError:
        executions.labels(body.tool_name, "error").inc()
        raise
    executions.labels(body.tool_name, "ok").inc()
    await nodes.touch(record)
    return envelope(request, output)


async def root(request: web.Request) -> web.Response:
    """The original servers' reachability check (their agent test calls `GET /`)."""
    return envelope(request, {"message": "Hello World"}, "Hello World")


async def health(request: web.Request) -> web.Response:
    await request.app[NODES].store.ping()
    return web.json_response({"status": "ok", "runtime": request.app[NODES].runtime.name})
