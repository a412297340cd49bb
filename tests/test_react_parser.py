"""The ReAct transcript parser and JSON repair on their own: tables of what models write, properties over
generated objects and transcripts, and the cost of adversarial answers as a ratio to benign ones."""

from __future__ import annotations

import itertools
import json
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from msagent_srv.assistant.function_calling.parser import ParsedReply, ToolCallParser
from msagent_srv.assistant.function_calling.stream import ToolCallStream
from msagent_srv.assistant.protocol import ToolDefinition
from msagent_srv.jsonrepair import repair_json

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
SEARCH = {
    "type": "function",
    "function": {
        "name": "search",
        "parameters": {"type": "object", "properties": {"query": {"type": "string"}, "limit": {}}},
    },
}


def make_parser() -> ToolCallParser:
    return ToolCallParser([ToolDefinition.model_validate(WEATHER), ToolDefinition.model_validate(SEARCH)])


PARSER = make_parser()


def streamed(pieces: list[str], *, parallel: bool = True) -> ParsedReply:
    """What a stream of `pieces` amounts to, in the shape of a whole reply."""
    stream = ToolCallStream(PARSER, parallel=parallel)
    events = [event for piece in pieces for event in stream.feed(piece)] + stream.finish()
    calls = [e.call for e in events if e.call is not None]
    content = "".join(e.content for e in events if e.content is not None)
    reasoning = "\n".join(e.reasoning for e in events if e.reasoning is not None) or None
    return ParsedReply(content=(content or None) if calls else content, calls=calls, reasoning=reasoning)


def summary(reply: ParsedReply) -> tuple[str | None, str | None, list[tuple[str, Any]]]:
    return reply.content, reply.reasoning, [(c.name, json.loads(c.arguments)) for c in reply.calls]


# -- whole replies -------------------------------------------------------------------------------------------
PARSE_TABLE = [
    # (model text, content, reasoning, calls)
    ("Hello! How can I help?", "Hello! How can I help?", None, []),
    ("  Hello.  \n\n", "Hello.", None, []),
    (
        'Action: get_weather\nAction Input: {"city": "Paris"}',
        None,
        None,
        [("get_weather", {"city": "Paris"})],
    ),
    (
        'Thought: I need the weather.\nAction: get_weather\nAction Input: {"city": "Paris"}',
        None,
        "I need the weather.",
        [("get_weather", {"city": "Paris"})],
    ),
    (
        'Let me check.\nAction: get_weather\nAction Input: {"city": "Rome"}\nObservation: sunny (invented)',
        "Let me check.",
        None,
        [("get_weather", {"city": "Rome"})],
    ),
    ("Thought: I know this.\nFinal Answer: It is 42.", "It is 42.", "I know this.", []),
    ("Thought: The capital is Paris.", "The capital is Paris.", None, []),  # a plain answer stays content
    ("Hello\nFinal Answer: 42", "Hello\n42", None, []),
    (
        'Action: get_weather\nAction Input: {"city": "A"}\nAction: search\nAction Input: {"query": "b"}',
        None,
        None,
        [("get_weather", {"city": "A"}), ("search", {"query": "b"})],
    ),
    (
        '**Action:** get_weather\n**Action Input:** {"city": "Oslo"}',
        None,
        None,
        [("get_weather", {"city": "Oslo"})],
    ),
    ('Action：get_weather\nAction Input：{"city": "杭州"}', None, None, [("get_weather", {"city": "杭州"})]),
    ("Action: get_weather\nAction Input: Oslo", None, None, [("get_weather", {"city": "Oslo"})]),
    (
        "Action: get_weather\nAction Input: ```json\n{'city': 'Oslo',}\n```",
        None,
        None,
        [("get_weather", {"city": "Oslo"})],
    ),
    (
        "Action: search\nAction Input: {'query': 'is null true?'}",
        None,
        None,
        [("search", {"query": "is null true?"})],
    ),
    (
        'Action: search\nAction Input: {"query": "x", "limit": None}',
        None,
        None,
        [("search", {"query": "x", "limit": None})],
    ),
    # no valid call: the transcript is the content
    ("Action: unknown_tool\nAction Input: {}", "Action: unknown_tool\nAction Input: {}", None, []),
    ("Action: get_weather", "Action: get_weather", None, []),
    (
        "Let me see.\nAction: get_weather\nAction Input: {}",
        "Let me see.\nAction: get_weather\nAction Input: {}",
        None,
        [],
    ),
    (
        "I said Action: get_weather\nAction Input: {}",
        "I said Action: get_weather\nAction Input: {}",
        None,
        [],
    ),
    (
        'Action: get_weather\nAction Input: {"city": ' + "7" * 5000 + "}",  # over Python's int digit limit
        'Action: get_weather\nAction Input: {"city": ' + "7" * 5000 + "}",
        None,
        [],
    ),
    (
        'Action: search\nAction Input: {"query": "q", "limit": 1e999}',
        'Action: search\nAction Input: {"query": "q", "limit": 1e999}',
        None,
        [],
    ),
]


