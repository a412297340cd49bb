"""compose.yaml: valid for a compose tool (Debian's docker-compose, installed by .ci/run), and `up` runs the
whole stack."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path

import openai
import pytest
import requests

from .helpers import BuiltImage, free_port, wait_for
from .host_images import build_redis_image
from .upstreams import ScriptedUpstream

ADMIN = "compose-admin-key-0123456789"
TIME_TOOL = {"type": "function", "function": {"name": "get_time", "description": "Current time",
             "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]}}}  # fmt: skip

ROOT = Path(__file__).resolve().parents[1]


def compose(
    *args: str, cwd: Path = ROOT, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("docker-compose")
    if tool is None:
        pytest.fail("docker-compose is not installed (.ci/run installs it)")
    return subprocess.run(
        [tool, "-f", "compose.yaml", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_compose_file_is_valid_with_its_services() -> None:
    checked = compose("config", "-q")
    assert checked.returncode == 0, checked.stderr
    assert set(compose("config", "--services").stdout.split()) == {"redis", "manager", "assistant", "qdrant"}
    rendered = compose("config").stdout
    qdrant = rendered.split("  qdrant:", 1)[1]
    assert "profiles:\n    - qdrant" in qdrant  # the Qdrant server starts only with --profile qdrant
    assert "/var/run/docker.sock:/var/run/docker.sock" in rendered and "--appendonly" in rendered


def test_the_validation_rejects_a_broken_file(tmp_path: Path) -> None:
    broken = (ROOT / "compose.yaml").read_text().replace("depends_on:", "depends_onn:", 1)
    (tmp_path / "compose.yaml").write_text(broken)
    result = compose("config", "-q", cwd=tmp_path)
    assert result.returncode != 0 and "depends_onn" in result.stderr


def test_compose_up_runs_the_whole_stack(
    services_image: BuiltImage, node_image: str, namespace: str, upstream: ScriptedUpstream
) -> None:
    """`docker compose up` with the images built here (CI reaches no registry): Redis, the manager creating
    node containers through the Docker socket, the assistant answering the openai SDK and running an agent
    whose tool lives in a node."""
    redis_image = "msagent-srv-redis:test"
    asyncio.run(build_redis_image(redis_image))
    manager_port, assistant_port = free_port(), free_port()
    env = {
        **os.environ,
        "MSAGENT_IMAGE": services_image.tag,
        "REDIS_IMAGE": redis_image,
        "REDIS_PORT": str(free_port()),
        "MSAGENT_MANAGER_PORT": str(manager_port),
        "MSAGENT_ASSISTANT_PORT": str(assistant_port),
        "MSAGENT_NODE_IMAGE": node_image,
        "MSAGENT_NAMESPACE": namespace,
        "MSAGENT_ADMIN_KEY": ADMIN,
        "MSAGENT_REDIS_PASSWORD": "compose-redis-password",  # required: compose's Redis is never open
        "MODEL_SERVER": "openai",
        "OPENAI_BASE_URL": upstream.openai_url,
        "OPENAI_API_KEY": "sk-upstream",
    }
    project = ["-p", f"msagent-{namespace}"]
    try:
        up = compose(*project, "up", "-d", "--no-build", env=env, timeout=300)
        assert up.returncode == 0, up.stderr[-3000:]
        assistant = f"http://127.0.0.1:{assistant_port}"
        wait_for(lambda: _answers(assistant + "/health"), 120, what="the composed assistant")

        client = openai.OpenAI(base_url=assistant + "/v1", api_key=ADMIN)  # beyond loopback: keys are on
        upstream.script = ['Action: get_time\nAction Input: {"zone": "UTC"}']
        reply = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "time?"}], tools=[TIME_TOOL]
        )
        assert reply.choices[0].message.tool_calls[0].function.name == "get_time"
        assert upstream.headers[-1]["Authorization"] == "Bearer sk-upstream"

        upstream.script = ['Action: calculator\nAction Input: {"expression": "6*7"}', "It is 42."]
        agent = requests.post(
            assistant + "/v1/assistants/lite",
            headers={"Authorization": f"Bearer {ADMIN}"},
            timeout=120,
            json={"llm_config": {"model": "m"}, "use_tool_api": True, "tenant_id": "composed",
                  "agent_config": {"tools": ["calculator"]}, "messages": [{"role": "user", "content": "6*7?"}]},
        )  # fmt: skip
        assert agent.status_code == 200, agent.text
        assert agent.json()["output"]["answer"] == "It is 42."
        manager = f"http://127.0.0.1:{manager_port}"
        anonymous = requests.get(manager + "/tools", params={"tenant_id": "composed"}, timeout=30)
        assert anonymous.status_code == 401  # the composed manager requires keys even on loopback
        tools = requests.get(
            manager + "/tools",
            params={"tenant_id": "composed"},
            headers={"Authorization": f"Bearer {ADMIN}"},
            timeout=30,
        ).json()["output"]["tools"]
        assert tools == {"calculator_composed": "running"}  # a node container the composed manager made
    finally:
        logs = compose(*project, "logs", "--no-color", env=env, timeout=60).stdout
        print(logs[-6000:])  # shown when the test fails
        down = compose(*project, "down", "-v", env=env, timeout=120)
        assert down.returncode == 0, down.stderr[-2000:] + logs[-3000:]


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=3).status_code == 200
    except requests.RequestException:
        return False
