"""`msagent-srv build-image` from the repo's Dockerfile, on a local base image (no registry needed)."""

from __future__ import annotations

import asyncio
import subprocess
import sys

from msagent_srv.node.image import build_from_host

from .helpers import ServiceProcess
from .test_manager import RENEW, create_running, post

BASE = "msagent-srv-base:test"
FROM_DOCKERFILE = "msagent-srv-node:dockerfile-test"


def test_dockerfile_build_on_a_local_base_image_serves_tools(manager: ServiceProcess) -> None:
    # a base image with Python and pip, made from this host (a real deployment would use python:3.11-slim)
    asyncio.run(build_from_host(BASE, extra=["pip"], progress=lambda _line: None))
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "msagent_srv.cli",
            "build-image",
            "--base-image",
            BASE,
            "--tag",
            FROM_DOCKERFILE,
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    assert "Step" in build.stdout and "pip" in build.stdout  # progress is shown
    assert f"built {FROM_DOCKERFILE}" in build.stdout
    reply = post(
        manager, "/create_tool_service", tool_name="RenewInstance", tenant_id="df", tool_image=FROM_DOCKERFILE
    )
    assert reply.status_code == 200
    create_running(manager, "RenewInstance", "df")
    params = {"instance_id": 123, "period": "mon"}
    assert (
        post(manager, "/execute_tool", tool_name="RenewInstance", tenant_id="df", params=params).json()[
            "output"
        ]
        == RENEW
    )
