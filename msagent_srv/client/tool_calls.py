"""Tool calls streamed as OpenAI deltas (index; id and name first, then argument fragments), joined back
into whole calls. Used by the client's Agent, which reads them from any OpenAI-compatible server."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class ToolCallAssembler:
    def __init__(self) -> None:
        self._calls: dict[int, dict[str, str]] = {}

    def add(self, deltas: Iterable[Any]) -> None:
        """Feed `delta.tool_calls` of one chunk (objects with index, id, function.name/arguments)."""
        for delta in deltas:
            entry = self._calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
            function = delta.function
            entry["id"] = delta.id or entry["id"]
            entry["name"] = (function.name if function else None) or entry["name"]
            entry["arguments"] += (function.arguments if function else None) or ""

    @property
    def calls(self) -> list[dict[str, str]]:
        return [self._calls[i] for i in sorted(self._calls)]

    def assistant_message(self, content: str | None) -> dict[str, Any]:
        """The assistant turn that made these calls, in OpenAI's message shape."""
        return {
            "role": "assistant",
            "content": content or None,
            "tool_calls": [
                {
                    "id": c["id"],
                    "type": "function",
                    "function": {"name": c["name"], "arguments": c["arguments"]},
                }
                for c in self.calls
            ],
        }
