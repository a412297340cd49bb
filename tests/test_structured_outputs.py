"""Structured outputs for a model that has none (function calling and formats emulated): the official
SDK's `chat.completions.parse` and `responses.parse` get validated objects, with and without tools; a
broken or non-conforming answer is repaired or asked for again; strict schemas are never answered
outside the schema."""

from __future__ import annotations

import json

import openai
import pydantic
import pytest

from .helpers import ServiceProcess
from .upstreams import ScriptedUpstream


class Weather(pydantic.BaseModel):
    city: str
    temperature_c: int


class Lookup(pydantic.BaseModel):
    city: str


def client(assistant: ServiceProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=assistant.url + "/v1", api_key="sk-user-key", max_retries=0, timeout=30)


ASK = [{"role": "user", "content": "Weather in Paris as JSON"}]


def test_parse_gets_a_validated_object_from_a_slightly_broken_answer(
    module_assistant: ServiceProcess, upstream: ScriptedUpstream
) -> None:
    upstream.reset(["Sure!\n```json\n{'city': 'Paris', 'temperature_c': 24,}\n```"])
    reply = client(module_assistant).chat.completions.parse(model="m", messages=ASK, response_format=Weather)
    message = reply.choices[0].message
    assert message.parsed == Weather(city="Paris", temperature_c=24)
    assert json.loads(message.content) == {"city": "Paris", "temperature_c": 24}  # the repaired object only
    sent = upstream.requests[0]
    system = sent["messages"][0]["content"]
    assert "response_format" not in sent and '"temperature_c"' in system and "JSON Schema" in system
    assert len(upstream.requests) == 1


def test_a_non_conforming_answer_is_asked_for_again(
    module_assistant: ServiceProcess, upstream: ScriptedUpstream
) -> None:
    upstream.reset(['{"city": "Paris"}', '{"city": "Paris", "temperature_c": 21}'])
    reply = client(module_assistant).chat.completions.parse(model="m", messages=ASK, response_format=Weather)
    assert reply.choices[0].message.parsed == Weather(city="Paris", temperature_c=21)
    reask = upstream.requests[1]["messages"][-1]["content"]
    assert "temperature_c" in reask and "required" in reask  # the schema's complaint went to the model
    assert reply.usage.total_tokens > 0


def test_strict_schema_unmet_twice_fails_instead_of_answering(
    module_assistant: ServiceProcess, upstream: ScriptedUpstream
) -> None:
    upstream.reset(['{"city": 1}', "no JSON at all"])
    with pytest.raises(openai.APIStatusError) as failed:
        client(module_assistant).chat.completions.parse(model="m", messages=ASK, response_format=Weather)
    assert failed.value.status_code == 502 and failed.value.body["code"] == "invalid_structured_output"
    upstream.reset(["not JSON", "still prose"])  # json_object without a schema is not strict: best effort
    loose = client(module_assistant).chat.completions.create(
        model="m", messages=ASK, response_format={"type": "json_object"}
    )
    assert loose.choices[0].message.content == "still prose" and len(upstream.requests) == 2


def test_tools_and_a_format_in_one_request(
    module_assistant: ServiceProcess, upstream: ScriptedUpstream
) -> None:
    upstream.reset(
        ['Action: lookup\nAction Input: {"city": "Paris"}', '{"city": "Paris", "temperature_c": 19}']
    )
    api = client(module_assistant)
    tools = [openai.pydantic_function_tool(Lookup, name="lookup")]
    first = api.chat.completions.parse(model="m", messages=ASK, tools=tools, response_format=Weather)
    (call,) = first.choices[0].message.tool_calls
    assert call.function.parsed_arguments == Lookup(city="Paris") and first.choices[0].message.parsed is None
    history = [*ASK, first.choices[0].message.model_dump(exclude_none=True),
               {"role": "tool", "tool_call_id": call.id, "content": "19 C"}]  # fmt: skip
    second = api.chat.completions.parse(model="m", messages=history, tools=tools, response_format=Weather)
    assert second.choices[0].message.parsed == Weather(city="Paris", temperature_c=19)
    system = upstream.requests[0]["messages"][0]["content"]
    assert "Action Input" in system and '"temperature_c"' in system  # both prompts


def test_streamed_and_responses_api_formats(
    module_assistant: ServiceProcess, upstream: ScriptedUpstream
) -> None:
    upstream.reset(['Here: {"city": "Rome", "temperature_c": 30}'])
    api = client(module_assistant)
    with api.chat.completions.stream(model="m", messages=ASK, response_format=Weather) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.parsed == Weather(city="Rome", temperature_c=30)
    upstream.reset(["{'city': 'Oslo', 'temperature_c': -3}"])
    parsed = api.responses.parse(model="m", input="Weather in Oslo?", text_format=Weather)
    assert parsed.output_parsed == Weather(city="Oslo", temperature_c=-3)


def test_bad_schema_is_a_400_and_native_backends_get_the_format_as_is(
    module_assistant: ServiceProcess, assistant_factory, upstream: ScriptedUpstream
) -> None:
    bad = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "no-such-type"}}}
    with pytest.raises(openai.BadRequestError) as refused:
        client(module_assistant).chat.completions.create(model="m", messages=ASK, response_format=bad)
    assert refused.value.body["param"] == "response_format"
    native = assistant_factory(MSAGENT_FUNCTION_CALLING="native")
    upstream.reset(['{"city": "Paris", "temperature_c": 24}'])
    reply = client(native).chat.completions.parse(model="m", messages=ASK, response_format=Weather)
    assert reply.choices[0].message.parsed.city == "Paris"
    sent = upstream.requests[0]
    assert sent["response_format"]["type"] == "json_schema" and sent["messages"] == ASK  # passed through
