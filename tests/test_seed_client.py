"""The original servers' own client, modelscope-agent 0.7.2 from PyPI (its own environment), unmodified,
against our real manager, Docker nodes and assistant: what its users run today keeps working."""

from __future__ import annotations

from pathlib import Path

import requests

from .helpers import ServiceProcess, run_seed
from .upstreams import ScriptedUpstream


def test_the_originals_tool_service_proxy_runs_renew_instance(
    seed_client: str, manager: ServiceProcess
) -> None:
    """What the original's tests/tools/test_service_proxy.py does, with its client."""
    result = run_seed(
        seed_client,
        """
        import json
        from modelscope_agent.tools.base import ToolServiceProxy
        tool_service = ToolServiceProxy('RenewInstance', {'test': 'xxx'})
        result = tool_service.call("{\\"instance_id\\": 123, \\"period\\": \\"mon\\"}")
        print(json.dumps({"result": result, "name": tool_service.name}))
        """,
        TOOL_MANAGER_SERVICE_URL=manager.url,
    )
    assert result["name"] == "RenewInstance"
    assert result["result"] == "已完成ECS实例ID为123的续费,续费时长mon月"


def test_the_originals_role_play_draws_with_image_gen_through_our_manager(
    seed_client: str, manager_factory, upstream: ScriptedUpstream, tmp_path: Path
) -> None:
    """The original's tests/agents/test_agent_with_api_tool.py, with its client: RolePlay with
    `function_list=['image_gen']` and `use_tool_api=True` runs the tool as a node of our manager, passing the
    key as `dashscope_api_key`; the scripted DashScope plans the call (ReAct), draws, and answers. The
    manager is on the process runtime: Docker's nodes cannot reach the stand-in on the host's loopback."""
    manager = manager_factory(
        MSAGENT_RUNTIME="process",
        MSAGENT_NODE_PORT_BASE="23150",
        MSAGENT_NODE_PORT_MAX="23199",
        MSAGENT_DATA_DIR=str(tmp_path / "manager-data"),
        DASHSCOPE_HTTP_BASE_URL=upstream.dashscope_url,
    )
    upstream.image_key = "sk-image-key-for-tools"
    action = 'Action: image_gen\nAction Input: {"text": "多啦A梦", "resolution": "1024*1024"}\n'

    def model(body: dict) -> str:
        """The first turn plans the tool call; the next one answers with the image it was shown."""
        last = body["input"]["messages"][-1]["content"]
        if action not in last:  # RolePlay appends the planned call and its observation to the query
            return f"Thought: 用户想要一张多啦A梦的图片，我来调用图像生成工具。\n{action}Observation: "
        image = last.rsplit("Observation: <result>", 1)[1].split("</result>", 1)[0]
        return f" 这是为你画的多啦A梦：{image}"

    upstream.script = model
    try:
        result = run_seed(
            seed_client,
            """
            import json, os
            from modelscope_agent.agents.role_play import RolePlay
            llm_config = {'model': 'qwen-turbo', 'model_server': 'dashscope'}
            bot = RolePlay(function_list=['image_gen'], llm=llm_config, use_tool_api=True)
            response = bot.run('创建一个多啦A梦', dashscope_api_key=os.environ['IMAGE_KEY'])
            text = ''
            for chunk in response:
                text += chunk
            print(json.dumps({"text": text}, ensure_ascii=False))
            """,
            TOOL_MANAGER_SERVICE_URL=manager.url,
            DASHSCOPE_HTTP_BASE_URL=upstream.dashscope_url,
            DASHSCOPE_API_KEY="sk-model-key",
            IMAGE_KEY="sk-image-key-for-tools",
        )
    finally:  # process nodes outlive their manager
        requests.post(
            manager.url + "/remove_tool", json={"tool_name": "image_gen", "tenant_id": "default"}, timeout=60
        )
    text = result["text"]
    assert "Answer:" in text and "Observation:" in text and "![IMAGEGEN]" in text  # the original's asserts
    image = next(r for r in upstream.image_requests if r["method"] == "POST")
    url = upstream.image_url(
        next(r for r in upstream.image_requests if r["method"] == "GET")["path"].split("/")[-1]
    )
    assert f"Observation: <result>![IMAGEGEN]({url})</result>\nAnswer:" in text
    assert text.endswith(f"这是为你画的多啦A梦：![IMAGEGEN]({url})")
    assert (
        image["body"]["input"]["prompt"] == "多啦A梦" and image["body"]["parameters"]["size"] == "1024*1024"
    )
    assert {r["headers"]["Authorization"] for r in upstream.image_requests} == {
        "Bearer sk-image-key-for-tools"
    }
    system = upstream.requests[0]["input"]["messages"][0]["content"]
    assert "image_gen" in system and "AI绘画" in system  # the tool's info, as our manager reported it
    assert len(upstream.requests) == 2
