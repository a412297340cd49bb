"""OpenAI's Responses API (`/v1/responses`) on the chat engine: the request translated to a chat
request, the engine's events rendered as output items; stored per tenant for `previous_response_id`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from pydantic import ValidationError

from ..store import NotFound
from ..store.responses import encode_record
from ..web.auth import tenant_of_caller
from ..web.bodies import read_model, validation_error
from ..web.envelopes import json_body
from ..web.errors import ApiError
from .backends.base import UpstreamError
from .engine import Batch
from .keys import CHAT, STORE
from .protocol import ChatMessage
from .protocol_responses import InputItemList, InputItemsQuery, ResponseDeleted, ResponsesRequest
from .render.responses import ResponseRenderer, sse
from .routes import chat_plan
from .streaming import stream_reply
from .translate.responses import chat_request, input_items, input_messages


class ResponsesWire:
    """The typed events of one streamed response, as OpenAI sends them (no `[DONE]`)."""

    content_type = "text/event-stream"

    def __init__(self, renderer: ResponseRenderer, keep: Callable[[bytes], Awaitable[None]]) -> None:
        self.renderer, self.keep = renderer, keep
        self.whole: bytes | None = None

    def head(self) -> bytes:
        return sse(self.renderer.opening())

    def batch(self, batch: Batch) -> bytes:
        return sse(self.renderer.feed(batch))

    def failure(self, exc: UpstreamError) -> bytes:
        return sse(self.renderer.failure(exc.code, exc.message))

    async def complete(self) -> None:
        self.whole = self.renderer.response(self.renderer.final_status())
        await self.keep(self.whole)  # stored before `response.completed` goes out: a GET right after finds it

    def tail(self) -> bytes:
        return sse(self.renderer.closing(self.whole))


def _response_id(request: web.Request) -> str:
    return request.match_info["response_id"]


async def create_response(request: web.Request) -> web.StreamResponse:
    body = await read_model(request, ResponsesRequest)
    tenant, store = tenant_of_caller(request), request.app[STORE].responses
    earlier: list[ChatMessage] = []
    if body.previous_response_id:
        try:
            earlier = [
                ChatMessage.model_validate(m)
                for m in await store.conversation(tenant, body.previous_response_id)
            ]
        except NotFound:
            raise ApiError(
                404, f"previous response '{body.previous_response_id}' not found", param="previous_response_id",
                code="previous_response_not_found",
            ) from None  # fmt: skip
    current = input_messages(body)
    try:
        chat = chat_request(body, earlier, current)
    except ValidationError as exc:
        raise validation_error(exc) from None
    engine = request.app[CHAT]
    plan = chat_plan(request, chat)
    renderer = ResponseRenderer(body, plan.model, emit=body.stream)
    if body.stream:
        wire = ResponsesWire(renderer, lambda whole: _keep(request, body, renderer, current, whole))
        return await stream_reply(request, wire, engine.events(plan, stream=True))
    try:
        renderer.feed(await engine.collect(plan))
    except UpstreamError as exc:
        raise ApiError(exc.status, exc.message, code=exc.code) from None
    whole = renderer.response(renderer.final_status())
    await _keep(request, body, renderer, current, whole)
    return web.Response(body=whole, content_type="application/json")


async def _keep(
    request: web.Request,
    body: ResponsesRequest,
    renderer: ResponseRenderer,
    current: list[ChatMessage],
    whole: bytes,
) -> None:
    """Stores the response (unless `store: false`) with what a later turn needs of it."""
    if not body.store:
        return
    messages = [*current, *renderer.chat_messages()]
    record = encode_record(whole, input_items(body), messages, body.previous_response_id)
    await request.app[STORE].responses.put(tenant_of_caller(request), renderer.id, record)


async def get_response(request: web.Request) -> web.Response:
    record = await request.app[STORE].responses.get(tenant_of_caller(request), _response_id(request))
    return json_body(record.response)


async def delete_response(request: web.Request) -> web.Response:
    response_id = _response_id(request)
    await request.app[STORE].responses.delete(tenant_of_caller(request), response_id)
    return json_body(ResponseDeleted(id=response_id).model_dump())


async def cancel_response(request: web.Request) -> web.Response:
    await request.app[STORE].responses.get(tenant_of_caller(request), _response_id(request))  # 404 first
    raise ApiError(
        400, "only background responses can be cancelled, and this server runs none", code="not_cancellable"
    )


async def list_input_items(request: web.Request) -> web.Response:
    try:
        query = InputItemsQuery.model_validate(dict(request.query))
    except ValidationError as exc:
        raise validation_error(exc) from None
    record = await request.app[STORE].responses.get(tenant_of_caller(request), _response_id(request))
    items = record.input_items if query.order == "asc" else record.input_items[::-1]
    if query.after is not None:
        ids = [item.get("id") for item in items]
        if query.after not in ids:
            raise ApiError(400, f"no input item with id '{query.after}'", param="after", code="invalid_value")
        items = items[ids.index(query.after) + 1 :]
    page = items[: query.limit]
    listing = InputItemList(
        data=page,
        first_id=page[0].get("id") if page else None,
        last_id=page[-1].get("id") if page else None,
        has_more=len(items) > len(page),
    )
    return json_body(listing.model_dump())
