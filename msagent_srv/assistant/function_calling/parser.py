"""Parsing the model's ReAct transcript into tool calls: whole replies and streams."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ...ids import random_hex
from ...jsonrepair import repair_json
from ..protocol import ToolDefinition
from .stream import ACTION_INPUT, OBSERVATION, ToolCallStream


def new_call_id() -> str:
    return "call_" + random_hex(12)


@dataclass
class ParsedCall:
    name: str
    arguments: str  # normalised JSON text
    id: str = field(default_factory=new_call_id)


@dataclass
class ParsedReply:
    content: str | None
    calls: list[ParsedCall]
    reasoning: str | None = None  # the model's `Thought:`, apart from what the user is told


_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,),
    "object": (dict,), "array": (list,),
}  # fmt: skip


def check_arguments(schema: dict[str, Any], args: dict[str, Any]) -> str | None:
    """Why `args` do not fit `schema` (required keys, primitive types), or None. Coerces obvious cases
    (a number sent as text for an integer field and the reverse) in place."""
    properties = schema.get("properties") or {}
    for name in schema.get("required") or []:
        if name not in args:
            return f"missing required argument '{name}'"
    for name, value in list(args.items()):
        expected = (properties.get(name) or {}).get("type")
        if not isinstance(expected, str) or expected not in _TYPES:
            continue
        if isinstance(value, _TYPES[expected]) and not (
            expected in ("integer", "number") and isinstance(value, bool)
        ):
            continue
        if expected == "string" and isinstance(value, int | float) and not isinstance(value, bool):
            args[name] = str(value)
        elif expected in ("integer", "number") and isinstance(value, str):
            try:
                args[name] = int(value) if expected == "integer" else float(value)
            except ValueError:
                return f"argument '{name}' must be {expected}"
        else:
            return f"argument '{name}' must be {expected}"
    return None


class ToolCallParser:
    """Knows the offered tools; turns transcript text into calls."""

    def __init__(self, tools: list[ToolDefinition]) -> None:
        self.schemas = {t.function.name: t.function.json_schema() for t in tools}
        self._lower = {name.lower(): name for name in self.schemas}

    def resolve_name(self, raw: str) -> str | None:
        name = raw.strip().strip("`'\"[]()*").strip()
        name = name.split("(")[0].strip()
        return name if name in self.schemas else self._lower.get(name.lower())

    def parse_call(self, raw_name: str, raw_input: str) -> ParsedCall | None:
        name = self.resolve_name(raw_name)
        if name is None:
            return None
        schema = self.schemas[name]
        args = repair_json(raw_input)
        if args is None:
            text = OBSERVATION.split(raw_input, 1)[0].strip()
            required = schema.get("required") or []
            if text and "{" not in text and len(required) == 1:  # a bare value for a one-argument tool
                args = {required[0]: text}
            elif not text.strip("{} \n") and not required:
                args = {}
            else:
                return None
        if check_arguments(schema, args) is not None:
            return None
        try:  # no NaN or Infinity (1e999 reads as inf): they are not JSON
            arguments = json.dumps(args, ensure_ascii=False, allow_nan=False)
        except ValueError:
            return None
        return ParsedCall(name=name, arguments=arguments)

    def parse(self, text: str, *, parallel: bool = True) -> ParsedReply:
        """Content before the first Action, the thought and the calls; unparseable output is all content.
        The same scanner as a stream's, fed the whole text: a reply reads the same streamed or not."""
        scanner = ToolCallStream(self, parallel=parallel)
        content: list[str] = []
        reasoning: list[str] = []
        calls: list[ParsedCall] = []
        for event in scanner.feed(text) + scanner.finish():
            if event.content is not None:
                content.append(event.content)
            if event.reasoning is not None:
                reasoning.append(event.reasoning)
            if event.call is not None:
                calls.append(event.call)
        joined = "".join(content)
        return ParsedReply(
            content=(joined or None) if calls else joined, calls=calls, reasoning="\n".join(reasoning) or None
        )

    def parse_named(self, name: str, text: str) -> ParsedCall | None:
        """The arguments of `name` when the model wrote only them (as after a prefilled `Action: name`)."""
        action_input = ACTION_INPUT.search(text)
        body = text[action_input.end() :] if action_input else text
        if repair_json(body) is None:
            return None
        return self.parse_call(name, body)
