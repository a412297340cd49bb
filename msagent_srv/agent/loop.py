"""Model turn -> tool calls -> observations -> next turn, until the model answers without calls, a call
must go back to the caller, or the turns run out.

Sans-I/O: the loop keeps the conversation and says what comes next; its drivers do the I/O (the
assistant server with its chat engine, the client's Agent with any OpenAI-compatible endpoint). It
depends on neither, nor on any SDK: messages are OpenAI-shaped dicts."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Call:
    id: str
    name: str
    arguments: str  # JSON text

    def as_dict(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name, "arguments": self.arguments}


class AgentLoop:
    """`runnable`: the tools the driver can run (None: it answers every call, unknown names with an
    error); a call of any other tool is handed back to the caller and ends the run. The driver keeps the conversation: after each step it sends the model what it had
    plus `produced` (OpenAI-shaped messages, the newest last)."""

    def __init__(self, runnable: Collection[str] | None, max_turns: int) -> None:
        self.produced: list[dict[str, Any]] = []  # what the run added: assistant turns and tool results
        self.calls: list[Call] = []  # every call the model made, in order
        self.answer = ""
        self.done = False
        self._runnable, self._turns_left = None if runnable is None else set(runnable), max_turns

    def next_turn(self) -> bool:
        """True when the model is to be asked (again)."""
        if self.done or self._turns_left <= 0:
            self.done = True
            return False
        self._turns_left -= 1
        return True

    def model_replied(self, text: str, calls: list[Call]) -> list[Call]:
        """The model's turn. Returns the calls the driver runs now, each answered with `observed`; none
        means the run is over (an answer, or calls that belong to the caller)."""
        if not calls:
            self.answer = text
            self._add({"role": "assistant", "content": text})
            self.done = True
            return []
        self.calls += calls
        self._add({
            "role": "assistant",
            "content": text or None,
            "tool_calls": [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in calls
            ],
        })  # fmt: skip
        if self._runnable is None:
            return list(calls)
        if any(c.name not in self._runnable for c in calls):
            self.done = True  # the caller runs its own tools: the calls go back to it
        return [c for c in calls if c.name in self._runnable]

    def observed(self, call: Call, observation: str) -> None:
        self._add({"role": "tool", "tool_call_id": call.id, "content": observation})

    def _add(self, message: dict[str, Any]) -> None:
        self.produced.append(message)
