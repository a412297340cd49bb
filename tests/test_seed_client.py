"""The original servers' own client, modelscope-agent 0.7.2 from PyPI (its own environment), unmodified,
against our real manager, Docker nodes and assistant: what its users run today keeps working."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap

from .helpers import ServiceProcess


def run_seed(python: str, code: str, timeout: float = 300, **env: str) -> dict:
    """Runs `code` with the original's client; the code prints one JSON line last, which is returned."""
    done = subprocess.run(
        [python, "-c", textwrap.dedent(code)],
        env={**os.environ, "PYTHONPATH": "", **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd="/tmp",
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


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
