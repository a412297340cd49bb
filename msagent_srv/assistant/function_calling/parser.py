"""Parsing the model's ReAct transcript into tool calls: whole replies and streams."""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from typing import Any

from ...ids import random_hex
from ..protocol import ToolDefinition

_ACTION = re.compile(r"(?:^|\n)[ \t>*#]*Action[ \t]*[:：][ \t]*", re.IGNORECASE)
_ACTION_INPUT = re.compile(r"\n?[ \t>*#]*Action[ _]Input[ \t]*[:：][ \t]*", re.IGNORECASE)
_OBSERVATION = re.compile(r"\n?[ \t]*Observation[ \t]*[:：]", re.IGNORECASE)
_FINAL_ANSWER = re.compile(r"(?:^|\n)[ \t]*Final[ _]Answer[ \t]*[:：][ \t]*", re.IGNORECASE)
_THOUGHT = re.compile(r"^[ \t]*Thought[ \t]*[:：][ \t]*", re.IGNORECASE)
_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)\s*```", re.DOTALL)


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


def _balanced_object(text: str) -> str | None:
    """The first {...} in `text`, matched with attention to strings; unclosed braces are closed."""
    start = text.find("{")
    if start < 0:
        return None
    depth, in_string, escaped = 0, False, False
    for i in range(start, len(text)):
        ch = text[i]
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[start : i + 1]
    return text[start:] + ('"' if in_string else "") + "}" * depth


def repair_json(text: str) -> dict[str, Any] | None:
    """A JSON object from text that may be fenced, trailed by chatter or slightly broken."""
    fenced = _FENCE.search(text)
    candidate = _balanced_object(fenced.group(1) if fenced else text)
    if candidate is None:
        return None
    attempts = [candidate, re.sub(r",\s*([}\]])", r"\1", candidate)]
    for attempt in attempts:
        try:
            value = json.loads(attempt, strict=False)  # raw newlines inside strings are common
        except json.JSONDecodeError:
            continue
        return value if isinstance(value, dict) else None
    try:  # Python-style literals: single quotes, True/False/None
        value = ast.literal_eval(
            re.sub(
                r"\btrue\b", "True", re.sub(r"\bfalse\b", "False", re.sub(r"\bnull\b", "None", attempts[1]))
            )
        )
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


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
            text = _OBSERVATION.split(raw_input, 1)[0].strip()
            required = schema.get("required") or []
            if text and "{" not in text and len(required) == 1:  # a bare value for a one-argument tool
                args = {required[0]: text}
            elif not text.strip("{} \n") and not required:
                args = {}
            else:
                return None
        if check_arguments(schema, args) is not None:
            return None
        return ParsedCall(name=name, arguments=json.dumps(args, ensure_ascii=False))

    def parse(self, text: str, *, parallel: bool = True) -> ParsedReply:
        """Content before the first Action, and the calls; unparseable output is all content."""
        text = _OBSERVATION.split(text, 1)[0] if _ACTION.search(text) else text
        segments = _ACTION.split(text)
        head = segments[0]
        calls: list[ParsedCall] = []
        for segment in segments[1:]:
            pieces = _ACTION_INPUT.split(segment, 1)
            if len(pieces) < 2:
                continue  # an Action without its input
            call = self.parse_call(pieces[0].split("\n", 1)[0], pieces[1])
            if call is not None:
                calls.append(call)
            if calls and not parallel:
                break
        if not calls:
            return ParsedReply(content=clean_content(text), calls=[])
        return ParsedReply(content=clean_content(head) or None, calls=calls)

    def parse_named(self, name: str, text: str) -> ParsedCall | None:
        """The arguments of `name` when the model wrote only them (as after a prefilled `Action: name`)."""
        body = _ACTION_INPUT.split(text, 1)[-1]
        if repair_json(body) is None:
            return None
        return self.parse_call(name, body)


def clean_content(text: str) -> str:
    """Model text as the user should see it: a Final Answer label and a leading Thought label dropped."""
    final = _FINAL_ANSWER.split(text)
    if len(final) > 1:
        return final[-1].strip()
    return _THOUGHT.sub("", text.strip()).strip()
