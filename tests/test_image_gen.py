"""`image_gen`, the original's text-to-image tool, on DashScope's ImageSynthesis wire (an async task, then
polls): in-process, against the DashScope SDK's own reading of the stand-in, and as a node through the
manager, as the original's agents call it (`kwargs={"dashscope_api_key": ...}`)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from msagent_srv.netguard import ALLOW_ENV
from msagent_srv.tools import ToolError, available_tools, load_tool

from .helpers import ServiceProcess, wait_for
from .upstreams import ScriptedUpstream

SUBMIT = "/api/v1/services/aigc/text2image/image-synthesis"
FAST = {"poll_interval": 0.1}
TENANTS = (
    "alice",
    "bob",
)  # of the node test  # the SDK's 1 s first wait, shortened: the stand-in answers at once


@pytest.fixture
def dashscope_env(upstream: ScriptedUpstream, monkeypatch: pytest.MonkeyPatch) -> ScriptedUpstream:
    """This process as an operator who points DashScope at the stand-in and configured no key."""
    monkeypatch.setenv("DASHSCOPE_HTTP_BASE_URL", upstream.dashscope_url)
    monkeypatch.delenv("DASHSCOPE_API_KEY", raising=False)
    monkeypatch.delenv(ALLOW_ENV, raising=False)
    return upstream


def submits(upstream: ScriptedUpstream) -> list[dict[str, Any]]:
    return [r for r in upstream.image_requests if r["method"] == "POST"]


def bearer(request: dict[str, Any]) -> str:
    return request["headers"].get("Authorization", "")


def task_of(result: str) -> str:
    """The task id inside the stand-in's result URL of a `![IMAGEGEN](url)` answer."""
    return result.split("/standin/", 1)[1].split("-1.png", 1)[0]


# -- in-process -------------------------------------------------------------------------------------------
async def test_image_gen_draws_through_an_async_task_and_its_polls(dashscope_env: ScriptedUpstream) -> None:
    upstream = dashscope_env
    upstream.image_key = "sk-image-kwargs"
    assert "image_gen" in available_tools()
    tool = load_tool("image_gen", FAST)
    result = await tool.call(
        '{"text": "多啦A梦在草地上", "resolution": "720*1280", "lora_index": "wanx1.4.5_textlora_huiben2_20240518"}',
        dashscope_api_key="sk-image-kwargs",
    )
    task_id = task_of(result)
    assert result == f"![IMAGEGEN]({upstream.image_url(task_id)})"
    submit, *polls = upstream.image_requests
    assert submit["method"] == "POST" and submit["path"] == SUBMIT
    assert submit["headers"]["X-DashScope-Async"] == "enable"
    assert submit["body"] == {
        "model": "wanx-v1",
        "input": {"prompt": "多啦A梦在草地上", "lora_index": "wanx1.4.5_textlora_huiben2_20240518"},
        "parameters": {"size": "720*1280", "n": 1, "steps": 10},
    }
    # PENDING, RUNNING, then SUCCEEDED: three polls of the task, each with the key
    assert [(p["method"], p["path"]) for p in polls] == [("GET", f"/api/v1/tasks/{task_id}")] * 3
    assert {bearer(r) for r in upstream.image_requests} == {"Bearer sk-image-kwargs"}
    assert "X-DashScope-Async" not in polls[0]["headers"]


