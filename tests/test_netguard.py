"""URLs that callers choose (an agent's api_base, a tool's base_url) cannot reach private or loopback hosts
unless the operator allows it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import requests
from aiohttp import web

from msagent_srv.assistant.backends.http1 import Http1Client, HttpError
from msagent_srv.assistant.backends.router import caller_guard
from msagent_srv.client import AsyncToolServiceProxy
from msagent_srv.netguard import ALLOW_ENV, NetGuard, PrivateAddressRefused, is_public
from msagent_srv.settings import Settings
from msagent_srv.tools import ToolError, load_tool
from msagent_srv.toolservice import ToolServiceError

from .helpers import ServiceProcess
from .upstreams import ScriptedUpstream


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.9", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),  # cloud metadata
        ("100.64.0.1", False),  # carrier-grade NAT
        ("0.0.0.0", False),
        ("::1", False),
        ("fd00::1", False),
        ("fe80::1%eth0", False),
        ("::ffff:127.0.0.1", False),  # loopback behind an IPv4-mapped address
        ("::7f00:1", False),  # IPv4-compatible
        ("::ffff:0:7f00:1", False),  # IPv4-translated (SIIT)
        ("64:ff9b::a9fe:a9fe", False),  # NAT64 of 169.254.169.254
        ("64:ff9b::808:808", True),  # NAT64 of a public address
        ("2002:7f00:1::1", False),  # 6to4 of 127.0.0.1
        ("2002:808:808::1", True),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", False),  # Teredo
        ("224.0.0.1", False),
        ("not-an-address", False),
    ],
)
def test_only_global_unicast_addresses_are_public(address: str, public: bool) -> None:
    assert is_public(address) is public


async def test_resolver_and_client_refuse_loopback_names_and_literals() -> None:
    with pytest.raises(PrivateAddressRefused, match="localhost resolves to"):
        await NetGuard().resolve("localhost", 80)
    http = Http1Client(public_only=True)
    pool, path = http.endpoint("http://127.0.0.1:9/v1/chat/completions")
    with pytest.raises(HttpError, match="non-public"):
        async with pool.post(path, b"{}", {}, 5):
            pass
    await http.close()


@pytest.fixture
async def amap_server() -> AsyncIterator[str]:
    """AMap's web service API as it answers (district lookup, then live weather), on loopback."""

    async def district(request: web.Request) -> web.Response:
        assert request.query["key"] == "amap-key"
        return web.json_response(
            {
                "status": "1",
                "info": "OK",
                "districts": [{"adcode": "330100", "name": request.query["keywords"]}],
            }
        )

    async def weather(request: web.Request) -> web.Response:
        assert request.query["city"] == "330100"
        return web.json_response(
            {"status": "1", "info": "OK", "lives": [{"city": "杭州市", "weather": "晴", "temperature": "20"}]}
        )

    app = web.Application()
    app.router.add_get("/v3/config/district", district)
    app.router.add_get("/v3/weather/weatherInfo", weather)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


