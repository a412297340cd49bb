"""Structured outputs for models without them: the schema goes into the prompt, the answer's JSON object is
taken out (repaired where only slightly broken), validated against the schema, and asked for once more when
it does not match. Validation is jsonschema-rs: its patterns run on a linear-time regex engine, and it never
fetches a `$ref` (a caller's schema must not make the server reach for URLs)."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from typing import Any

import jsonschema_rs

from ...jsonrepair import repair_json
from ..protocol import ResponseFormat

_TEXT = {
    "en": {
        "header": "# Response format",
        "object": "Answer with one JSON object only: no other text before or after it, no code fence.",
        "schema": "The object must match this JSON Schema:",
        "tools": "This applies to your answer to the user, not to tool calls.",
        "reask": "Your answer was not valid: {error}. Answer again with only the JSON object.",
    },
    "zh": {
        "header": "# 回答格式",
        "object": "只用一个JSON对象回答：前后不要有其他文字，也不要使用代码块。",
        "schema": "该对象必须符合以下JSON Schema：",
        "tools": "这只适用于你给用户的回答，不适用于工具调用。",
        "reask": "你的回答不符合要求：{error}。请只用JSON对象重新回答。",
    },
}
MAX_ERRORS_SHOWN = 3


class InvalidSchema(ValueError):
    """The caller's JSON Schema cannot be compiled."""


@dataclass(frozen=True)
class OutputSchema:
    name: str
    schema: dict[str, Any] | None  # None: any JSON object (json_object)
    strict: bool
    validator: Any = None

    @classmethod
    def of(cls, response_format: ResponseFormat | None) -> OutputSchema | None:
        """Raises InvalidSchema for a schema that does not compile."""
        if response_format is None or response_format.type == "text":
            return None
        if response_format.type == "json_object":
            return cls(name="json_object", schema=None, strict=False)
        spec = response_format.json_schema or {}
        schema = spec.get("schema") if isinstance(spec.get("schema"), dict) else {}
        try:
            validator = jsonschema_rs.validator_for(
                schema, offline=True, pattern_options=jsonschema_rs.RegexOptions()
            )
        except (jsonschema_rs.ValidationError, ValueError) as exc:
            raise InvalidSchema(
                f"response_format.json_schema.schema is not a usable JSON Schema: {exc}"
            ) from None
        return cls(name=str(spec.get("name") or "response"), schema=schema, strict=bool(spec.get("strict")),
                   validator=validator)  # fmt: skip

    def prompt(self, language: str, *, with_tools: bool) -> str:
        text = _TEXT[language]
        lines = [text["header"], "", text["object"]]
        if self.schema is not None:
            lines += [text["schema"], json.dumps(self.schema, ensure_ascii=False)]
        if with_tools:
            lines.append(text["tools"])
        return "\n".join(lines)

    def reask(self, language: str, error: str) -> str:
        return _TEXT[language]["reask"].format(error=error)

    def check(self, text: str) -> tuple[str | None, str | None]:
        """(the answer's object as compact JSON, None) when it conforms, else (best effort or None, why)."""
        value = repair_json(text)
        if value is None:
            return None, "it holds no JSON object"
        found = json.dumps(value, ensure_ascii=False)
        if self.validator is None:
            return found, None
        errors = [_describe(e) for e in itertools.islice(self.validator.iter_errors(value), MAX_ERRORS_SHOWN)]
        return (found, None) if not errors else (found, "; ".join(errors))


def _describe(error: Any) -> str:
    where = "/".join(str(p) for p in error.instance_path)
    return f"{error.message} (at /{where})" if where else error.message
