"""URLs that callers choose (an agent's api_base, a tool's base_url) cannot reach private or loopback hosts
unless the operator allows it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import requests
from aiohttp import web

from msagent_srv.assistant.backends.http1 import Http1Client, HttpError
from msagent_srv.client import AsyncToolServiceProxy
from msagent_srv.client.errors import ToolServiceError
from msagent_srv.netguard import ALLOW_ENV, PrivateAddressRefused, PublicOnlyResolver, is_public
from msagent_srv.tools import ToolError, load_tool

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
        ("224.0.0.1", False),
    ],
)
def test_only_global_unicast_addresses_are_public(address: str, public: bool) -> None:
    assert is_public(address) is public


async def test_resolver_and_client_refuse_loopback_names_and_literals() -> None:
    with pytest.raises(PrivateAddressRefused, match="localhost resolves to"):
        await PublicOnlyResolver().resolve("localhost", 80)
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


def lite_with_base(service: ServiceProcess, api_base: str) -> requests.Response:
    return requests.post(
        service.url + "/v1/assistants/lite",
        timeout=60,
        json={"llm_config": {"model": "m", "model_server": "openai", "api_base": api_base, "api_key": "k"},
              "messages": [{"role": "user", "content": "hi"}]},
    )  # fmt: skip


def test_agent_api_base_must_be_public_unless_allowed(assistant_factory, upstream: ScriptedUpstream) -> None:
    guarded = assistant_factory(MSAGENT_KNOWLEDGE="false")
    for base in (upstream.openai_url, "http://localhost:9/v1", "http://[::ffff:127.0.0.1]:9/v1"):
        refused = lite_with_base(guarded, base)
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"]["code"] == "invalid_api_base"
        assert "non-public" in refused.json()["error"]["message"]
    assert not upstream.requests  # nothing was sent

    upstream.script = ["hello from a private upstream"]
    trusting = assistant_factory(MSAGENT_KNOWLEDGE="false", MSAGENT_ALLOW_PRIVATE_URLS="true")
    allowed = lite_with_base(trusting, upstream.openai_url)
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["output"]["response"] == "hello from a private upstream"


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