async def test_the_key_comes_from_kwargs_then_tool_cfg_then_the_environment(
    dashscope_env: ScriptedUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    upstream = dashscope_env
    params = {"text": "一只猫", "resolution": "1024*1024"}
    with pytest.raises(ToolError, match="DASHSCOPE_API_KEY"):
        await load_tool("image_gen", FAST).call(params)
    assert upstream.image_requests == []  # nothing sent without a key
    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-from-env")
    cfg_tool = load_tool("image_gen", {**FAST, "dashscope_api_key": "sk-from-cfg"})
    for tool, kwargs, expected in (
        (cfg_tool, {"dashscope_api_key": "sk-from-kwargs"}, "sk-from-kwargs"),
        (cfg_tool, {"dashscope_api_key": ""}, "sk-from-cfg"),  # empty counts as not given, as in the original
        (load_tool("image_gen", FAST), {}, "sk-from-env"),
    ):
        start = len(upstream.image_requests)
        assert (await tool.call(params, **kwargs)).startswith("![IMAGEGEN](https://")
        assert {bearer(r) for r in upstream.image_requests[start:]} == {f"Bearer {expected}"}


async def test_model_seed_and_every_size_reach_dashscope(dashscope_env: ScriptedUpstream) -> None:
    upstream = dashscope_env
    tool = load_tool("image_gen", {**FAST, "model": "wanx-v1-custom", "dashscope_api_key": "k"})
    for size in ("1024*1024", "720*1280", "1280*720"):
        await tool.call({"text": "山水画", "resolution": size}, seed=42)
    bodies = [r["body"] for r in submits(upstream)]
    assert [b["parameters"]["size"] for b in bodies] == ["1024*1024", "720*1280", "1280*720"]
    assert {b["model"] for b in bodies} == {"wanx-v1-custom"}
    assert {b["parameters"]["seed"] for b in bodies} == {42}
    await load_tool("image_gen", {**FAST, "dashscope_api_key": "k"}).call(
        {"text": "山水画", "resolution": "1024*1024"}, model="wanx-v1"
    )
    assert submits(upstream)[-1]["body"]["model"] == "wanx-v1"  # a call's model over tool_cfg's


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"text": "猫", "resolution": "512*512"},
            "resolution must be one of 1024\\*1024, 720\\*1280, 1280\\*720",
        ),
        ({"text": "猫", "resolution": "1024*1024; rm -rf /"}, "resolution must be one of"),
        ({"resolution": "1024*1024"}, "missing required parameter"),
        ({"text": "猫"}, "missing required parameter.*resolution"),
        ({"text": "   ", "resolution": "1024*1024"}, "non-empty"),
        ({"text": ["猫"], "resolution": "1024*1024"}, "non-empty string"),
        ({"text": "猫" * 2001, "resolution": "1024*1024"}, "longer than 2000"),
        ("{not json", "not valid JSON"),
    ],
)
async def test_bad_arguments_are_tool_errors_and_send_nothing(
    dashscope_env: ScriptedUpstream, params: Any, message: str
) -> None:
    with pytest.raises(ToolError, match=message):
        await load_tool("image_gen", FAST).call(params, dashscope_api_key="k")
    assert dashscope_env.image_requests == []


async def test_dashscope_refusals_are_tool_errors(dashscope_env: ScriptedUpstream) -> None:
    upstream = dashscope_env
    upstream.image_key = "sk-right"
    params = {"text": "猫", "resolution": "1024*1024"}
    tool = load_tool("image_gen", FAST)
    with pytest.raises(ToolError, match="HTTP 401 InvalidApiKey: Invalid API-key provided") as refused:
        await tool.call(params, dashscope_api_key="sk-wrong")
    assert "sk-wrong" not in str(refused.value)  # the key is never part of what callers are shown
    upstream.image_failure = ("DataInspectionFailed", "Input data may contain inappropriate content.")
    with pytest.raises(ToolError, match="FAILED: DataInspectionFailed: Input data may contain inappropriate"):
        await tool.call(params, dashscope_api_key="sk-right")
    with pytest.raises(ToolError, match="printable"):
        await tool.call(params, dashscope_api_key="sk-right\r\nX-Injected: 1")
    with pytest.raises(ToolError, match="seed must be an integer"):
        await tool.call(params, dashscope_api_key="sk-right", seed="7")


async def test_polling_is_bounded_by_the_tools_timeout(dashscope_env: ScriptedUpstream) -> None:
    """A task that never ends costs the caller `timeout` seconds and a tool error, not a hung call."""
    dashscope_env.image_polls = 10**6
    tool = load_tool("image_gen", {"poll_interval": 0.2, "timeout": 2})
    started = asyncio.get_running_loop().time()
    with pytest.raises(ToolError, match="did not finish within 2s"):
        await tool.call({"text": "猫", "resolution": "1024*1024"}, dashscope_api_key="k")
    assert asyncio.get_running_loop().time() - started < 30  # generous: the bound, not the speed
    assert 2 <= len(dashscope_env.image_requests) < 40


async def test_a_callers_base_url_goes_through_the_url_guard(dashscope_env: ScriptedUpstream) -> None:
    """tool_cfg is the caller's: its base_url may not name loopback (the manager, other services) unless it
    is the operator's DASHSCOPE_HTTP_BASE_URL."""
    params = {"text": "猫", "resolution": "1024*1024"}
    for url in ("http://127.0.0.1:9/api/v1", "http://169.254.169.254/api/v1", "file:///etc/passwd"):
        with pytest.raises(ToolError, match="base URL refused"):
            await load_tool("image_gen", {**FAST, "base_url": url}).call(params, dashscope_api_key="k")
    same = load_tool("image_gen", {**FAST, "base_url": dashscope_env.dashscope_url})
    assert (await same.call(params, dashscope_api_key="k")).startswith("![IMAGEGEN](")


