"""The client library against the real manager with real Docker nodes."""

from __future__ import annotations

import asyncio

import pytest

from msagent_srv.client import (
    Agent,
    AsyncToolServiceProxy,
    InvalidRequest,
    ManagerClient,
    ManagerUnreachable,
    ToolExecutionError,
    ToolFailedToStart,
    ToolNotFound,
    ToolServiceProxy,
)

from .helpers import ServiceProcess, free_port
from .upstreams import ScriptedUpstream

RENEW = "已完成ECS实例ID为123的续费,续费时长mon月"


def test_proxy_runs_a_remote_tool_like_a_local_one(
    manager: ServiceProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOOL_MANAGER_SERVICE_URL", manager.url)  # read when the proxy is made
    proxy = ToolServiceProxy("RenewInstance", {})
    assert proxy.call('{"instance_id": 123, "period": "mon"}') == RENEW
    assert proxy.call({"instance_id": 123, "period": "mon"}) == RENEW
    assert proxy.name == "RenewInstance" and proxy.description == "续费一台包年包月ECS实例"
    assert {p["name"] for p in proxy.parameters} == {"instance_id", "period"}
    assert proxy.node_name == "RenewInstance_default"
    with pytest.raises(ToolExecutionError, match="period"):
        proxy.call({"instance_id": 1})
    proxy.remove()
    assert ManagerClient(manager.url).status("RenewInstance").status == "exited"  # as the original answers
    with pytest.raises(ToolNotFound):
        ManagerClient(manager.url).status("never_created")


def test_async_twin(manager: ServiceProcess) -> None:
    async def run() -> tuple[str, str]:
        proxy = await AsyncToolServiceProxy.create(
            "calculator", {}, tenant_id="async", manager_url=manager.url
        )
        try:
            return proxy.name, await proxy.call({"expression": "2 + 3 * 4"})
        finally:
            await proxy.remove()
            await proxy.close()

    assert asyncio.run(run()) == ("calculator", "14")


def test_a_node_that_fails_raises_with_the_reason(manager: ServiceProcess) -> None:
    with pytest.raises(InvalidRequest, match="unknown tool 'not_a_tool'"):  # refused before a node is made
        ToolServiceProxy("not_a_tool", {}, manager_url=manager.url)
    with pytest.raises(ToolFailedToStart, match="no-such-image"):  # a node that cannot start says why
        ToolServiceProxy("calculator", {}, manager_url=manager.url, image="msagent-srv-node:no-such-image")

    async def run() -> None:
        await AsyncToolServiceProxy.create(
            "calculator", {}, tenant_id="b", manager_url=manager.url, image="msagent-srv-node:no-such-image"
        )

    with pytest.raises(ToolFailedToStart):
        asyncio.run(run())


def test_unreachable_manager_is_a_typed_error() -> None:
    with pytest.raises(ManagerUnreachable):
        ToolServiceProxy("calculator", {}, manager_url=f"http://127.0.0.1:{free_port()}")


def test_agent_calls_code_interpreter_remotely(
    manager: ServiceProcess, assistant: ServiceProcess, upstream: ScriptedUpstream
) -> None:
    upstream.reset(
        [
            'I will compute it.\nAction: code_interpreter\nAction Input: {"code": "print(6 * 7)"}',
            "The answer is 42.",
        ]
    )
    agent = Agent(
        ["code_interpreter"],
        {"model": "m", "api_base": assistant.url + "/v1", "api_key": "k"},
        "You are a careful assistant.",
        use_tool_api=True,
        manager_url=manager.url,
        tenant_id="agent",
    )
    try:
        output = "".join(agent.run("What is 6 times 7?"))
    finally:
        agent.close()
    assert output.startswith("I will compute it.")
    assert 'Action: code_interpreter\nAction Input: {"code": "print(6 * 7)"}' in output
    assert "Observation: <result>42\n</result>" in output
    assert output.endswith("Answer: The answer is 42.")
    # the model saw the tool's result on its second turn
    second = upstream.requests[1]["messages"]
    assert (
        second[-1]["role"] == "user"
        and second[-1]["content"].startswith("Observation:")
        and "42" in second[-1]["content"]
    )
    assert "careful assistant" in second[0]["content"]
    assert ManagerClient(manager.url).list("agent") == {"code_interpreter_agent": "running"}


def test_agents_keep_their_own_tools(
    manager: ServiceProcess, assistant: ServiceProcess, upstream: ScriptedUpstream
) -> None:
    llm = {"model": "m", "api_base": assistant.url + "/v1", "api_key": "k"}
    local = Agent(["code_interpreter"], llm, tool_cfg={"code_interpreter": {"timeout": 1}})
    other = Agent(["code_interpreter"], llm, tool_cfg={"code_interpreter": {"timeout": 30}})
    assert local.tools["code_interpreter"] is not other.tools["code_interpreter"]
    assert (
        local.tools["code_interpreter"].cfg["timeout"] == 1
        and other.tools["code_interpreter"].cfg["timeout"] == 30
    )
    remote_a = Agent(["calculator"], llm, use_tool_api=True, manager_url=manager.url, tenant_id="team-a")
    remote_b = Agent(["calculator"], llm, use_tool_api=True, manager_url=manager.url, tenant_id="team-b")
    remote_a.tools["calculator"].remove()  # one agent's node going away leaves the other's running
    upstream.reset(['Action: calculator\nAction Input: {"expression": "1+1"}', "Two."])
    output = "".join(remote_b.run("1+1?"))
    assert "Observation: <result>2</result>\nAnswer: Two." in output and output.endswith("Answer: Two.")
    for agent in (local, other, remote_a, remote_b):
        agent.close()


def test_assistant_client_chat_agent_and_files(
    assistant: ServiceProcess, upstream: ScriptedUpstream, tmp_path
) -> None:
    from msagent_srv.client import AssistantClient, AssistantError

    client = AssistantClient(assistant.url, api_key="k")
    upstream.reset(["Hello from chat."])
    reply = client.chat.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content == "Hello from chat."

    upstream.reset(['Action: calculator\nAction Input: {"expression": "7*6"}', "It is 42."])
    llm = {"model": "m", "model_server": "openai", "api_key": "k"}
    output = client.assistants_lite(
        "7 times 6?", uuid_str="c1", llm_config=llm, agent_config={"tools": ["calculator"]}
    )
    assert output["answer"] == "It is 42." and output["tool_calls"][0]["name"] == "calculator"

    upstream.reset(['Action: calculator\nAction Input: {"expression": "2+2"}', "Four."])
    lines = list(
        client.assistants_lite(
            "2+2?", uuid_str="c2", llm_config=llm, stream=True, agent_config={"tools": ["calculator"]}
        )
    )
    assert "Observation: <result>4</result>" in lines and lines[-1] == "Answer: Four."

    note = tmp_path / "note.md"
    note.write_text("# Note\n\nThe password hint is 'blue whale'.")
    uploaded = client.upload_files("c3", [note])
    assert [f["name"] for f in uploaded["files"]] == ["note.md"]
    assert [f["name"] for f in client.list_files("c3")] == ["note.md"]
    client.delete_file("c3", "note.md")
    assert client.list_files("c3") == []
    with pytest.raises(AssistantError) as caught:
        client.upload_files("x" * 257, [note])
    assert caught.value.status == 400 and caught.value.code == "invalid_uuid_str"
    client.close()


def test_async_assistant_client(assistant: ServiceProcess, upstream: ScriptedUpstream, tmp_path) -> None:
    from msagent_srv.client import AsyncAssistantClient

    note = tmp_path / "a.txt"
    note.write_text("Async works.")

    async def run() -> tuple[str, list[str], list[str], str]:
        client = AsyncAssistantClient(assistant.url, api_key="k")
        try:
            upstream.reset(["chat ok", "lite ok", "streamed ok"])
            chat = await client.chat.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "x"}]
            )
            llm = {"model": "m", "model_server": "openai", "api_key": "k"}
            lite = await client.assistants_lite("x", uuid_str="a1", llm_config=llm)
            lines = [
                line
                async for line in await client.assistants_lite(
                    "x", uuid_str="a2", llm_config=llm, stream=True
                )
            ]
            uploaded = await client.upload_files("a3", [note])
            names = [f["name"] for f in await client.list_files("a3")]
            return chat.choices[0].message.content + "|" + lite["response"], lines, names, uploaded["status"]
        finally:
            await client.close()

    text, lines, names, status = asyncio.run(run())
    assert text == "chat ok|lite ok" and lines == ["streamed ok"] and names == ["a.txt"] and status == "ok"
