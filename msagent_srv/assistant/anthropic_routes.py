"""Anthropic's Messages API (`POST /v1/messages`) on the chat engine, so the `anthropic` SDK and tools
built on it work with any backend model (function calling emulated where the model lacks it)."""

from __future__ import annotations

from aiohttp import web
from pydantic import ValidationError

from ..web.bodies import read_model, validation_error
from ..web.errors import ApiError
from .backends.base import UpstreamError
from .engine import Batch
from .keys import CHAT
from .protocol_anthropic import MessagesRequest
from .render.anthropic import MessageRenderer, sse
from .routes import chat_plan
from .streaming import stream_reply
from .translate.anthropic import chat_request


class MessagesWire:
    content_type = "text/event-stream"

    def __init__(self, renderer: MessageRenderer) -> None:
        self.renderer = renderer

    def head(self) -> bytes:
        return sse(self.renderer.opening())

    def batch(self, batch: Batch) -> bytes:
        return sse(self.renderer.feed(batch))

    def failure(self, exc: UpstreamError) -> bytes:
        return sse(self.renderer.failure("api_error", exc.message))

    async def complete(self) -> None:
        pass

    def tail(self) -> bytes:
        return sse(self.renderer.closing())


async def create_message(request: web.Request) -> web.StreamResponse:
    body = await read_model(request, MessagesRequest)
    try:
        chat = chat_request(body)
    except ValidationError as exc:
        raise validation_error(exc) from None
    engine = request.app[CHAT]
    plan = chat_plan(request, chat)
    renderer = MessageRenderer(plan.model, thinking=body.thinking_on, emit=body.stream)
    if body.stream:
        return await stream_reply(request, MessagesWire(renderer), engine.events(plan, stream=True))
    try:
        renderer.feed(await engine.collect(plan))
    except UpstreamError as exc:
        raise ApiError(exc.status, exc.message, code=exc.code) from None
    reply = renderer.reply()
    return web.Response(body=reply.__pydantic_serializer__.to_json(reply), content_type="application/json")
