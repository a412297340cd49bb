"""Assistant HTTP handlers for /v1/chat/completions and /v1/models."""

from __future__ import annotations

import logging
import re

from aiohttp import web
from pydantic_core import to_json

from ..web.auth import keys_checked, presented_key
from ..web.bodies import read_model
from ..web.envelopes import json_body
from ..web.errors import ApiError
from .backends.base import UpstreamError
from .backends.router import UnknownBackend
from .engine import Batch
from .engine.plan import ChatPlan
from .engine.structured import InvalidSchema
from .keys import CHAT, MODELS
from .protocol import API_KEY_PATTERN, ChatCompletionRequest, ModelList
from .render.chat_completions import ChunkRenderer, completion
from .streaming import stream_reply

log = logging.getLogger("msagent_srv.assistant")


UPSTREAM_KEY_HEADER = "X-Upstream-Api-Key"
_HEADER_SAFE = re.compile(API_KEY_PATTERN)


def upstream_key(request: web.Request) -> str | None:
    """The model key a client brings for the upstream: X-Upstream-Api-Key, or the Bearer token as OpenAI
    clients send it, unless this server checks keys of its own (then the Bearer token is ours)."""
    key = request.headers.get(UPSTREAM_KEY_HEADER, "").strip()
    if not key and not keys_checked(request):
        key = presented_key(request) or ""
    if key and not _HEADER_SAFE.fullmatch(key):
        raise ApiError(400, "the model key must be printable ASCII", code="invalid_api_key")
    return key or None


def missing_key_hint(request: web.Request) -> str:
    return f"send {UPSTREAM_KEY_HEADER}: KEY" if keys_checked(request) else "send Authorization: Bearer KEY"


class ChatWire:
    """Chat completion chunks as server-sent events, closed by `data: [DONE]`."""

    content_type = "text/event-stream"

    def __init__(self, plan: ChatPlan) -> None:
        self.renderer = ChunkRenderer(plan)

    def head(self) -> bytes:
        return b""

    def batch(self, batch: Batch) -> bytes:
        return self.renderer.sse(batch)

    def failure(self, exc: UpstreamError) -> bytes:
        error = {"error": {"message": exc.message, "type": "upstream_error", "param": None, "code": exc.code}}
        return b"data: " + to_json(error) + b"\n\n" + self.tail()

    async def complete(self) -> None:
        pass

    def tail(self) -> bytes:
        return b"data: [DONE]\n\n"


def chat_plan(request: web.Request, body: ChatCompletionRequest) -> ChatPlan:
    """How the engine serves `body` for this caller: its backend, model and model key (every wire format
    the server speaks comes through here)."""
    key = upstream_key(request)
    try:
        plan = request.app[CHAT].plan(body, key)
    except UnknownBackend as exc:
        raise ApiError(400, str(exc), param="model", code="model_not_found") from None
    except InvalidSchema as exc:
        raise ApiError(400, str(exc), param="response_format", code="invalid_value") from None
    if plan.backend.needs_key and not (key or getattr(plan.backend, "api_key", None)):
        raise ApiError(
            401,
            f"no API key for backend {plan.backend.name}: {missing_key_hint(request)}",
            code="missing_api_key",
        )
    return plan


async def chat_completions(request: web.Request) -> web.StreamResponse:
    body = await read_model(request, ChatCompletionRequest)
    engine = request.app[CHAT]
    plan = chat_plan(request, body)
    try:
        if not body.stream:
            reply = completion(plan, await engine.collect(plan))
            # the legacy keys ride along at the end of OpenAI's object
            legacy = to_json({"request_id": request["request_id"], "message": "", "output": None})
            body = reply.__pydantic_serializer__.to_json(reply)[:-1] + b"," + legacy[1:]
            return web.Response(body=body, content_type="application/json")
        return await stream_reply(request, ChatWire(plan), engine.events(plan, stream=True))
    except UpstreamError as exc:
        raise ApiError(exc.status, exc.message, code=exc.code) from None


async def list_models(request: web.Request) -> web.Response:
    cards = await request.app[MODELS].cards(upstream_key(request))
    return json_body(ModelList(data=cards).model_dump(mode="json"))


async def retrieve_model(request: web.Request) -> web.Response:
    model = request.match_info["model"]
    card = await request.app[MODELS].card(model, upstream_key(request))
    if card is None:
        raise ApiError(404, f"model '{model}' is not served here", param="model", code="model_not_found")
    return json_body(card.model_dump(mode="json"))
