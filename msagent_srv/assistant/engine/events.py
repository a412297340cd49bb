"""What the chat engine says, whatever the backend and however function calling is done: text, the
model's reasoning, tool calls (start, argument fragments, end), the finish and the usage. Every wire
format the server speaks is a renderer of these events."""

from __future__ import annotations

from dataclasses import dataclass

from ..function_calling.parser import ParsedCall
from ..protocol import Usage


@dataclass(slots=True)
class TextDelta:
    text: str


@dataclass(slots=True)
class ReasoningDelta:
    text: str


@dataclass(slots=True)
class ToolCallStart:
    index: int  # position among this reply's calls
    id: str
    name: str


@dataclass(slots=True)
class ToolCallArgs:
    index: int
    fragment: str


@dataclass(slots=True)
class ToolCallEnd:
    """The call is complete: `call` holds its id, name and whole arguments."""

    index: int
    call: ParsedCall


@dataclass(slots=True)
class Finish:
    reason: str  # stop | length | tool_calls | content_filter


@dataclass(slots=True)
class UsageReport:
    """Tokens of the whole reply (re-asks included); the last event of every reply."""

    usage: Usage


Event = TextDelta | ReasoningDelta | ToolCallStart | ToolCallArgs | ToolCallEnd | Finish | UsageReport
