"""One chat engine for every wire: a request in, typed events out (see events.py)."""

from .core import Batch, ChatEngine
from .events import (
    Event,
    Finish,
    ReasoningDelta,
    TextDelta,
    ToolCallArgs,
    ToolCallEnd,
    ToolCallStart,
    UsageReport,
)
from .plan import ChatPlan

__all__ = [
    "Batch",
    "ChatEngine",
    "ChatPlan",
    "Event",
    "Finish",
    "ReasoningDelta",
    "TextDelta",
    "ToolCallArgs",
    "ToolCallEnd",
    "ToolCallStart",
    "UsageReport",
]
