"""/v1/responses through the official `openai` SDK (create, stream, the stream helper, a function tool
and its output, previous_response_id, the stored response's reads), against the scripted upstream with
function calling emulated: the model only writes ReAct text."""

from __future__ import annotations

import json

import openai
import pytest
import requests

from .helpers import ADMIN, ServiceProcess, new_key
from .upstreams import ScriptedUpstream

WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather of a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
UPSTREAM_KEY = {"X-Upstream-Api-Key": "sk-upstream"}  # keys on: the Bearer token is ours, not the model's
CALL_PARIS = 'Thought: I need the weather.\nAction: get_weather\nAction Input: {"city": "Paris"}'


def client(assistant: ServiceProcess, key: str = "sk-user-key") -> openai.OpenAI:
    return openai.OpenAI(base_url=assistant.url + "/v1", api_key=key, max_retries=0, timeout=30)


def test_text_response_with_usage_and_stored_copy(
    module_assistant: ServiceProcess, upstream: ScriptedUpstream
) -> None:
    upstream.reset(["Hello there!"])
    api = client(module_assistant)
    response = api.responses.create(
        model="scripted-model", input="hi", instructions="Be brief.", max_output_tokens=40, temperature=0.3,
        metadata={"ticket": "42"},
    )  # fmt: skip
    assert response.status == "completed" and response.output_text == "Hello there!"
    assert response.id.startswith("resp_") and response.model == "scripted-model"
    (message,) = response.output
    assert message.type == "message" and message.role == "assistant" and message.status == "completed"
    assert message.content[0].type == "output_text"
    usage = response.usage
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens > 0
    assert response.metadata == {"ticket": "42"} and response.instructions == "Be brief."
    sent = upstream.requests[0]
    assert sent["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
    assert sent["max_tokens"] == 40 and sent["temperature"] == 0.3
    stored = api.responses.retrieve(response.id)
    assert stored.id == response.id and stored.output_text == "Hello there!"
    items = api.responses.input_items.list(response.id)
    assert [item.type for item in items.data] == ["message"] and items.data[0].content[0].text == "hi"


def test_function_call_then_its_output_in_a_second_turn(
    module_assistant: ServiceProcess, upstream: ScriptedUpstream
) -> None:
    upstream.reset([CALL_PARIS, "It is sunny in Paris."])
    api = client(module_assistant)
    question = [{"role": "user", "content": "Weather in Paris?"}]
    first = api.responses.create(model="m", input=question, tools=[WEATHER_TOOL], store=False)
    kinds = [item.type for item in first.output]
    assert kinds == ["reasoning", "function_call"], kinds
    assert first.output[0].content[0].text == "I need the weather."
    call = first.output[1]
    assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "Paris"}
    assert call.call_id.startswith("call_") and call.id.startswith("fc_") and call.status == "completed"
    system = upstream.requests[0]["messages"][0]["content"]
    assert "get_weather" in system and "Action Input" in system  # emulated: the tool is in the prompt
    second = api.responses.create(
        model="m", tools=[WEATHER_TOOL], store=False,
        input=[*question, *[i.model_dump(exclude_none=True) for i in first.output],
               {"type": "function_call_output", "call_id": call.call_id, "output": "sunny, 24 C"}],
    )  # fmt: skip
    assert second.output_text == "It is sunny in Paris."
    transcript = "\n".join(m["content"] or "" for m in upstream.requests[1]["messages"])
    assert "sunny, 24 C" in transcript and '"city": "Paris"' in transcript  # the call and its result went up
    with pytest.raises(openai.NotFoundError):  # store=False: nothing kept
        api.responses.retrieve(first.id)


def test_previous_response_id_continues_without_resending(
    module_assistant: ServiceProcess, upstream: ScriptedUpstream
) -> None:
    upstream.reset(["Nice to meet you, Ada.", "Your name is Ada."])
    api = client(module_assistant)
    first = api.responses.create(model="m", input="My name is Ada.", instructions="First instructions.")
    second = api.responses.create(model="m", input="What is my name?", previous_response_id=first.id)
    assert second.previous_response_id == first.id and second.output_text == "Your name is Ada."
    assert upstream.requests[1]["messages"] == [  # the earlier turn once; its instructions not carried over
        {"role": "user", "content": "My name is Ada."},
        {"role": "assistant", "content": "Nice to meet you, Ada."},
        {"role": "user", "content": "What is my name?"},
    ]
    with pytest.raises(openai.NotFoundError) as missing:
        api.responses.create(model="m", input="x", previous_response_id="resp_nope")
    assert missing.value.body["code"] == "previous_response_not_found"