def test_the_dashscope_sdk_reads_the_stand_in_as_it_reads_dashscope(upstream: ScriptedUpstream) -> None:
    """The stand-in speaks the wire the SDK expects (task, polls, SUCCEEDED / FAILED, 401), and our tool
    sends the request the SDK sends for the original tool's arguments."""
    import dashscope
    from dashscope import ImageSynthesis

    saved = dashscope.base_http_api_url
    dashscope.base_http_api_url = upstream.dashscope_url
    upstream.image_key = "sk-sdk"
    try:
        call = {"model": "wanx-v1", "prompt": "多啦A梦", "n": 1, "size": "1024*1024", "steps": 10}
        done = ImageSynthesis.call(**call, extra_input={"lora_index": "L"}, api_key="sk-sdk")
        assert done.status_code == 200 and done.output.task_status == "SUCCEEDED"
        assert done.output.results[0].url == upstream.image_url(done.output.task_id)
        sdk_body = submits(upstream)[0]["body"]
        denied = ImageSynthesis.async_call(**call, api_key="sk-other")  # call() raises on it
        assert (denied.status_code, denied.code, denied.message) == (
            401,
            "InvalidApiKey",
            "Invalid API-key provided.",
        )
        upstream.image_failure = ("InternalError", "scripted failure")
        failed = ImageSynthesis.call(**call, api_key="sk-sdk")
        assert failed.output.task_status == "FAILED"
        assert (failed.output.code, failed.output.message) == ("InternalError", "scripted failure")
    finally:
        dashscope.base_http_api_url = saved
    upstream.image_failure = None
    tool = load_tool("image_gen", FAST)
    env = {"DASHSCOPE_HTTP_BASE_URL": upstream.dashscope_url}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        asyncio.run(
            tool.call(
                {"text": "多啦A梦", "resolution": "1024*1024", "lora_index": "L"}, dashscope_api_key="sk-sdk"
            )
        )
    assert submits(upstream)[-1]["body"] == sdk_body


# -- as a node through the manager ----------------------------------------------------------------------------
@pytest.fixture
def image_manager(manager_factory, upstream: ScriptedUpstream, tmp_path: Path) -> Iterator[ServiceProcess]:
    """A manager on the process runtime: Docker's nodes (network none or bridge) cannot reach the host's
    loopback, where the stand-in listens; process nodes can. The operator configured DashScope's URL and a
    key of its own, which callers' nodes must not get."""
    manager = manager_factory(
        MSAGENT_RUNTIME="process",
        MSAGENT_NODE_PORT_BASE="23100",
        MSAGENT_NODE_PORT_MAX="23149",
        MSAGENT_DATA_DIR=str(tmp_path / "manager-data"),
        DASHSCOPE_HTTP_BASE_URL=upstream.dashscope_url,
        DASHSCOPE_API_KEY="sk-operator-secret",
    )
    yield manager
    for tenant in TENANTS:  # process nodes outlive their manager: remove them
        post(manager, "/remove_tool", tool_name="image_gen", tenant_id=tenant)


def post(manager: ServiceProcess, path: str, **body: Any) -> requests.Response:
    return requests.post(manager.url + path, json=body, timeout=90)


def start_node(manager: ServiceProcess, tenant: str, cfg: dict[str, Any]) -> None:
    reply = post(manager, "/create_tool_service", tool_name="image_gen", tenant_id=tenant, tool_cfg=cfg)
    assert reply.status_code == 200, reply.text

    def status() -> str:
        answer = post(manager, "/check_tool_service_status", tool_name="image_gen", tenant_id=tenant)
        return answer.json()["output"]["status"] if answer.status_code == 200 else ""

    assert (
        wait_for(lambda: status() in ("running", "failed") and status(), 90, what="image_gen node")
        == "running"
    )


def execute(manager: ServiceProcess, tenant: str, params: dict[str, Any], **kwargs: Any) -> requests.Response:
    return post(
        manager,
        "/execute_tool",
        tool_name="image_gen",
        tenant_id=tenant,
        params=json.dumps(params, ensure_ascii=False),
        kwargs=kwargs,
    )


