"""The two error/response envelopes: the legacy `{request_id, message, output}` and OpenAI's `{error}`."""

from __future__ import annotations

import functools
import json
from typing import Any

from aiohttp import web

from .errors import ApiError

REQUEST_ID_HEADER = "X-Request-ID"

# Chinese tool output stays readable on the wire.
dumps = functools.partial(json.dumps, ensure_ascii=False)


def request_id(request: web.Request) -> str:
    return str(request.get("request_id", ""))


def envelope(request: web.Request, output: Any = None, message: str = "", status: int = 200) -> web.Response:
    """The manager's (and legacy assistant's) reply shape."""
    return web.json_response(
        {"request_id": request_id(request), "message": message, "output": output}, status=status, dumps=dumps
    )


def render_legacy(request: web.Request, error: ApiError) -> web.Response:
    return envelope(request, None, error.message, error.status)


def render_openai(request: web.Request, error: ApiError) -> web.Response:
    body = {"error": {"message": error.message, "type": error.type, "param": error.param, "code": error.code}}
    return web.json_response(body, status=error.status, dumps=dumps)
