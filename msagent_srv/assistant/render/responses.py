"""OpenAI Responses API replies from engine events: the Response object with its output items, and, when
streaming, the typed events OpenAI sends (`response.created` ... `response.completed`, each numbered).

Text and reasoning become one `message` / `reasoning` item each time they start anew; every tool call is
a `function_call` item. Items are numbered by `output_index` in the order they were opened."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from pydantic_core import to_json

from ...ids import random_hex
from ..engine.events import (
    Event,
    Finish,
    ReasoningDelta,
    TextDelta,
    ToolCallArgs,
    ToolCallEnd,
    ToolCallStart,
    UsageReport,
)
from ..protocol import Usage
from ..protocol_responses import (
    IncompleteDetails,
    OutputFunctionCall,
    OutputItem,
    OutputMessage,
    OutputReasoning,
    OutputText,
    ReasoningText,
    ResponseError,
    ResponsesRequest,
    ResponseUsage,
)

StreamEvent = bytes  # one server-sent event, ready to write


EMPTY_TEXT = OutputText(text="")
NO_REASONING = {"effort": None, "summary": None}
TEXT_FORMAT = {"format": {"type": "text"}}


def response_id() -> str:
    return "resp_" + random_hex(24)


def item_id(prefix: str) -> str:
    return f"{prefix}_{random_hex(24)}"


def response_usage(usage: Usage) -> ResponseUsage:
    return ResponseUsage(
        input_tokens=usage.prompt_tokens,
        output_tokens=usage.completion_tokens,
        total_tokens=usage.total_tokens,
    )


class ResponseRenderer:
    """One response, built from the engine's batches. With `emit`, `feed` also returns the stream events
    for each batch (a non-stream reply skips building them)."""

    def __init__(self, request: ResponsesRequest, model: str, *, emit: bool) -> None:
        self.request, self.model, self.emit = request, model, emit
        self.id, self.created_at = response_id(), int(time.time())
        self.items: list[OutputItem] = []
        self.finish, self.usage = "stop", Usage()
        self._sequence = 0
        self._open: OutputMessage | OutputReasoning | None = None  # the text or reasoning item being written
        self._pieces: list[str] = []
        self._calls: dict[int, tuple[int, OutputFunctionCall]] = {}  # engine index -> (output_index, item)
        self._arguments: dict[int, list[str]] = {}
        self._echo = self._request_echo()

    # -- the Response object ---------------------------------------------------------------------------
    def _request_echo(self) -> bytes:
        """The request's settings every Response repeats, serialised once (models in place, no dumps)."""
        r = self.request
        echo = {
            "object": "response", "created_at": self.created_at, "background": False,
            "instructions": r.instructions, "max_output_tokens": r.max_output_tokens, "model": self.model,
            "parallel_tool_calls": r.parallel_tool_calls, "previous_response_id": r.previous_response_id,
            "reasoning": NO_REASONING, "store": r.store, "temperature": r.temperature,
            "text": r.text if r.text else TEXT_FORMAT, "tool_choice": r.tool_choice, "tools": r.tools or [],
            "top_p": r.top_p, "truncation": "disabled", "user": r.user, "metadata": r.metadata or {},
        }  # fmt: skip
        return to_json(echo, by_alias=True)[1:-1]  # its keys, without the braces

    def response(self, status: str = "completed", error: ResponseError | None = None) -> bytes:
        """The Response object as JSON (the shape of protocol_responses.Response): this reply's own keys
        serialised, the request's echo spliced in as made once (a hot path)."""
        own: dict[str, Any] = {"id": self.id, "status": status, "error": error, "incomplete_details": None}
        if status == "incomplete":
            reason = "content_filter" if self.finish == "content_filter" else "max_output_tokens"
            own["incomplete_details"] = IncompleteDetails(reason=reason)
        if status == "in_progress":
            own["output"] = []
        else:
            own["output"], own["usage"] = self.items, response_usage(self.usage)
        return to_json(own)[:-1] + b"," + self._echo + b"}"

    def final_status(self) -> str:
        return "incomplete" if self.finish in ("length", "content_filter") else "completed"

    # -- events ----------------------------------------------------------------------------------------
    def _event(self, kind: str, **fields: Any) -> StreamEvent:
        """The event as SSE bytes, named by its type as OpenAI sends them (models serialised in place)."""
        data = to_json({"type": kind, "sequence_number": self._sequence, **fields})
        self._sequence += 1
        return b"event: " + kind.encode() + b"\ndata: " + data + b"\n\n"

    def _lifecycle(self, kind: str, response: bytes) -> StreamEvent:
        """An event carrying the whole Response, spliced in as it is serialised already."""
        head = to_json({"type": kind, "sequence_number": self._sequence})[:-1]
        self._sequence += 1
        return b"event: " + kind.encode() + b"\ndata: " + head + b',"response":' + response + b"}\n\n"

    def opening(self) -> list[StreamEvent]:
        snapshot = self.response("in_progress")
        return [
            self._lifecycle("response.created", snapshot),
            self._lifecycle("response.in_progress", snapshot),
        ]

    def closing(self, whole: bytes | None = None) -> list[StreamEvent]:
        """The last event; `whole`: the final Response when it is serialised already (to be stored)."""
        status = self.final_status()
        kind = "response.completed" if status == "completed" else "response.incomplete"
        return [self._lifecycle(kind, whole if whole is not None else self.response(status))]

    def failure(self, code: str, message: str) -> list[StreamEvent]:
        out = self._close_open()
        return [
            *out,
            self._lifecycle(
                "response.failed", self.response("failed", ResponseError(code=code, message=message))
            ),
        ]

    def _add(self, item: OutputItem) -> tuple[int, list[StreamEvent]]:
        index = len(self.items)
        self.items.append(item)
        if not self.emit:
            return index, []
        added: OutputItem
        if isinstance(item, OutputFunctionCall):
            added = OutputFunctionCall(
                id=item.id, type="function_call", status="in_progress", call_id=item.call_id, name=item.name,
                arguments="",
            )  # fmt: skip
        else:
            added = type(item)(**{**item.__dict__, "status": "in_progress", "content": []})
        return index, [self._event("response.output_item.added", output_index=index, item=added)]

    def _close_open(self) -> list[StreamEvent]:
        item, self._open = self._open, None
        if item is None:
            return []
        text = "".join(self._pieces)
        self._pieces = []
        index = self.items.index(item)
        if isinstance(item, OutputMessage):
            part = OutputText(text=text)
            item.content = [part]
            if not self.emit:
                return []
            where = {"item_id": item.id, "output_index": index, "content_index": 0}
            return [
                self._event("response.output_text.done", **where, text=text, logprobs=[]),
                self._event("response.content_part.done", **where, part=part),
                self._event("response.output_item.done", output_index=index, item=item),
            ]
        item.content = [ReasoningText(text=text)]
        if not self.emit:
            return []
        where = {"item_id": item.id, "output_index": index, "content_index": 0}
        return [
            self._event("response.reasoning_text.done", **where, text=text),
            self._event("response.output_item.done", output_index=index, item=item),
        ]

    def _write(self, kind: type[OutputMessage] | type[OutputReasoning], delta: str) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        if not isinstance(self._open, kind):
            out += self._close_open()
            item = (
                OutputMessage(id=item_id("msg"))
                if kind is OutputMessage
                else OutputReasoning(id=item_id("rs"))
            )
            index, added = self._add(item)
            out += added
            self._open = item
            if self.emit and kind is OutputMessage:
                out.append(self._event(
                    "response.content_part.added", item_id=item.id, output_index=index, content_index=0,
                    part=EMPTY_TEXT,
                ))  # fmt: skip
        self._pieces.append(delta)
        if self.emit:
            where = {"item_id": self._open.id, "output_index": len(self.items) - 1, "content_index": 0}
            if kind is OutputMessage:
                out.append(self._event("response.output_text.delta", **where, delta=delta, logprobs=[]))
            else:
                out.append(self._event("response.reasoning_text.delta", **where, delta=delta))
        return out

    def feed(self, batch: Iterable[Event]) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        for event in batch:
            if isinstance(event, TextDelta):
                out += self._write(OutputMessage, event.text)
            elif isinstance(event, ReasoningDelta):
                out += self._write(OutputReasoning, event.text)
            elif isinstance(event, ToolCallStart):
                out += self._close_open()
                call = OutputFunctionCall(
                    id=item_id("fc"), type="function_call", status="completed", call_id=event.id, name=event.name,
                    arguments="",
                )  # fmt: skip
                index, added = self._add(call)
                self._calls[event.index], self._arguments[event.index] = (index, call), []
                out += added
            elif isinstance(event, ToolCallArgs):
                index, call = self._calls[event.index]
                self._arguments[event.index].append(event.fragment)
                if self.emit:
                    out.append(self._event(
                        "response.function_call_arguments.delta", item_id=call.id, output_index=index,
                        delta=event.fragment,
                    ))  # fmt: skip
            elif isinstance(event, ToolCallEnd):
                index, call = self._calls[event.index]
                # the engine's whole arguments: a re-asked or repaired call may differ from its fragments
                call.name, call.arguments = event.call.name, event.call.arguments
                if self.emit:
                    out.append(self._event(
                        "response.function_call_arguments.done", item_id=call.id, output_index=index,
                        name=call.name, arguments=call.arguments,
                    ))  # fmt: skip
                    out.append(
                        self._event("response.output_item.done", output_index=index, item=call.model_dump())
                    )
            elif isinstance(event, Finish):
                out += self._close_open()
                self.finish = event.reason
            elif isinstance(event, UsageReport):
                self.usage = event.usage
        return out

    # -- this turn as chat messages (stored for previous_response_id) ----------------------------------
    def chat_messages(self) -> list[dict[str, Any]]:
        text = "".join(p.text for item in self.items if isinstance(item, OutputMessage) for p in item.content)
        calls = [
            {
                "id": item.call_id,
                "type": "function",
                "function": {"name": item.name, "arguments": item.arguments},
            }
            for item in self.items
            if isinstance(item, OutputFunctionCall)
        ]
        if not text and not calls:
            return [{"role": "assistant", "content": ""}]
        message: dict[str, Any] = {"role": "assistant", "content": text or None}
        if calls:
            message["tool_calls"] = calls
        return [message]


def sse(events: Iterable[StreamEvent]) -> bytes:
    return b"".join(events)
