"""A JSON object from text that is almost JSON (a model's `Action Input`, a caller's tool params): strict JSON
first (the C decoder), else a small repairing tokenizer for what is written instead: Python literals (single
quotes, True/False/None), JSON5-style trailing commas, unclosed strings and brackets, bare-word keys. String
contents are never rewritten. Every step is linear: one regex match per token, no backtracking pattern."""

from __future__ import annotations

import json
import re
from json.decoder import scanstring
from typing import Any

_DECODER = json.JSONDecoder(strict=False)  # raw newlines inside strings are common
_FENCE = "```"
MAX_DEPTH = 64  # tool arguments nest a few levels; deeper input is not worth repairing
# repair works token by token in Python: bounded, so that a huge broken object costs about what a valid one
# does (a valid object of any size takes the C decoder)
MAX_REPAIR_TOKENS = 20_000

# one token per match; each alternative is unambiguous (strings: "unrolled loop" form, no nested stars)
_TOKEN = re.compile(
    r"""(?P<space>\s+)
    |(?P<dq>"[^"\\]*(?:\\.[^"\\]*)*(?P<dq_end>")?)
    |(?P<sq>'[^'\\]*(?:\\.[^'\\]*)*(?P<sq_end>')?)
    |(?P<number>-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)
    |(?P<word>[A-Za-z_][A-Za-z0-9_]*)
    |(?P<punct>[{}\[\]:,])""",
    re.VERBOSE | re.DOTALL,
)
_LITERALS: dict[str, Any] = {
    "true": True, "false": False, "null": None, "True": True, "False": False, "None": None,
}  # fmt: skip


class _Bail(Exception):
    """The text is not a repairable object."""


class _NeedMore(Exception):
    """The text ends inside the object (only raised when more text may still come)."""


def _python_string(token: str) -> str:
    """A quoted string in Python's escape rules (what `repr` writes): \\xNN, \\uNNNN, \\' and the like.
    Non-Latin-1 characters are turned into escapes first so that `unicode_escape` leaves them as they are."""
    body = token[1:-1]
    if "\\" not in body:
        return body
    try:
        return body.encode("latin-1", "backslashreplace").decode("unicode_escape")
    except UnicodeDecodeError as exc:  # e.g. a truncated \x escape
        raise _Bail from exc


def _string(token: str, kind: str) -> str:
    if kind == "dq":
        try:
            value, _ = scanstring(token, 1, False)
            return value
        except ValueError:  # not JSON's escapes: Python's (a repr with a quote inside uses "...")
            pass
    return _python_string(token)


def _number(token: str) -> int | float:
    try:
        return float(token) if any(c in token for c in ".eE") else int(token)
    except ValueError as exc:  # over Python's 4,300-digit limit for int()
        raise _Bail from exc


def _tokenize_object(text: str, start: int, final: bool) -> dict[str, Any]:
    """The object that opens at text[start] ('{'), built token by token. Unclosed strings and containers
    are closed at the end of the text when `final`; otherwise the end of text raises _NeedMore."""
    root: dict[str, Any] = {}
    stack: list[dict[str, Any] | list[Any]] = [root]
    key: str | None = None
    # what the innermost container expects next: "key", "colon", "value", "comma"
    expect = "key"
    pos, end = start + 1, len(text)
    budget = MAX_REPAIR_TOKENS

    def put(value: Any) -> None:
        nonlocal key, expect
        container = stack[-1]
        if isinstance(container, dict):
            if key is None:
                raise _Bail
            container[key] = value
            key = None
        else:
            container.append(value)
        expect = "comma"

    while stack:
        if pos >= end:
            if not final:
                raise _NeedMore
            if expect == "colon" or (expect == "value" and isinstance(stack[-1], dict)):
                raise _Bail  # a key without its value: nothing sensible to close
            break  # close what is open
        if text.startswith(_FENCE, pos):  # a closing fence ends an unclosed object
            if not final:
                raise _NeedMore
            end = pos
            continue
        match = _TOKEN.match(text, pos)
        budget -= 1
        if match is None or not budget:
            raise _Bail
        kind, token = match.lastgroup, match.group()
        pos = match.end()
        if kind == "space":
            continue
        if kind in ("dq", "sq", "number", "word") and pos == end and not final:
            raise _NeedMore  # the token may still grow
        if kind in ("dq", "sq"):
            if match.group(kind + "_end") is None:  # unclosed: the text ends inside the string
                if not final:
                    raise _NeedMore
                token, pos = text[match.start() : end].removesuffix("\\") + token[0], end
            value: Any = _string(token, kind)
            if expect == "key":
                key, expect = value, "colon"
            elif expect == "value":
                put(value)
            else:
                raise _Bail
        elif kind == "number" or kind == "word":
            if kind == "word" and token not in _LITERALS:
                if expect != "key":
                    raise _Bail
                key, expect = token, "colon"  # a bare key, as JavaScript writes them
                continue
            if expect != "value":
                raise _Bail
            put(_number(token) if kind == "number" else _LITERALS[token])
        elif token == ":":
            if expect != "colon":
                raise _Bail
            expect = "value"
        elif token == ",":
            if expect != "comma":
                raise _Bail
            expect = "key" if isinstance(stack[-1], dict) else "value"
        elif token in "{[":
            if expect != "value" or len(stack) >= MAX_DEPTH:
                raise _Bail
            child: dict[str, Any] | list[Any] = {} if token == "{" else []
            put(child)
            stack.append(child)
            expect = "key" if token == "{" else "value"
        else:  # } or ]
            container = stack[-1]
            if (token == "}") != isinstance(container, dict):
                raise _Bail
            # a trailing comma leaves "key"/"value" expected: accepted, as the comma is simply dropped
            if expect == "colon" or (expect == "value" and isinstance(container, dict)):
                raise _Bail
            stack.pop()
            expect = "comma"
    return root


def first_object(text: str, *, final: bool = True) -> tuple[dict[str, Any] | None, bool]:
    """The first JSON object in `text` and whether it is complete. With `final=False` (a stream that may
    continue) an object is only returned once its closing brace has arrived: (None, False) until then."""
    starts = [text.find("{")]
    fence = text.find(_FENCE)
    if fence >= 0 and starts[0] >= 0 and fence > starts[0]:
        starts.append(text.find("{", fence))  # chatter with a brace before a fenced object
    for start in starts:
        if start < 0:
            continue
        try:
            value, _ = _DECODER.raw_decode(text, start)
            return value, True
        except (ValueError, RecursionError):  # ValueError also covers ints over the 4,300-digit limit
            pass
        try:
            return _tokenize_object(text, start, final), True
        except _NeedMore:
            return None, False
        except _Bail:
            continue
    return None, True


def repair_json(text: str) -> dict[str, Any] | None:
    """A JSON object from text that may be fenced, trailed by chatter or slightly broken."""
    return first_object(text)[0]