@pytest.mark.parametrize(("text", "content", "reasoning", "calls"), PARSE_TABLE)
def test_parser_reads_transcripts(text: str, content: str | None, reasoning: str | None, calls: list) -> None:
    assert summary(PARSER.parse(text)) == (content, reasoning, calls)


def test_single_call_mode_takes_the_first_valid_call() -> None:
    text = 'Action: get_weather\nAction Input: {}\nAction: search\nAction Input: {"query": "a"}\nAction: search\nAction Input: {"query": "b"}'
    assert summary(PARSER.parse(text, parallel=False))[2] == [("search", {"query": "a"})]


def test_too_many_actions_end_the_transcript() -> None:
    text = "".join(f'Action: search\nAction Input: {{"query": "{i}"}}\n' for i in range(300))
    calls = PARSER.parse(text).calls
    assert len(calls) == 128 and json.loads(calls[-1].arguments) == {"query": "127"}


# -- streams -------------------------------------------------------------------------------------------------
STREAM_TABLE = [
    # (pieces, content deltas, reasoning deltas, call names, early stop)
    (["Hello", " wor", "ld!"], ["Hello", " wor", "ld!"], [], [], False),
    (["Hi.\nAct", 'ion: get_weather\nAction Input: {"city": "X"}'], ["Hi."], [], ["get_weather"], False),
    (
        ["Thought: rain", "y?\nAction: get_weather\n", 'Action Input: {"city": "X"}'],
        [],
        ["rainy?"],
        ["get_weather"],
        False,
    ),
    (["Hello   ", "   ", "\n"], ["Hello"], [], [], False),  # trailing whitespace never goes out
    (["Hello  ", "there"], ["Hello", "  there"], [], [], False),
    (
        ['Action: get_weather\nAction Input: {"city"', ': "X"}', "\nAction: search"],
        [],
        [],
        ["get_weather"],
        True,
    ),
]


@pytest.mark.parametrize(("pieces", "contents", "thoughts", "names", "early"), STREAM_TABLE)
def test_stream_splits_pieces(
    pieces: list[str], contents: list[str], thoughts: list[str], names: list[str], early: bool
) -> None:
    stream = ToolCallStream(PARSER, parallel=not early)
    events = []
    for piece in pieces:
        events += stream.feed(piece)
        if stream.done:
            break
    assert stream.done is early  # a single-call stream wants no more text once the object has closed
    events += stream.finish()
    assert [e.content for e in events if e.content is not None] == contents
    assert [e.reasoning for e in events if e.reasoning is not None] == thoughts
    assert [e.call.name for e in events if e.call is not None] == names


def test_stream_holds_back_a_possible_marker_until_it_is_decided() -> None:
    stream = ToolCallStream(PARSER)
    assert [e.content for e in stream.feed("Sure.\nAct")] == ["Sure."]  # "\nAct" may open "Action:"
    assert [e.content for e in stream.feed("ually, no.")] == ["\nActually, no."]
    assert stream.finish() == []


