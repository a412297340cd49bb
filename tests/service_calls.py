"""Calls the tests make to our services as users do (requests over HTTP), shared by the test modules."""

from __future__ import annotations

import asyncio
import json

import aiodocker
import redis
import requests

from msagent_srv.store import keys

from .helpers import ServiceProcess, wait_for

RENEW = "已完成ECS实例ID为123的续费,续费时长mon月"


def post(manager: ServiceProcess, path: str, **body: object) -> requests.Response:
    return requests.post(manager.url + path, json=body, timeout=60)


def status_of(manager: ServiceProcess, tool: str, tenant: str = "default") -> str:
    reply = post(manager, "/check_tool_service_status", tool_name=tool, tenant_id=tenant)
    assert reply.status_code == 200, reply.text
    return reply.json()["output"]["status"]


def create_running(
    manager: ServiceProcess, tool: str, tenant: str = "default", cfg: dict | None = None
) -> None:
    reply = post(manager, "/create_tool_service", tool_name=tool, tenant_id=tenant, tool_cfg=cfg or {})
    assert reply.status_code == 200, reply.text
    wait_for(lambda: status_of(manager, tool, tenant) in ("running", "failed"), 120, what=f"{tool} to start")
    assert status_of(manager, tool, tenant) == "running", manager.log()


def inspect(container_id: str) -> dict:
    async def show() -> dict:
        async with aiodocker.Docker() as docker:
            return await docker.containers.container(container_id).show()

    return asyncio.run(show())


def renew(manager: ServiceProcess, tenant: str) -> object:
    """The output of one RenewInstance call through the manager."""
    params = {"instance_id": 123, "period": "mon"}
    return post(manager, "/execute_tool", tool_name="RenewInstance", tenant_id=tenant, params=params).json()[
        "output"
    ]


def record_of(redis_url: str, tenant: str, tool: str) -> dict:
    """The tool's registry record as the manager stored it."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        return json.loads(client.hget(keys.tenant_tools(tenant), tool))
    finally:
        client.close()


def upload(service: ServiceProcess, session: str, files: dict[str, bytes]) -> requests.Response:
    parts = [("files", (name, data)) for name, data in files.items()]
    return requests.post(service.url + "/v1/files", data={"uuid_str": session}, files=parts, timeout=60)


def listing(service: ServiceProcess, session: str) -> dict[str, dict]:
    reply = requests.get(service.url + "/v1/files", params={"uuid_str": session}, timeout=30)
    assert reply.status_code == 200, reply.text
    return {f["name"]: f for f in reply.json()["output"]["files"]}


def wait_indexed(service: ServiceProcess, session: str, names: list[str]) -> dict[str, dict]:
    def done() -> dict[str, dict] | None:
        files = listing(service, session)
        ready = all(files.get(n, {}).get("status") in ("indexed", "failed") for n in names)
        return files if ready else None

    files = wait_for(done, 180, interval=0.5, what="indexing")
    assert all(files[n]["status"] == "indexed" and files[n]["chunks"] > 0 for n in names), files
    return files
