"""The chat completion path through each client for model calls (MSAGENT_UPSTREAM_HTTP: http1, ours; aiohttp,
the adapter over aiohttp's ClientSession), against the real server process and the scripted upstream, so
whichever client stays is tested the same way: a plain reply, a stream, a native tool-call stream, upstream
error statuses, a redirect (answered, never followed), an over-long event line, and the guard's refusal."""

from __future__ import annotations

import json

import aiohttp
import openai
import pytest
from aiohttp import web

from msagent_srv.assistant.backends.aiohttp_pool import AiohttpClient, upstream_client
from msagent_srv.assistant.backends.base import UpstreamError, transport_errors
from msagent_srv.assistant.backends.http1 import MAX_EVENT_LINE, Http1Client
from msagent_srv.netguard import NetGuard

from .helpers import WEATHER, Handler, LoopbackServer, ServiceProcess
from .upstreams import ScriptedUpstream

CLIENTS = ["http1", "aiohttp"]
NATIVE_CALL = {
    "id": "call_native1",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city": "Kyiv"}'},
}


def openai_client(service: ServiceProcess, key: str = "sk-user-key") -> openai.OpenAI:
    return openai.OpenAI(base_url=service.url + "/v1", api_key=key, max_retries=0, timeout=30)


async def post_chat(service: ServiceProcess, body: dict) -> tuple[int, bytes]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        async with session.post(
            service.url + "/v1/chat/completions", json=body, headers={"Authorization": "Bearer k"}
        ) as response:
            return response.status, await response.read()