def test_image_gen_as_a_node_takes_the_key_as_the_originals_agents_pass_it(
    image_manager: ServiceProcess, upstream: ScriptedUpstream, tmp_path: Path
) -> None:
    """Through the manager's execute_tool: the key in `kwargs` (the original's RolePlay) or in tool_cfg;
    bad arguments and DashScope's refusals are tool errors in the manager's envelope, never a 500; no key
    appears in the manager's or the node's logs."""
    manager = image_manager
    upstream.image_key = "sk-kwargs-1234"
    params = {"text": "创建一个多啦A梦", "resolution": "1024*1024"}
    start_node(manager, "alice", {})
    reply = execute(manager, "alice", params, dashscope_api_key="sk-kwargs-1234", is_remote=True)
    assert reply.status_code == 200, reply.text
    result = reply.json()["output"]
    assert result == f"![IMAGEGEN]({upstream.image_url(task_of(result))})"
    assert {bearer(r) for r in upstream.image_requests} == {"Bearer sk-kwargs-1234"}
    assert submits(upstream)[0]["body"]["input"]["prompt"] == "创建一个多啦A梦"

    upstream.image_key = "sk-cfg-5678"
    start_node(manager, "bob", {"dashscope_api_key": "sk-cfg-5678", "poll_interval": 0.1})
    reply = execute(manager, "bob", {"text": "猫", "resolution": "1280*720"})
    assert reply.status_code == 200, reply.text
    assert submits(upstream)[-1]["body"]["parameters"]["size"] == "1280*720"
    assert bearer(upstream.image_requests[-1]) == "Bearer sk-cfg-5678"

    sent = len(upstream.image_requests)
    for tenant, call, kwargs, message in (
        ("bob", {"text": "猫", "resolution": "512*512"}, {}, "resolution must be one of"),
        ("bob", {"text": "猫"}, {}, "missing required parameter"),
        (
            "bob",
            {"text": "猫", "resolution": "1024*1024"},
            {"dashscope_api_key": "sk-wrong-9999"},
            "InvalidApiKey",
        ),
        # the operator's own DASHSCOPE_API_KEY stays with the manager: a node without a key has none
        ("alice", params, {}, "no DashScope API key"),
    ):
        reply = execute(manager, tenant, call, **kwargs)
        assert reply.status_code == 400, reply.text
        body = reply.json()
        assert body["request_id"] and message in body["message"], body
    assert all(bearer(r) != "Bearer sk-operator-secret" for r in upstream.image_requests[sent:])

    logs = [manager.log_path, *(tmp_path / "manager-data" / "nodes").glob("*.log")]
    assert len(logs) >= 3  # the manager's and both nodes'
    text = "\n".join(path.read_text(errors="replace") for path in logs)
    assert "image_gen" in text
    for key in ("sk-kwargs-1234", "sk-cfg-5678", "sk-wrong-9999", "sk-operator-secret"):
        assert key not in text


def test_the_operators_key_never_goes_to_a_base_url_the_caller_chose(
    assistant_factory, upstream: ScriptedUpstream
) -> None:
    """The review's attack: an agent request names image_gen with its own tool_cfg.base_url; the tool runs
    in the assistant, where the operator's DASHSCOPE_API_KEY is. That key must not travel there."""
    assistant = assistant_factory(DASHSCOPE_API_KEY="sk-OPERATOR-SECRET", MSAGENT_KNOWLEDGE="false")
    upstream.script = [
        'Action: image_gen\nAction Input: {"text": "a cat", "resolution": "1024*1024"}',
        "Done.",
    ]
    attacker = upstream.dashscope_url + "/"  # any URL the caller names (loopback is allowed on loopback)
    reply = requests.post(
        assistant.url + "/v1/assistants/lite",
        json={"llm_config": {"model": "m", "model_server": "openai", "api_key": "k"},
              "agent_config": {"tools": ["image_gen"], "tool_cfg": {"image_gen": {"base_url": attacker}}},
              "messages": [{"role": "user", "content": "draw a cat"}]},
        timeout=120,
    )  # fmt: skip
    assert reply.status_code == 200, reply.text
    assert all("OPERATOR-SECRET" not in bearer(r) for r in upstream.image_requests)
    assert upstream.image_requests == []  # without a key of the caller's own, nothing was sent at all
    assert "no DashScope API key" in reply.json()["output"]["response"]
