"""Assistant HTTP handlers for /v1/chat/completions and /v1/models."""

from __future__ import annotations

import asyncio
import json
import logging

from aiohttp import web
from pydantic import ValidationError

from ..web.bodies import read_json, validation_error
from ..web.envelopes import dumps
from ..web.errors import ApiError
from .backends.base import UpstreamError
from .backends.router import UnknownBackend
from .keys import CHAT, ROUTER
from .protocol import ChatCompletionRequest, ModelCard, ModelList

log = logging.getLogger("msagent_srv.assistant")


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


async def chat_completions(request: web.Request) -> web.StreamResponse:
    data = await read_json(request)
    if not isinstance(data, dict):
        raise ApiError(400, "request body must be a JSON object", code="invalid_json")
    try:
        body = ChatCompletionRequest.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc) from None
    service = request.app[CHAT]
    try:
        plan = service.plan(body, _bearer(request))
    except UnknownBackend as exc:
        raise ApiError(400, str(exc), param="model", code="model_not_found") from None
    if plan.backend.needs_key and not (_bearer(request) or getattr(plan.backend, "api_key", None)):
        raise ApiError(
            401,
            f"no API key for backend {plan.backend.name}: send Authorization: Bearer KEY",
            code="missing_api_key",
        )
    try:
        if not body.stream:
            reply = await service.complete(plan)
            payload = reply.model_dump(mode="json")
            payload.update(request_id=request["request_id"], message="", output=None)  # legacy keys
            return web.json_response(payload, dumps=dumps)
        return await _stream(request, service.stream(plan))
    except UpstreamError as exc:
        raise ApiError(exc.status, exc.message, code=exc.code) from None


async def _stream(request: web.Request, chunks) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Request-ID": request["request_id"],
        }
    )
    iterator = aiter(chunks)
    try:
        first = await anext(iterator)  # errors before the first byte still get a proper status
    except UpstreamError as exc:
        raise ApiError(exc.status, exc.message, code=exc.code) from None
    await response.prepare(request)
    try:
        await response.write(b"data: " + first.model_dump_json(exclude_none=False).encode() + b"\n\n")
        async for chunk in iterator:
            await response.write(b"data: " + chunk.model_dump_json().encode() + b"\n\n")
    except UpstreamError as exc:
        error = {"error": {"message": exc.message, "type": "upstream_error", "param": None, "code": exc.code}}
        await response.write(b"data: " + json.dumps(error).encode() + b"\n\n")
    except (ConnectionResetError, asyncio.CancelledError):
        await iterator.aclose()  # client gone: close the upstream request
        raise
    await response.write(b"data: [DONE]\n\n")
    await response.write_eof()
    return response


async def list_models(request: web.Request) -> web.Response:
    cards = [ModelCard(id=model, owned_by=backend) for model, backend in request.app[ROUTER].models()]
    return web.json_response(ModelList(data=cards).model_dump(mode="json"))


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_get("/v1/models", list_models)
