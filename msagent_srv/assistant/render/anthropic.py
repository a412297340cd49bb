"""Anthropic Messages replies from engine events: the message with its content blocks, and the stream of
named events (message_start, content_block_start/delta/stop, message_delta, message_stop)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic_core import from_json, to_json

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
from ..protocol import Usage as ChatUsage
from ..protocol_anthropic import MessageReply, OutText, OutThinking, OutToolUse, StopReason, Usage

STOP_REASONS: dict[str, StopReason] = {
    "stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "content_filter": "refusal",
}  # fmt: skip

StreamEvent = dict[str, Any]


def tool_input(arguments: str) -> dict[str, Any]:
    """A call's JSON arguments as the object `tool_use.input` holds (anything else under `arguments`)."""
    try:
        value = from_json(arguments or "{}")
    except ValueError:
        return {"arguments": arguments}
    return value if isinstance(value, dict) else {"arguments": value}


class MessageRenderer:
    """One reply, built from the engine's batches; with `emit`, `feed` also returns its stream events.
    Reasoning is shown as `thinking` blocks only when the request enabled thinking."""

    def __init__(self, model: str, *, thinking: bool, emit: bool) -> None:
        self.id, self.model, self.thinking, self.emit = "msg_" + random_hex(24), model, thinking, emit
        self.blocks: list[OutThinking | OutText | OutToolUse] = []
        self.finish, self.usage = "stop", ChatUsage()
        self._open: int | None = None  # index of the block being written
        self._pieces: list[str] = []
        self._calls: dict[int, int] = {}  # engine call index -> block index
        self._stopped: set[int] = set()  # blocks whose content_block_stop went out

    def reply(self) -> MessageReply:
        return MessageReply(
            id=self.id, model=self.model, content=self.blocks, stop_reason=STOP_REASONS.get(self.finish, "end_turn"),
            usage=Usage(input_tokens=self.usage.prompt_tokens, output_tokens=self.usage.completion_tokens),
        )  # fmt: skip

    # -- events ----------------------------------------------------------------------------------------
    def opening(self) -> list[StreamEvent]:
        message = {
            "id": self.id, "type": "message", "role": "assistant", "model": self.model, "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": Usage().model_dump(),
        }  # fmt: skip
        return [{"type": "message_start", "message": message}, {"type": "ping"}]

    def closing(self) -> list[StreamEvent]:
        usage = {"input_tokens": self.usage.prompt_tokens, "output_tokens": self.usage.completion_tokens}
        delta = {"stop_reason": STOP_REASONS.get(self.finish, "end_turn"), "stop_sequence": None}
        return [{"type": "message_delta", "delta": delta, "usage": usage}, {"type": "message_stop"}]

    @staticmethod
    def failure(kind: str, message: str) -> list[StreamEvent]:
        return [{"type": "error", "error": {"type": kind, "message": message}}]

    def _close_open(self) -> list[StreamEvent]:
        index, self._open = self._open, None
        if index is None:
            return []
        block, text = self.blocks[index], "".join(self._pieces)
        self._pieces = []
        if isinstance(block, OutText):
            block.text = text
        elif isinstance(block, OutThinking):
            block.thinking = text
        return self._stop(index)

    def _stop(self, index: int) -> list[StreamEvent]:
        self._stopped.add(index)
        return [{"type": "content_block_stop", "index": index}] if self.emit else []

    def _start(self, block: OutThinking | OutText | OutToolUse) -> list[StreamEvent]:
        out = self._close_open()
        self.blocks.append(block)
        self._open = len(self.blocks) - 1
        if self.emit:
            out.append(
                {"type": "content_block_start", "index": self._open, "content_block": block.model_dump()}
            )
        return out

    def _write(self, kind: type[OutText] | type[OutThinking], text: str) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        if self._open is None or not isinstance(self.blocks[self._open], kind):
            out += self._start(OutText(text="") if kind is OutText else OutThinking(thinking=""))
        self._pieces.append(text)
        if self.emit:
            delta = (
                {"type": "text_delta", "text": text}
                if kind is OutText
                else {"type": "thinking_delta", "thinking": text}
            )
            out.append({"type": "content_block_delta", "index": self._open, "delta": delta})
        return out

    def feed(self, batch: Iterable[Event]) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        for event in batch:
            if isinstance(event, TextDelta):
                out += self._write(OutText, event.text)
            elif isinstance(event, ReasoningDelta):
                if self.thinking:
                    out += self._write(OutThinking, event.text)
            elif isinstance(event, ToolCallStart):
                out += self._start(OutToolUse(id=event.id, name=event.name, input={}))
                self._calls[event.index] = len(self.blocks) - 1
            elif isinstance(event, ToolCallArgs):
                if self.emit:
                    delta = {"type": "input_json_delta", "partial_json": event.fragment}
                    out.append(
                        {"type": "content_block_delta", "index": self._calls[event.index], "delta": delta}
                    )
            elif isinstance(event, ToolCallEnd):
                index = self._calls[event.index]
                block = self.blocks[index]
                assert isinstance(block, OutToolUse)
                block.name, block.input = event.call.name, tool_input(event.call.arguments)
                if self._open == index:
                    out += self._close_open()
                elif index not in self._stopped:  # a native stream's calls end together, after the last
                    out += self._stop(index)
            elif isinstance(event, Finish):
                out += self._close_open()
                self.finish = event.reason
            elif isinstance(event, UsageReport):
                self.usage = event.usage
        return out


def sse(events: Iterable[StreamEvent]) -> bytes:
    """Events as server-sent events named by their type, as Anthropic sends them."""
    return b"".join(b"event: " + e["type"].encode() + b"\ndata: " + to_json(e) + b"\n\n" for e in events)
