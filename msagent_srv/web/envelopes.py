"""The two error/response envelopes: the legacy `{request_id, message, output}` and OpenAI's `{error}`."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic_core import to_json

from .errors import ApiError

REQUEST_ID_HEADER = "X-Request-ID"


def json_body(data: Any, status: int = 200) -> web.Response:
    """A JSON response serialised by pydantic-core: several times faster than the json module, and
    Chinese text stays readable (UTF-8, not \\u escapes)."""
    return web.Response(body=to_json(data), status=status, content_type="application/json")


def request_id(request: web.Request) -> str:
    return str(request.get("request_id", ""))


def envelope(request: web.Request, output: Any = None, message: str = "", status: int = 200) -> web.Response:
    """The manager's (and legacy assistant's) reply shape; `status_code` as the original servers' hosted
    API carries it."""
    body = {"status_code": status, "request_id": request_id(request), "message": message, "output": output}
    return json_body(body, status)


def render_legacy(request: web.Request, error: ApiError) -> web.Response:
    return envelope(request, None, error.message, error.status)


def _openai_error(error: ApiError) -> dict[str, Any]:
    return {"message": error.message, "type": error.type, "param": error.param, "code": error.code}


def render_openai(request: web.Request, error: ApiError) -> web.Response:
    return json_body({"error": _openai_error(error)}, error.status)


def render_both(request: web.Request, error: ApiError) -> web.Response:
    """The original servers' envelope with OpenAI's error object beside it, so both kinds of client read
    it (the agent and file endpoints, which the original's clients call)."""
    body = {"status_code": error.status, "request_id": request_id(request), "message": error.message}
    return json_body({**body, "output": None, "error": _openai_error(error)}, error.status)


# Anthropic's error types by status (others: invalid_request_error below 500, api_error from 500)
_ANTHROPIC_TYPES = {401: "authentication_error", 403: "permission_error", 404: "not_found_error",
                    413: "request_too_large", 429: "rate_limit_error", 503: "overloaded_error"}  # fmt: skip


def render_anthropic(request: web.Request, error: ApiError) -> web.Response:
    """Anthropic's `{"type": "error", "error": {type, message}}` (the Messages API's clients read it)."""
    kind = _ANTHROPIC_TYPES.get(error.status) or (
        "api_error" if error.status >= 500 else "invalid_request_error"
    )
    return json_body({"type": "error", "error": {"type": kind, "message": error.message}}, error.status)