# -- properties ----------------------------------------------------------------------------------------------
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=16,
)
json_objects = st.dictionaries(st.text(), json_values, max_size=6)


def renderings(obj: dict[str, Any]) -> list[str]:
    """The object as models write it: JSON, a Python literal, and slightly broken or wrapped forms."""
    forms = [json.dumps(obj), json.dumps(obj, ensure_ascii=False), json.dumps(obj, indent=2), repr(obj)]
    broken = []
    for text in forms:
        broken.append(text[:-1])  # the closing brace missing
        if obj:
            broken.append(text[:-1].rstrip() + ",}")  # a trailing comma
        broken.append(f"Sure, here you go:\n```json\n{text}\n```\nAnything else?")
    return forms + broken


def exact(value: Any) -> str:
    return json.dumps(value)  # tells True from 1 and 1.0 from 1, which == does not


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_objects)
def test_every_rendering_repairs_to_the_same_object(obj: dict[str, Any]) -> None:
    for text in renderings(obj):
        assert exact(repair_json(text)) == exact(obj), text


@settings(max_examples=200, deadline=None)
@given(st.text(), st.sampled_from(["null", "true", "false", "None", "True", "False", "'", '"', ",}", "{"]))
def test_repair_never_changes_string_contents(prefix: str, word: str) -> None:
    value = f"{prefix} {word} ,] {word}"
    assert repair_json(repr({"query": value})) == {"query": value}
    assert repair_json(repr({"query": value})[:-1]) == {"query": value}


FRAGMENTS = [
    "Action: get_weather", "Action: search", "Action", ": ", "\n", "Action Input: ", "Action_Input：",
    '{"city": "Paris"}', "{'city': 'Oslo',}", '{"query": "a\\"}b"', "}", "{", '"', "'", "Thought: ", "hmm",
    "Final Answer: ", "Observation: done", "  ", "```json\n", "```", "Hello", "> ", "**", "Oslo", "\t",
]  # fmt: skip


@st.composite
def split_transcripts(draw: st.DrawFn) -> tuple[str, list[str]]:
    text = "".join(draw(st.lists(st.sampled_from(FRAGMENTS), max_size=14)))
    cuts = sorted(draw(st.lists(st.integers(0, len(text)), max_size=12)))
    bounds = [0, *cuts, len(text)]
    return text, [text[a:b] for a, b in itertools.pairwise(bounds)]


@settings(max_examples=600, deadline=None)
@given(split_transcripts(), st.booleans())
def test_any_split_of_a_transcript_reads_as_the_whole(split: tuple[str, list[str]], parallel: bool) -> None:
    text, pieces = split
    assert summary(streamed(pieces, parallel=parallel)) == summary(PARSER.parse(text, parallel=parallel))


# -- cost of adversarial answers -------------------------------------------------------------------------
SIZE = 1 << 20
FRAGMENTS_PER_STREAM = 10_000
RATIO = 20  # adversarial answers may cost this many times a benign answer of the same size


