"""/v1/messages through the official `anthropic` SDK: text, a tool (non-stream and stream), a second
turn with `tool_result`, errors in Anthropic's envelope; the model behind is the scripted OpenAI-wire
upstream, with tool use emulated."""

from __future__ import annotations

import json

import anthropic
import pytest
import requests

from .helpers import ADMIN, ServiceProcess, new_key
from .upstreams import ScriptedUpstream

WEATHER = {
    "name": "get_weather",
    "description": "Current weather of a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
CALL = 'Thought: I should look it up.\nAction: get_weather\nAction Input: {"city": "Paris"}'
QUESTION = {"role": "user", "content": "Weather in Paris?"}


def client(assistant: ServiceProcess, key: str = "sk-user-key") -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=assistant.url, api_key=key, max_retries=0, timeout=30)


def test_text_reply_system_and_stops(module_assistant: ServiceProcess, upstream: ScriptedUpstream) -> None:
    upstream.reset(["Bonjour!"])
    reply = client(module_assistant).messages.create(
        model="scripted-model", max_tokens=64, system="Answer in French.", stop_sequences=["END"],
        messages=[{"role": "user", "content": "Hello"}],
    )  # fmt: skip
    assert reply.type == "message" and reply.role == "assistant" and reply.id.startswith("msg_")
    assert [b.type for b in reply.content] == ["text"] and reply.content[0].text == "Bonjour!"
    assert reply.stop_reason == "end_turn" and reply.usage.input_tokens > 0 and reply.usage.output_tokens > 0
    sent = upstream.requests[0]
    assert sent["messages"] == [
        {"role": "system", "content": "Answer in French."},
        {"role": "user", "content": "Hello"},
    ]
    assert sent["max_tokens"] == 64 and sent["stop"] == ["END"]
    assert upstream.headers[0]["Authorization"] == "Bearer sk-user-key"  # x-api-key passed on upstream


def test_tool_use_then_tool_result(module_assistant: ServiceProcess, upstream: ScriptedUpstream) -> None:
    upstream.reset([CALL, "Sunny, 24 C."])
    api = client(module_assistant)
    first = api.messages.create(model="m", max_tokens=256, tools=[WEATHER], messages=[QUESTION])
    assert first.stop_reason == "tool_use"
    (use,) = [b for b in first.content if b.type == "tool_use"]
    assert use.name == "get_weather" and use.input == {"city": "Paris"} and use.id.startswith("call_")
    assert [b.type for b in first.content] == ["tool_use"]  # thinking only when the request enables it
    second = api.messages.create(
        model="m", max_tokens=256, tools=[WEATHER],
        messages=[QUESTION, {"role": "assistant", "content": first.content},
                  {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "sunny, 24 C"}]}],
    )  # fmt: skip
    assert second.stop_reason == "end_turn" and second.content[0].text == "Sunny, 24 C."
    transcript = "\n".join(m["content"] or "" for m in upstream.requests[1]["messages"])
    assert "sunny, 24 C" in transcript and '"city": "Paris"' in transcript


def test_streamed_tool_use_and_thinking(module_assistant: ServiceProcess, upstream: ScriptedUpstream) -> None:
    upstream.reset([CALL])
    api = client(module_assistant)
    with api.messages.stream(
        model="m", max_tokens=256, tools=[WEATHER], messages=[QUESTION],
        thinking={"type": "enabled", "budget_tokens": 1024},
    ) as stream:  # fmt: skip
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert [b.type for b in final.content] == ["thinking", "tool_use"]
    assert final.content[0].thinking == "I should look it up." and final.content[1].input == {"city": "Paris"}
    assert final.stop_reason == "tool_use" and final.usage.output_tokens > 0

    upstream.reset(["Plain streamed text."])
    raw = list(api.messages.create(model="m", max_tokens=64, messages=[QUESTION], stream=True))
    assert [e.type for e in raw] == [
        "message_start", "content_block_start", *["content_block_delta"] * 10, "content_block_stop",
        "message_delta", "message_stop",
    ]  # fmt: skip
    assert "".join(e.delta.text for e in raw if e.type == "content_block_delta") == "Plain streamed text."


def test_tool_choice_any_forces_a_call(module_assistant: ServiceProcess, upstream: ScriptedUpstream) -> None:
    upstream.reset(["No tool for me.", CALL])  # no call at first: asked again, once
    reply = client(module_assistant).messages.create(
        model="m", max_tokens=128, tools=[WEATHER], tool_choice={"type": "any"}, messages=[QUESTION]
    )
    assert reply.stop_reason == "tool_use" and len(upstream.requests) == 2


def test_errors_come_in_anthropics_envelope(
    assistant_factory, redis_url: str, upstream: ScriptedUpstream
) -> None:
    service = assistant_factory(MSAGENT_AUTH="on", MSAGENT_ADMIN_KEY=ADMIN)
    url = service.url + "/v1/messages"
    key = new_key(redis_url, "alice")
    with pytest.raises(anthropic.AuthenticationError) as refused:
        client(service, "sk-not-ours").messages.create(model="m", max_tokens=8, messages=[QUESTION])
    assert (
        refused.value.body["type"] == "error"
        and refused.value.body["error"]["type"] == "authentication_error"
    )
    headers = {"x-api-key": key, "X-Upstream-Api-Key": "sk-up"}
    for body in (
        {"model": "m", "messages": [QUESTION]},  # max_tokens is required
        {"model": "m", "max_tokens": 8, "messages": []},
        {
            "model": "m",
            "max_tokens": 8,
            "messages": [QUESTION],
            "tools": [{"type": "web_search_20250305", "name": "web_search"}],
        },
    ):
        reply = requests.post(url, json=body, headers=headers, timeout=10)
        assert reply.status_code == 400, reply.text
        assert reply.json()["type"] == "error" and reply.json()["error"]["type"] == "invalid_request_error"
    upstream.reset(["ok"])
    good = requests.post(
        url, json={"model": "m", "max_tokens": 8, "messages": [QUESTION]}, headers=headers, timeout=10
    )
    assert good.status_code == 200 and json.loads(good.text)["content"][0]["text"] == "ok"