async def test_weather_tool_refuses_a_private_base_url_unless_allowed(
    amap_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = {"token": "amap-key", "base_url": amap_server}
    monkeypatch.delenv(ALLOW_ENV, raising=False)
    with pytest.raises(ToolError, match="non-public"):
        await load_tool("amap_weather", cfg).call({"location": "杭州"})
    monkeypatch.setenv(ALLOW_ENV, "true")
    assert await load_tool("amap_weather", cfg).call({"location": "杭州"}) == "杭州市的天气是晴温度是20度。"


def lite_with_base(service: ServiceProcess, api_base: str, server: str = "openai") -> requests.Response:
    return requests.post(
        service.url + "/v1/assistants/lite",
        timeout=60,
        json={"llm_config": {"model": "m", "model_server": server, "api_base": api_base, "api_key": "k"},
              "messages": [{"role": "user", "content": "hi"}]},
    )  # fmt: skip


@pytest.fixture
def other_upstream() -> Iterator[ScriptedUpstream]:
    """A model server on loopback that the assistant was not configured with (a caller's own)."""
    server = ScriptedUpstream().start()
    yield server
    server.stop()


def test_agent_api_base_must_be_public_unless_allowed(
    assistant_factory, other_upstream: ScriptedUpstream
) -> None:
    guarded = assistant_factory(MSAGENT_KNOWLEDGE="false", MSAGENT_PUBLIC_URLS_ONLY="true")
    port = other_upstream.port
    for base in (
        other_upstream.openai_url,
        f"http://localhost:{port}/v1",
        f"http://[::ffff:127.0.0.1]:{port}/v1",  # IPv4-mapped
        f"http://[::7f00:1]:{port}/v1",  # IPv4-compatible
        f"http://[64:ff9b::a9fe:a9fe]:{port}/v1",  # NAT64 of the cloud metadata address
        f"http://[2002:7f00:1::1]:{port}/v1",  # 6to4
        f"http://0.0.0.0:{port}/v1",
    ):
        for server in ("openai", "dashscope"):
            refused = lite_with_base(guarded, base, server)
            assert refused.status_code == 400, (base, refused.text)
            assert refused.json()["error"]["code"] == "invalid_api_base"
            assert refused.json()["error"]["param"] == "llm_config.api_base"
            assert "non-public" in refused.json()["error"]["message"]
    assert not other_upstream.requests  # nothing was sent

    other_upstream.script = ["hello from a private upstream"]
    trusting = assistant_factory(
        MSAGENT_KNOWLEDGE="false", MSAGENT_ALLOW_PRIVATE_URLS="true", MSAGENT_PUBLIC_URLS_ONLY="true"
    )
    allowed = lite_with_base(trusting, other_upstream.openai_url)
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["output"]["response"] == "hello from a private upstream"


def test_a_loopback_only_service_lets_callers_use_their_own_local_model(
    assistant_factory, other_upstream: ScriptedUpstream
) -> None:
    """The default (listening on 127.0.0.1, as `msagent-srv up` does): a caller on this host may point an
    agent at their own vLLM on loopback, through either backend."""
    local = assistant_factory(MSAGENT_KNOWLEDGE="false")
    other_upstream.script = ["from my vLLM", "from my DashScope stand-in"]
    for server, base, expected in (
        ("openai", other_upstream.openai_url, "from my vLLM"),
        ("dashscope", other_upstream.dashscope_url, "from my DashScope stand-in"),
    ):
        reply = lite_with_base(local, base, server)
        assert reply.status_code == 200, reply.text
        assert reply.json()["output"]["response"] == expected
    assert len(other_upstream.requests) == 2


def test_upstreams_the_operator_configured_are_allowed_to_callers(
    assistant_factory, upstream: ScriptedUpstream
) -> None:
    """Public-only, yet OPENAI_BASE_URL / DASHSCOPE_HTTP_BASE_URL on loopback may be named as api_base."""
    guarded = assistant_factory(MSAGENT_KNOWLEDGE="false", MSAGENT_PUBLIC_URLS_ONLY="true")
    upstream.script = ["configured openai", "configured dashscope"]
    for server, base, expected in (
        ("openai", upstream.openai_url, "configured openai"),
        ("dashscope", upstream.dashscope_url, "configured dashscope"),
    ):
        reply = lite_with_base(guarded, base, server)
        assert reply.status_code == 200, reply.text
        assert reply.json()["output"]["response"] == expected


async def test_tools_in_nodes_follow_the_managers_setting(manager_factory, amap_server: str) -> None:
    cfg = {"token": "amap-key", "base_url": amap_server}
    for tenant, extra, expected in (
        ("guarded", {}, "non-public"),
        ("trusting", {ALLOW_ENV: "true"}, "杭州市的天气是晴温度是20度。"),
    ):
        manager = manager_factory(
            MSAGENT_RUNTIME="process", MSAGENT_NODE_PORT_BASE="22400", MSAGENT_NODE_PORT_MAX="22499", **extra
        )
        proxy = await AsyncToolServiceProxy.create("amap_weather", cfg, tenant, manager.url)
        try:
            result = str(await proxy.call({"location": "杭州"}))
        except ToolServiceError as exc:
            result = str(exc)
        finally:
            await proxy.remove()
            await proxy.close()
        assert expected in result


@pytest.mark.parametrize(
    ("env", "private"),
    [
        ({}, True),  # 127.0.0.1, as `msagent-srv up` listens: callers are on this host
        ({"MSAGENT_HOST": "::1"}, True),
        ({"MSAGENT_HOST": "0.0.0.0"}, False),
        ({"MSAGENT_HOST": "192.0.2.2"}, False),
        ({"MSAGENT_PUBLIC_URLS_ONLY": "true"}, False),  # loopback behind a reverse proxy
        ({"MSAGENT_HOST": "0.0.0.0", "MSAGENT_ALLOW_PRIVATE_URLS": "true"}, True),
    ],
)
async def test_private_addresses_are_allowed_when_listening_on_loopback_only(
    env: dict[str, str], private: bool
) -> None:
    guard = caller_guard(Settings.load(env, openai_base_url="http://10.9.8.7:8000/v1"))
    assert guard.allow_private is private
    await guard.check_url("http://10.9.8.7:8000/v1")  # the operator's upstream: always
    if private:
        await guard.check_url("http://10.1.1.1:8000/v1")
    else:
        with pytest.raises(PrivateAddressRefused):
            await guard.check_url("http://10.1.1.1:8000/v1")