def test_stream_events_and_the_stream_helper(
    module_assistant: ServiceProcess, upstream: ScriptedUpstream
) -> None:
    upstream.reset([CALL_PARIS, "Sunny and warm."])
    api = client(module_assistant)
    events = list(
        api.responses.create(model="m", input="Weather in Paris?", tools=[WEATHER_TOOL], stream=True)
    )
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert (
        "response.function_call_arguments.delta" in kinds and "response.function_call_arguments.done" in kinds
    )
    done = next(e for e in events if e.type == "response.function_call_arguments.done")
    assert json.loads(done.arguments) == {"city": "Paris"}
    final = events[-1].response
    assert [i.type for i in final.output] == ["reasoning", "function_call"] and final.usage.total_tokens > 0

    with api.responses.stream(model="m", input="And now?") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        whole = stream.get_final_response()
    assert "".join(deltas) == "Sunny and warm." == whole.output_text
    assert api.responses.retrieve(whole.id).output_text == "Sunny and warm."  # stored before completed


def test_required_tool_choice_and_a_named_function(
    module_assistant: ServiceProcess, upstream: ScriptedUpstream
) -> None:
    upstream.reset(["I'd rather chat.", CALL_PARIS])  # no call at first: asked again, once
    api = client(module_assistant)
    response = api.responses.create(
        model="m",
        input="Paris?",
        tools=[WEATHER_TOOL],
        tool_choice={"type": "function", "name": "get_weather"},
    )
    assert [i.type for i in response.output][-1] == "function_call" and len(upstream.requests) == 2
    assert response.tool_choice.name == "get_weather"
    with pytest.raises(openai.BadRequestError) as unknown:
        api.responses.create(
            model="m", input="x", tools=[WEATHER_TOOL], tool_choice={"type": "function", "name": "nope"}
        )
    assert "not in tools" in unknown.value.body["message"]


def test_incomplete_when_the_model_hits_its_token_limit(
    module_assistant: ServiceProcess, upstream: ScriptedUpstream
) -> None:
    upstream.reset(["cut short"])
    upstream.finish_reason = "length"
    response = client(module_assistant).responses.create(model="m", input="write a lot", max_output_tokens=2)
    assert response.status == "incomplete" and response.incomplete_details.reason == "max_output_tokens"


def test_bad_requests_get_openai_errors_and_other_tenants_see_nothing(
    module_assistant: ServiceProcess, upstream: ScriptedUpstream
) -> None:
    url = module_assistant.url + "/v1/responses"
    for body, param in (
        ({"model": "m"}, "input"),
        ({"model": "m", "input": []}, "input"),
        ({"model": "m", "input": [{"type": "web_search_call", "id": "x"}]}, "input.0"),
        ({"model": "m", "input": "x", "tools": [{"type": "web_search"}]}, "tools.0"),
        ({"model": "m", "input": "x", "background": True}, "background"),
    ):
        reply = requests.post(url, json=body, timeout=10)
        assert reply.status_code == 400, (body, reply.text)
        assert reply.json()["error"]["param"].startswith(param), reply.json()
    for method, path in (("get", ""), ("delete", ""), ("get", "/input_items"), ("post", "/cancel")):
        reply = requests.request(method, f"{url}/resp_unknown{path}", timeout=10)
        assert reply.status_code == 404 and reply.json()["error"]["code"] == "not_found", reply.text


def test_stored_responses_belong_to_their_tenant(
    assistant_factory, redis_url: str, upstream: ScriptedUpstream
) -> None:
    service = assistant_factory(MSAGENT_AUTH="on", MSAGENT_ADMIN_KEY=ADMIN)
    alice, bob = new_key(redis_url, "alice"), new_key(redis_url, "bob")
    upstream.reset(["Alice's secret answer."])
    mine = client(service, alice).responses.create(
        model="m", input="remember this", extra_headers=UPSTREAM_KEY
    )
    theirs = client(service, bob)
    for read in (
        lambda: theirs.responses.retrieve(mine.id),
        lambda: theirs.responses.input_items.list(mine.id),
        lambda: theirs.responses.delete(mine.id),
        lambda: theirs.responses.create(
            model="m", input="and?", previous_response_id=mine.id, extra_headers=UPSTREAM_KEY
        ),
    ):
        with pytest.raises(openai.NotFoundError):
            read()
    assert len(upstream.requests) == 1  # bob's continuation never reached the model
    own = client(service, alice)
    assert own.responses.retrieve(mine.id).output_text == "Alice's secret answer."
    own.responses.delete(mine.id)
    with pytest.raises(openai.NotFoundError):
        own.responses.retrieve(mine.id)