def _fill(unit: str, size: int = SIZE) -> str:
    return (unit * (size // len(unit) + 1))[:size]


def benign_answer() -> str:
    """A reply a model might really send: a thought, a call with one long argument."""
    head = 'Thought: I will look it up.\nAction: get_weather\nAction Input: {"city": "'
    return head + _fill("Paris, ", SIZE - len(head) - 2) + '"}'


CALL = "Action: get_weather\nAction Input: "
ADVERSARIAL = {
    "fence and spaces": "```" + " " * SIZE,
    "fence in a call": CALL + "```json" + " " * SIZE,
    "keys without values": CALL + "{" + _fill('"a":'),
    "nested keys": CALL + _fill('{"a":'),
    "opening braces": CALL + "{" * SIZE,
    "closing braces": CALL + "{" + "}" * SIZE,
    "double quotes": CALL + "{" + '"' * SIZE,
    "single quotes": CALL + "{" + "'" * SIZE,
    "backslashes": CALL + '{"a": "' + "\\" * SIZE,
    "many Action lines": _fill("Action: x\n"),
    "many calls": _fill('Action: search\nAction Input: {"query": "q"}\n'),
    "many Action Inputs": "Action: get_weather\n" + _fill("Action Input: {\n"),
    "Action Input spaces": "Action: get_weather\n" + _fill("Action Input" + " " * 30),
    "Observation spaces": CALL + "{}" + _fill("Observation" + " " * 30),
    "line prefixes": _fill("\n>>>>***#### "),
    "newlines": "\n" * SIZE,
    "spaces": "Hello" + " " * SIZE,
    "Thought lines": _fill("Thought: x\n"),
    "unclosed object": CALL + '{"city": "P", ' + _fill('"k": 1, '),
    "trailing comma": CALL + '{"city": "P", ' + _fill('"k": [1], ', SIZE - 20) + ",}",
    "huge integer": CALL + '{"city": ' + "9" * SIZE + "}",
}


def _parse_seconds(text: str, pieces: int, parallel: bool) -> float:
    """CPU seconds to read `text` whole (pieces=1) or streamed in `pieces` fragments; the best of three."""
    size = -(-len(text) // pieces)
    fragments = [text[i : i + size] for i in range(0, len(text), size)]
    best = float("inf")
    for _ in range(3):
        parser = make_parser()
        started = time.process_time()
        if pieces == 1:
            parser.parse(text, parallel=parallel)
        else:
            stream = ToolCallStream(parser, parallel=parallel)
            for fragment in fragments:
                stream.feed(fragment)
                if stream.done:
                    break
            stream.finish()
        best = min(best, time.process_time() - started)
    return best


def measure_in_child(pieces: int, parallel: bool) -> None:
    """Run as a child process: the benign answer's cost, then each adversarial answer's, one JSON line
    each as it finishes."""
    started = time.perf_counter()
    benign = _parse_seconds(benign_answer(), pieces, parallel)
    print(json.dumps(["benign", benign, time.perf_counter() - started]), flush=True)
    for name, text in ADVERSARIAL.items():
        print(json.dumps([name, _parse_seconds(text, pieces, parallel), 0.0]), flush=True)


@pytest.mark.parametrize(
    ("pieces", "parallel"),
    [(1, True), (1, False), (FRAGMENTS_PER_STREAM, True), (FRAGMENTS_PER_STREAM, False)],
    ids=["whole", "whole-single-call", "stream", "stream-single-call"],
)
def test_adversarial_answers_cost_about_what_benign_ones_do(pieces: int, parallel: bool) -> None:
    """1 MB answers built against the parser's patterns (the kind that once took minutes) take at most
    RATIO times a benign answer of the same size, measured in the same run. Measuring runs in a child
    process so that a regression fails the test (after RATIO * 50 times the benign wall time) instead of
    hanging it."""
    code = f"from tests.test_react_parser import measure_in_child; measure_in_child({pieces}, {parallel})"
    child = subprocess.Popen(
        [sys.executable, "-c", code], cwd=Path(__file__).parent.parent, stdout=subprocess.PIPE, text=True
    )
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in child.stdout or []], daemon=True)
    reader.start()
    try:
        _, benign, benign_wall = json.loads(lines.get(timeout=600))  # the child's start, imports and all
        ratios: dict[str, float] = {}
        for name in ADVERSARIAL:
            try:
                got, seconds, _ = json.loads(lines.get(timeout=benign_wall * RATIO * 50))
            except queue.Empty:
                pytest.fail(
                    f"{name}: not parsed within {RATIO * 50}x the benign answer's time; so far {ratios}"
                )
            ratios[got] = seconds / benign
        print({name: round(ratio, 2) for name, ratio in ratios.items()})
        worst = max(ratios, key=ratios.__getitem__)
        assert ratios[worst] <= RATIO, f"{worst} costs {ratios[worst]:.1f}x a benign answer: {ratios}"
    finally:
        child.kill()
        child.wait()
        reader.join(10)
