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
    Reasoning,
    ReasoningText,
    Response,
    ResponseError,
    ResponsesRequest,
    ResponseUsage,
)

StreamEvent = dict[str, Any]


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

    # -- the Response object ---------------------------------------------------------------------------
    def response(self, status: str = "completed", error: ResponseError | None = None) -> Response:
        r = self.request
        incomplete = None
        if status == "incomplete":
            reason = "content_filter" if self.finish == "content_filter" else "max_output_tokens"
            incomplete = IncompleteDetails(reason=reason)
        text = r.text.model_dump(by_alias=True, exclude_none=True) if r.text else {"format": {"type": "text"}}
        return Response.model_construct(
            id=self.id, object="response", created_at=self.created_at, status=status, background=False,
            error=error, incomplete_details=incomplete, instructions=r.instructions,
            max_output_tokens=r.max_output_tokens, model=self.model,
            output=list(self.items) if status != "in_progress" else [],
            parallel_tool_calls=r.parallel_tool_calls, previous_response_id=r.previous_response_id,
            reasoning=Reasoning(),
            store=r.store, temperature=r.temperature, text=text,
            tool_choice=r.tool_choice if isinstance(r.tool_choice, str) else r.tool_choice.model_dump(),
            tools=[t.model_dump(exclude_none=False) for t in r.tools or []], top_p=r.top_p,
            truncation="disabled", usage=response_usage(self.usage) if status != "in_progress" else None,
            user=r.user, metadata=r.metadata or {},
        )  # fmt: skip

    def final_status(self) -> str:
        return "incomplete" if self.finish in ("length", "content_filter") else "completed"

    # -- events ----------------------------------------------------------------------------------------
    def _event(self, kind: str, **fields: Any) -> StreamEvent:
        event = {"type": kind, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return event

    def opening(self) -> list[StreamEvent]:
        snapshot = self.response("in_progress").model_dump(mode="json", exclude_none=False)
        return [self._event("response.created", response=snapshot),
                self._event("response.in_progress", response=snapshot)]  # fmt: skip

    def closing(self) -> list[StreamEvent]:
        status = self.final_status()
        kind = "response.completed" if status == "completed" else "response.incomplete"
        return [self._event(kind, response=self.response(status).model_dump(mode="json"))]

    def failure(self, code: str, message: str) -> list[StreamEvent]:
        out = self._close_open()
        failed = self.response("failed", ResponseError(code=code, message=message))
        return [*out, self._event("response.failed", response=failed.model_dump(mode="json"))]

    def _add(self, item: OutputItem) -> tuple[int, list[StreamEvent]]:
        index = len(self.items)
        self.items.append(item)
        if not self.emit:
            return index, []
        added = item.model_copy(update={"status": "in_progress"})
        if isinstance(added, OutputMessage | OutputReasoning):
            added.content = []
        elif isinstance(added, OutputFunctionCall):
            added.arguments = ""
        return index, [self._event("response.output_item.added", output_index=index, item=added.model_dump())]

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
                self._event("response.content_part.done", **where, part=part.model_dump()),
                self._event("response.output_item.done", output_index=index, item=item.model_dump()),
            ]
        item.content = [ReasoningText(text=text)]
        if not self.emit:
            return []
        where = {"item_id": item.id, "output_index": index, "content_index": 0}
        return [
            self._event("response.reasoning_text.done", **where, text=text),
            self._event("response.output_item.done", output_index=index, item=item.model_dump()),
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
                    part=OutputText(text="").model_dump(),
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
                call = OutputFunctionCall(id=item_id("fc"), call_id=event.id, name=event.name, arguments="")
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
    """Events as server-sent events, each named by its type as OpenAI sends them."""
    return b"".join(b"event: " + e["type"].encode() + b"\ndata: " + to_json(e) + b"\n\n" for e in events)
