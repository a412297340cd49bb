"""/v1/assistants/lite over HTTP: one JSON reply, the legacy chunked text, or typed server-sent events."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web
from pydantic_core import to_json

from ..agent import Call, action_text, observation_text
from ..web.auth import checked_key, scope, space_of
from ..web.bodies import read_model
from ..web.envelopes import envelope
from ..web.errors import ApiError
from .backends.base import UpstreamError
from .keys import LITE
from .lite import Event
from .protocol import LiteAgentRequest
from .routes import upstream_key


def _transcript(event: Event) -> str:
    """The agent's transcript as the original servers framed it: model text as it comes, each call as
    `Action`/`Action Input`, each result as `Observation: <result>...</result>` followed by `Answer:`."""
    if event.kind == "delta":
        return event.data["text"]
    if event.kind == "tool_call":
        return action_text(Call(**event.data))
    if event.kind == "observation":
        return observation_text(event.data["text"])
    return ""


def _text(event: Event) -> str:
    """The legacy text stream: the transcript, then the citations."""
    if event.kind == "done" and event.data["citations"]:
        return "\n\nCitations:\n" + "".join(
            f"[{n}] {c['file']} ({c['chunk_id']})\n" for n, c in enumerate(event.data["citations"], 1)
        )
    return _transcript(event)


def _sse(event: Event) -> bytes:
    return b"event: " + event.kind.encode() + b"\ndata: " + to_json(event.data) + b"\n\n"


async def assistants_lite(request: web.Request) -> web.StreamResponse:
    body = scope(request, await read_model(request, LiteAgentRequest))
    space = space_of(request, body.uuid_str)  # files and history of the caller's tenant only
    events = request.app[LITE].run(body, space, upstream_key(request), checked_key(request))
    try:
        first = await anext(events)  # setup errors (keys, tools, upstream refusals) keep their status
        if not body.stream:
            transcript, final = [_transcript(first)], first
            async for event in events:
                transcript.append(_transcript(event))
                final = event
            # `response`: the whole transcript, as the original servers answered; `answer`: the final text
            return envelope(request, {**final.data, "response": "".join(transcript)})
    except UpstreamError as exc:
        raise ApiError(exc.status, exc.message, code=exc.code) from None
    return await _stream(request, body, first, events)


async def _stream(
    request: web.Request, body: LiteAgentRequest, first: Event, events: AsyncIterator[Event]
) -> web.StreamResponse:
    sse = body.stream_format == "sse"
    response = web.StreamResponse(headers={
        "Content-Type": "text/event-stream" if sse else "text/plain; charset=utf-8",
        "Cache-Control": "no-cache", "X-Request-ID": request["request_id"]})  # fmt: skip
    response.enable_chunked_encoding()
    await response.prepare(request)

    transcript: list[str] = []

    async def write(event: Event) -> None:
        transcript.append(_transcript(event))
        if sse and event.kind == "done":  # the same fields as the non-streamed reply
            event = Event("done", {**event.data, "response": "".join(transcript)})
        data = _sse(event) if sse else _text(event).encode()
        if data:
            await response.write(data)

    try:
        await write(first)
        async for event in events:
            await write(event)
    except UpstreamError as exc:
        await write(
            Event("error", {"message": exc.message, "code": exc.code})
            if sse
            else Event("delta", {"text": f"\n[error: {exc.message}]"})
        )
    except ConnectionResetError:  # the client left: stop the model; nothing is left to say
        await events.aclose()
        return response
    await response.write_eof()
    return response
