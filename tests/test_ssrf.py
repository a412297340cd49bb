"""Attacks on the guard for callers' URLs (issue #13): a redirect into the loopback manager, a name that
resolves differently between check and connect, IPv4 hidden in IPv6, unusable URLs, over-long stream lines.
Everything runs on loopback; where a real attack needs a public host, an upstream the operator configured
(allowed whatever its address, as a public host would be) stands in for it."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from msagent_srv.assistant.backends.http1 import MAX_EVENT_LINE, Http1Client, HttpRefused
from msagent_srv.client import AsyncToolServiceProxy
from msagent_srv.netguard import ALLOW_ENV, NetGuard, PrivateAddressRefused, RedirectRefused
from msagent_srv.tools import ToolError, load_tool
from msagent_srv.toolservice import ToolServiceError

from .helpers import Handler, LoopbackServer, ServiceProcess


def redirect_to(location: str, status: int = 307) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=status, headers={"Location": location})

    return handler


async def post_json(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        async with session.post(url, json=body) as response:
            return response.status, await response.json(content_type=None)


def lite_body(server: str, api_base: str) -> dict[str, Any]:
    return {
        "llm_config": {"model": "m", "model_server": server, "api_base": api_base, "api_key": "k"},
        "messages": [{"role": "user", "content": "hi"}],
    }


async def wait_for_status(manager_url: str, tenant: str, node: str, wanted: set[str], deadline: float) -> str:
    """The node's status in the manager's list ("" once gone) when it is one of `wanted`, else the last
    seen at the deadline."""
    seen = ""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        while time.monotonic() < deadline:
            async with session.get(manager_url + "/tools", params={"tenant_id": tenant}) as response:
                seen = (await response.json())["output"]["tools"].get(node, "")
            if seen in wanted:
                return seen
            await asyncio.sleep(0.1)
    return seen


# -- (a) a redirect into the loopback manager -----------------------------------------------------------
async def test_an_api_base_redirecting_to_the_manager_does_not_reach_it(
    manager_factory, assistant_factory
) -> None:
    manager: ServiceProcess = manager_factory(
        MSAGENT_RUNTIME="process", MSAGENT_NODE_PORT_BASE="22800", MSAGENT_NODE_PORT_MAX="22849"
    )
    proxy = await AsyncToolServiceProxy.create("calculator", {}, "victim", manager.url)
    node = "calculator_victim"
    remove = f"{manager.url}/remove_tool?tool_name=calculator&tenant_id=victim"
    redirector = LoopbackServer(redirect_to(remove))
    try:
        async with redirector as evil:
            # public-only; the redirector is allowed the way a public host would be (configured upstream)
            assistant = assistant_factory(
                MSAGENT_KNOWLEDGE="false",
                MSAGENT_PUBLIC_URLS_ONLY="true",
                DASHSCOPE_HTTP_BASE_URL=evil + "/api/v1",
                OPENAI_BASE_URL=evil + "/v1",
            )
            for server, base in (("dashscope", evil + "/api/v1"), ("openai", evil + "/v1")):
                for stream in (False, True):
                    body = {**lite_body(server, base), "stream": stream}
                    status, reply = await post_json(assistant.url + "/v1/assistants/lite", body)
                    assert status == 502, (server, stream, reply)
                    assert "307" in reply["error"]["message"], reply
            assert redirector.hits == 4  # every request met the redirect
            deadline = time.monotonic() + 5
            assert await wait_for_status(manager.url, "victim", node, {"running"}, deadline) == "running"
            # the check can fail: a client that follows redirects (as the DashScope path did) removes it
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as plain:
                async with plain.post(evil + "/api/v1/services/aigc/text-generation/generation", json={}):
                    pass
            deadline = time.monotonic() + 30
            assert await wait_for_status(manager.url, "victim", node, {"exited", ""}, deadline) in (
                "exited",
                "",
            )
    finally:
        with contextlib.suppress(ToolServiceError):  # the control removed it already
            await proxy.remove()
        await proxy.close()


async def test_guarded_session_never_follows_a_redirect_even_to_allowed_hosts() -> None:
    async def target(request: web.Request) -> web.Response:
        return web.Response(text="reached")

    landing = LoopbackServer(target)
    async with landing as landing_url:
        async with LoopbackServer(redirect_to(landing_url + "/x", 302)) as start:
            guard = NetGuard(allow_private=True)
            async with guard.session(timeout=aiohttp.ClientTimeout(total=10)) as session:
                with pytest.raises(RedirectRefused, match="redirects are not followed"):
                    async with session.get(start + "/"):
                        pass
    assert landing.hits == 0


# -- (b) a name that answers public first, loopback next ---------------------------------------------------
class RebindingDns:
    """A name server for one name: a public address on the first question, loopback after that."""

    def __init__(self) -> None:
        self.questions = 0

    async def __call__(self, host: str, port: int) -> list[tuple[int, str]]:
        self.questions += 1
        return [(socket.AF_INET, "93.184.215.14" if self.questions == 1 else "127.0.0.1")]


async def test_a_name_resolving_differently_after_the_check_cannot_connect_to_loopback() -> None:
    async def target(request: web.Request) -> web.Response:
        return web.Response(text="internal")

    internal = LoopbackServer(target)
    async with internal as url:
        port = url.rsplit(":", 1)[1]
        name_url = f"http://rebind.example:{port}/v1"
        # aiohttp session (DashScope SDK, tools)
        dns = RebindingDns()
        guard = NetGuard(lookup=dns)
        await guard.check_url(name_url)  # the check sees the public answer
        async with guard.session(timeout=aiohttp.ClientTimeout(total=10)) as session:
            with pytest.raises(aiohttp.ClientConnectorError) as refused:
                async with session.get(name_url):
                    pass
        assert isinstance(refused.value.os_error, PrivateAddressRefused)
        assert dns.questions == 2  # one lookup per connection, and that answer is the one checked
        # the lean model client
        dns = RebindingDns()
        guard = NetGuard(lookup=dns)
        await guard.check_url(name_url)
        http = Http1Client(guard=guard, connect_timeout=5)
        pool, path = http.endpoint(name_url + "/chat/completions")
        with pytest.raises(HttpRefused, match=r"resolves to 127\.0\.0\.1"):
            async with pool.post(path, b"{}", {}, 10):
                pass
        await http.close()
    assert internal.hits == 0


async def test_every_address_of_a_name_must_be_allowed() -> None:
    async def mixed(host: str, port: int) -> list[tuple[int, str]]:
        return [(socket.AF_INET, "93.184.215.14"), (socket.AF_INET6, "::ffff:10.0.0.1")]

    with pytest.raises(PrivateAddressRefused, match=r"10\.0\.0\.1"):
        await NetGuard(lookup=mixed).check_url("http://mixed.example/v1")


async def test_each_socket_is_checked_whatever_resolved_the_name() -> None:
    """The socket check alone (aiohttp's own resolver, an IP literal) refuses a loopback peer."""

    async def target(request: web.Request) -> web.Response:
        return web.Response(text="internal")

    internal = LoopbackServer(target)
    async with internal as url:
        port = url.rsplit(":", 1)[1]
        guard = NetGuard()
        connector = aiohttp.TCPConnector(socket_factory=guard.socket_factory)  # the default resolver
        async with aiohttp.ClientSession(connector=connector) as session:
            for target_url in (f"http://localhost:{port}/", url + "/", f"http://[::ffff:127.0.0.1]:{port}/"):
                with pytest.raises(aiohttp.ClientConnectorError, match="non-public"):
                    async with session.get(target_url, timeout=aiohttp.ClientTimeout(total=10)):
                        pass
    assert internal.hits == 0


# -- (d) amap_weather ---------------------------------------------------------------------------------------
async def amap_answer(request: web.Request) -> web.Response:
    if request.path.endswith("/district"):
        return web.json_response({"status": "1", "districts": [{"adcode": "330100"}]})
    return web.json_response(
        {"status": "1", "lives": [{"city": "杭州市", "weather": "晴", "temperature": "20"}]}
    )


async def test_weather_tool_refuses_ip_literals_and_does_not_follow_redirects(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(ALLOW_ENV, raising=False)
    amap = LoopbackServer(amap_answer)
    async with amap as amap_url:
        port = amap_url.rsplit(":", 1)[1]
        for literal in (amap_url, f"http://[::ffff:127.0.0.1]:{port}", f"http://[::7f00:1]:{port}"):
            with pytest.raises(ToolError, match="non-public"):
                await load_tool("amap_weather", {"token": "t", "base_url": literal}).call(
                    {"location": "杭州"}
                )
        async with LoopbackServer(
            redirect_to(amap_url + "/v3/weather/weatherInfo?city=1", 302)
        ) as redirector:
            # the operator's AMAP_BASE_URL is allowed, but its redirect is not followed
            monkeypatch.setenv("AMAP_BASE_URL", redirector)
            with pytest.raises(ToolError, match="redirects are not followed"):
                await load_tool("amap_weather", {"token": "t"}).call({"location": "330100"})
            monkeypatch.setenv(ALLOW_ENV, "true")  # not even when private addresses are allowed
            with pytest.raises(ToolError, match="redirects are not followed"):
                await load_tool("amap_weather", {"token": "t", "base_url": redirector}).call(
                    {"location": "1"}
                )
            # the same server, named directly, works: the refusals above are the guard's
            weather = await load_tool("amap_weather", {"token": "t", "base_url": amap_url}).call(
                {"location": "杭州"}
            )
            assert weather == "杭州市的天气是晴温度是20度。"
    assert amap.hits == 2  # only the direct call


# -- point 8: unusable api_base values are 400s naming the field -----------------------------------------
@pytest.mark.parametrize("mode", ["loopback", "public-only", "private-allowed"])
async def test_unusable_api_base_is_a_400_naming_the_field(assistant_factory, mode: str) -> None:
    env = {"loopback": {}, "public-only": {"MSAGENT_PUBLIC_URLS_ONLY": "true"},
           "private-allowed": {"MSAGENT_ALLOW_PRIVATE_URLS": "true"}}[mode]  # fmt: skip
    assistant = assistant_factory(MSAGENT_KNOWLEDGE="false", **env)
    for base in ("http://127.0.0.1:99999/v1", f"http://{'a' * 64}.example.com/v1", "http://[::1/v1"):
        for server in ("openai", "dashscope"):
            status, reply = await post_json(assistant.url + "/v1/assistants/lite", lite_body(server, base))
            assert status == 400, (mode, base, server, reply)
            error = reply["error"]
            assert "api_base" in error["message"] or error.get("param") == "llm_config.api_base", reply
            if mode != "private-allowed":  # checked before any backend is made: the field is named
                assert error["param"] == "llm_config.api_base" and error["code"] == "invalid_api_base"


# -- point 9: an over-long line in an upstream's event stream ---------------------------------------------
async def test_an_over_long_dashscope_event_line_is_a_502(assistant_factory) -> None:
    async def dashscope(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream;charset=UTF-8"})
        await response.prepare(request)
        try:
            await response.write(b'id:1\nevent:result\n:HTTP_STATUS/200\ndata:{"output":{"text":"')
            for _ in range((MAX_EVENT_LINE >> 16) + 4):
                await response.write(b"x" * (64 << 10))
            await response.write(b'"}}\n\n')
        except ConnectionResetError:
            pass
        return response

    async with LoopbackServer(dashscope) as model:
        assistant = assistant_factory(MSAGENT_KNOWLEDGE="false")
        body = {**lite_body("dashscope", model + "/api/v1"), "stream": True}
        status, reply = await post_json(assistant.url + "/v1/assistants/lite", body)
    assert status == 502, reply
    assert reply["error"]["code"] == "upstream_bad_reply" and "over-long" in reply["error"]["message"]
