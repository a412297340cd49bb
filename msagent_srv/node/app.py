"""The tool node: an aiohttp app that hosts ONE tool (`/health`, `/tool_info`, `/execute_tool`)."""

from __future__ import annotations

import asyncio
import hmac
import inspect
import json
import logging

from aiohttp import web
from prometheus_client import Counter

from ..tools import Tool, ToolError
from ..web.bodies import read_model
from ..web.envelopes import envelope, render_legacy
from ..web.errors import ApiError
from ..web.metrics import ServiceMetrics
from ..web.middleware import error_middleware
from .schemas import NODE_TOKEN_HEADER, ExecuteRequest

log = logging.getLogger("msagent_srv.node")

TOOL = web.AppKey("tool", Tool)
TOKEN = web.AppKey("token", str)
CALL_TIMEOUT = web.AppKey("call_timeout", float)


class NodeMetrics(ServiceMetrics):
    def __init__(self) -> None:
        super().__init__("node")
        self.executions = Counter(
            "msagent_node_executions", "tool calls on this node", ["result"], registry=self.registry
        )


METRICS = web.AppKey("metrics", NodeMetrics)


def _authorize(request: web.Request) -> None:
    expected = request.app[TOKEN]
    if expected and not hmac.compare_digest(request.headers.get(NODE_TOKEN_HEADER, ""), expected):
        raise ApiError(401, "this node accepts calls from its manager only", code="invalid_node_token")


async def health(request: web.Request) -> web.Response:
    _authorize(request)  # readiness is the manager's business: it sends the node secret
    return web.json_response({"status": "ok", "tool": request.app[TOOL].name})


async def tool_info(request: web.Request) -> web.Response:
    _authorize(request)
    return envelope(request, request.app[TOOL].info())


async def execute_tool(request: web.Request) -> web.Response:
    _authorize(request)
    body = await read_model(request, ExecuteRequest)
    tool = request.app[TOOL]
    timeout = request.app[CALL_TIMEOUT]
    try:
        if inspect.iscoroutinefunction(tool.call):
            result = await asyncio.wait_for(tool.call(body.params or {}, **body.kwargs), timeout)
        else:
            result = await asyncio.wait_for(
                asyncio.to_thread(tool.call, body.params or {}, **body.kwargs), timeout
            )
    except asyncio.TimeoutError:
        request.app[METRICS].executions.labels("timeout").inc()
        raise ApiError(
            504, f"tool {tool.name} did not finish within {timeout:g}s", code="tool_timeout"
        ) from None
    except ToolError as exc:
        request.app[METRICS].executions.labels("tool_error").inc()
        raise ApiError(400, f"tool {tool.name} failed: {exc}", code="tool_error") from None
    except Exception as exc:  # a tool failure is the caller's answer, never a 500 of ours
        request.app[METRICS].executions.labels("crashed").inc()
        log.warning("tool %s raised %s", tool.name, exc.__class__.__name__, exc_info=True)
        raise ApiError(
            400, f"tool {tool.name} failed: {exc.__class__.__name__}: {exc}"[:2000], code="tool_error"
        ) from None
    request.app[METRICS].executions.labels("ok").inc()
    try:
        json.dumps(result)
    except (TypeError, ValueError):
        try:
            result = str(result)
        except ValueError as exc:  # e.g. an integer past Python's str() digit limit
            raise ApiError(400, f"tool {tool.name} failed: {exc}", code="tool_error") from None
    return envelope(request, result)


def create_app(tool: Tool, *, token: str = "", call_timeout: float = 60.0) -> web.Application:
    metrics = NodeMetrics()
    app = web.Application(
        middlewares=[error_middleware(lambda _request: render_legacy, metrics)],
        client_max_size=8 << 20,
    )
    app[METRICS] = metrics
    app[TOOL] = tool
    app[TOKEN] = token
    app[CALL_TIMEOUT] = call_timeout
    app.router.add_get("/health", health)
    app.router.add_get("/tool_info", tool_info)
    app.router.add_post("/execute_tool", execute_tool)

    async def metrics_handler(request: web.Request) -> web.Response:
        _authorize(request)
        return await metrics.handle(request)

    async def close_tool(_app: web.Application) -> None:
        await tool.close()

    app.on_shutdown.append(close_tool)
    app.router.add_get("/metrics", metrics_handler)
    return app
