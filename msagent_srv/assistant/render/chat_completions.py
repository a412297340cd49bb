"""OpenAI chat completions from engine events: the whole reply object, or the stream of chunks."""

from __future__ import annotations

import time
from collections.abc import Iterable

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
from ..engine.plan import ChatPlan
from ..protocol import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionChunk,
    Choice,
    ChunkChoice,
    Delta,
    FunctionCall,
    ToolCall,
    ToolCallDelta,
    ToolCallDeltaFunction,
    Usage,
)


def completion_id() -> str:
    return "chatcmpl-" + random_hex(12)


def completion(plan: ChatPlan, events: Iterable[Event]) -> ChatCompletion:
    """The whole reply, as `POST /v1/chat/completions` without `stream` answers."""
    text, reasoning, calls = [], [], []
    finish, usage = "stop", Usage()
    for event in events:
        if isinstance(event, TextDelta):
            text.append(event.text)
        elif isinstance(event, ReasoningDelta):
            reasoning.append(event.text)
        elif isinstance(event, ToolCallEnd):
            call = event.call
            # plain constructors: on pydantic 2.13 model_construct costs several times more (measured)
            calls.append(ToolCall(
                id=call.id, type="function",
                function=FunctionCall(name=call.name, arguments=call.arguments),
            ))  # fmt: skip
        elif isinstance(event, Finish):
            finish = event.reason
        elif isinstance(event, UsageReport):
            usage = event.usage
    content = "".join(text) or (None if calls else "")
    message = AssistantMessage(
        role="assistant", content=content, reasoning_content="".join(reasoning) or None, refusal=None,
        tool_calls=calls or None,
    )  # fmt: skip
    return ChatCompletion(
        id=completion_id(),
        object="chat.completion",
        created=int(time.time()),
        model=plan.model,
        choices=[Choice(index=0, message=message, logprobs=None, finish_reason=finish)],
        usage=usage,
        system_fingerprint=None,
    )


class ChunkRenderer:
    """The chunks of one streamed reply: an opening chunk with the role, then one chunk an event."""

    def __init__(self, plan: ChatPlan) -> None:
        self.id, self.created, self.model = completion_id(), int(time.time()), plan.model
        self.include_usage = plan.include_usage
        self._opened = False

    def _chunk(self, delta: Delta, finish: str | None = None) -> ChatCompletionChunk:
        return ChatCompletionChunk(
            id=self.id,
            created=self.created,
            model=self.model,
            choices=[ChunkChoice(delta=delta, finish_reason=finish)],  # type: ignore[arg-type]
        )

    def chunks(self, batch: Iterable[Event]) -> list[ChatCompletionChunk]:
        out: list[ChatCompletionChunk] = []
        if not self._opened:
            self._opened = True
            out.append(self._chunk(Delta(role="assistant", content="")))
        for event in batch:
            if isinstance(event, TextDelta):
                out.append(self._chunk(Delta(content=event.text)))
            elif isinstance(event, ReasoningDelta):
                out.append(self._chunk(Delta(reasoning_content=event.text)))
            elif isinstance(event, ToolCallStart):
                function = ToolCallDeltaFunction(name=event.name, arguments="")
                out.append(self._chunk(Delta(tool_calls=[
                    ToolCallDelta(index=event.index, id=event.id, type="function", function=function)
                ])))  # fmt: skip
            elif isinstance(event, ToolCallArgs):
                function = ToolCallDeltaFunction(arguments=event.fragment)
                out.append(
                    self._chunk(Delta(tool_calls=[ToolCallDelta(index=event.index, function=function)]))
                )
            elif isinstance(event, Finish):
                out.append(self._chunk(Delta(), event.reason))
            elif isinstance(event, UsageReport) and self.include_usage:
                out.append(
                    ChatCompletionChunk(
                        id=self.id, created=self.created, model=self.model, choices=[], usage=event.usage
                    )
                )
        return out

    def sse(self, batch: Iterable[Event]) -> bytes:
        """The batch as server-sent events, ready for one write."""
        return b"".join(
            b"data: " + c.__pydantic_serializer__.to_json(c) + b"\n\n" for c in self.chunks(batch)
        )