@pytest.mark.parametrize("kind", CLIENTS)
def test_plain_reply_and_stream(assistant_factory, upstream: ScriptedUpstream, kind: str) -> None:
    service = assistant_factory(MSAGENT_UPSTREAM_HTTP=kind, MSAGENT_KNOWLEDGE="false")
    text = "Streaming works: one, two, three, four, five."
    upstream.reset(["Hello! How can I help?", text])
    reply = openai_client(service).chat.completions.create(
        model="scripted-model", messages=[{"role": "user", "content": "hi"}], max_tokens=50
    )
    assert reply.choices[0].message.content == "Hello! How can I help?"
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens > 0
    assert upstream.headers[0]["Authorization"] == "Bearer sk-user-key"
    assert upstream.headers[0].get("Accept-Encoding", "identity") == "identity"  # nothing to decompress
    assert upstream.requests[0]["max_tokens"] == 50 and upstream.requests[0]["stream"] is False
    chunks = list(
        openai_client(service).chat.completions.create(
            model="m", messages=[{"role": "user", "content": "go"}], stream=True
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == text
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) >= 5  # really streamed
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == [
        "stop"
    ]
    assert upstream.requests[1]["stream"] is True


@pytest.mark.parametrize("kind", CLIENTS)
def test_native_tool_call_stream(assistant_factory, upstream: ScriptedUpstream, kind: str) -> None:
    service = assistant_factory(
        MSAGENT_UPSTREAM_HTTP=kind, MSAGENT_KNOWLEDGE="false", MSAGENT_FUNCTION_CALLING="openai=native"
    )
    upstream.native_calls = [NATIVE_CALL]
    streamed = list(
        openai_client(service).chat.completions.create(
            model="m", messages=[{"role": "user", "content": "Kyiv?"}], tools=[WEATHER], stream=True
        )
    )
    calls = [tc for c in streamed if c.choices for tc in c.choices[0].delta.tool_calls or []]
    assert calls[0].id == "call_native1" and calls[0].function.name == "get_weather"
    assert json.loads("".join(tc.function.arguments or "" for tc in calls)) == {"city": "Kyiv"}
    assert streamed[-1].choices[0].finish_reason == "tool_calls"
    assert upstream.requests[0]["tools"][0]["function"]["name"] == "get_weather"


@pytest.mark.parametrize("kind", CLIENTS)
def test_upstream_error_statuses(assistant_factory, upstream: ScriptedUpstream, kind: str) -> None:
    service = assistant_factory(
        MSAGENT_UPSTREAM_HTTP=kind, MSAGENT_KNOWLEDGE="false", MSAGENT_UPSTREAM_TIMEOUT="1"
    )
    messages = [{"role": "user", "content": "x"}]
    upstream.fail_status = 401
    with pytest.raises(openai.AuthenticationError) as refused:
        openai_client(service).chat.completions.create(model="m", messages=messages)
    assert "scripted failure 401" in refused.value.message
    upstream.fail_status = 500
    for stream in (False, True):
        with pytest.raises(openai.APIStatusError) as caught:
            reply = openai_client(service).chat.completions.create(
                model="m", messages=messages, stream=stream
            )
            list(reply)
        assert caught.value.status_code == 502 and "500" in caught.value.message
    upstream.fail_status, upstream.delay = None, 3
    with pytest.raises(openai.APIStatusError) as late:
        openai_client(service).chat.completions.create(model="m", messages=messages)
    assert late.value.status_code == 504
    assert "Traceback" not in service.log()


@pytest.mark.parametrize("kind", CLIENTS)
async def test_a_redirect_is_the_answer_not_followed(assistant_factory, kind: str) -> None:
    async def redirect(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=307, headers={"Location": "/v1/elsewhere"})

    model = LoopbackServer(redirect)
    async with model as base:
        service = assistant_factory(
            MSAGENT_UPSTREAM_HTTP=kind, MSAGENT_KNOWLEDGE="false", OPENAI_BASE_URL=base + "/v1"
        )
        status, raw = await post_chat(service, {"model": "m", "messages": [{"role": "user", "content": "x"}]})
    assert status == 502 and "307" in json.loads(raw)["error"]["message"]
    assert model.hits == 1


def over_long_line(lines_before: int) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        try:
            for _ in range(lines_before):
                event = {"choices": [{"index": 0, "delta": {"content": "Hello there. "}}]}
                await response.write(b"data: " + json.dumps(event).encode() + b"\n\n")
            await response.write(b'data: {"choices":[{"delta":{"content":"')
            for _ in range((MAX_EVENT_LINE >> 16) + 4):
                await response.write(b"x" * (64 << 10))
            await response.write(b'"}}]}\n\ndata: [DONE]\n\n')
        except ConnectionResetError:
            pass  # the assistant stopped reading
        return response

    return handler


@pytest.mark.parametrize("kind", CLIENTS)
async def test_an_over_long_event_line_ends_the_stream_with_a_clear_error(
    assistant_factory, kind: str
) -> None:
    for before, expect_status in ((0, 502), (3, 200)):
        async with LoopbackServer(over_long_line(before)) as base:
            service = assistant_factory(
                MSAGENT_UPSTREAM_HTTP=kind, MSAGENT_KNOWLEDGE="false", OPENAI_BASE_URL=base + "/v1"
            )
            body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
            status, raw = await post_chat(service, body)
        assert status == expect_status, raw[:300]
        if expect_status == 502:
            error = json.loads(raw)["error"]
        else:
            events = [json.loads(line[6:]) for line in raw.split(b"\n\n") if line.startswith(b"data: {")]
            text = "".join(
                (c.get("delta") or {}).get("content") or "" for e in events for c in e.get("choices", [])
            )
            assert text.startswith("Hello there.")
            error = events[-1]["error"]
        assert error["code"] == "upstream_bad_reply", error
        assert f"over {MAX_EVENT_LINE} bytes" in error["message"]


@pytest.mark.parametrize("kind", CLIENTS)
async def test_a_guarded_client_refuses_loopback_as_the_callers_fault(
    upstream: ScriptedUpstream, kind: str
) -> None:
    client = upstream_client(kind, connect_timeout=5, guard=NetGuard())
    assert isinstance(client, AiohttpClient if kind == "aiohttp" else Http1Client)
    pool, path = client.endpoint(upstream.openai_url + "/chat/completions")
    try:
        with pytest.raises(UpstreamError) as caught, transport_errors("openai"):
            async with pool.post(path, b"{}", {"Content-Type": "application/json"}, 5):
                pass
    finally:
        await client.close()
    assert caught.value.status == 400 and caught.value.code == "invalid_api_base"
    assert "127.0.0.1 is a non-public address" in caught.value.message
    assert upstream.requests == []
