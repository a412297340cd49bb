"""Faults injected into a running stack: a node killed mid-call, the manager killed while it creates a node,
Redis restarted, a model server that breaks or talks nonsense, clients that hang up mid-stream. Each must end
in a clear error or a full recovery, with nothing lost or leaked."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
import threading
import time

import aiodocker
import openai
import pytest
import redis
import requests

from msagent_srv.manager.nodes import port_owner
from msagent_srv.manager.runtime.base import LABEL_NAMESPACE
from msagent_srv.store import Store, ToolInstance
from msagent_srv.store.embedded import EmbeddedRedis, free_port

from .helpers import ENVELOPE_KEYS, ServiceProcess, wait_for
from .upstreams import ScriptedUpstream

ASK = [{"role": "user", "content": "talk to me"}]


def post(service: ServiceProcess, path: str, **body: object) -> requests.Response:
    return requests.post(service.url + path, json=body, timeout=60)


def status_of(manager: ServiceProcess, tool: str, tenant: str) -> str:
    return post(manager, "/check_tool_service_status", tool_name=tool, tenant_id=tenant).json()["output"][
        "status"
    ]


def wait_running(manager: ServiceProcess, tool: str, tenant: str) -> None:
    wait_for(lambda: status_of(manager, tool, tenant) in ("running", "failed"), 60, what=f"{tool} to start")
    assert status_of(manager, tool, tenant) == "running", manager.log()


def execute(manager: ServiceProcess, tool: str, tenant: str, **params: object) -> requests.Response:
    return post(manager, "/execute_tool", tool_name=tool, tenant_id=tenant, params=params)


def in_progress(service: ServiceProcess) -> float:
    """Requests the service is answering now, not counting this scrape."""
    text = requests.get(service.url + "/metrics", timeout=10).text
    found = re.search(r"^msagent_http_requests_in_progress\{[^}]*\} (\S+)$", text, re.M)
    assert found, "in-progress gauge missing"
    return float(found.group(1)) - 1


def test_node_killed_mid_call_answers_clearly_and_can_be_recreated(manager: ServiceProcess) -> None:
    post(manager, "/create_tool_service", tool_name="code_interpreter", tenant_id="midcall")
    wait_running(manager, "code_interpreter", "midcall")
    record = json.loads(
        redis.Redis.from_url(manager.env["REDIS_URL"]).hget(
            "msagent:tenant:midcall:tools", "code_interpreter"
        )
    )

    def kill_soon() -> None:
        time.sleep(1.0)

        async def kill() -> None:
            async with aiodocker.Docker() as docker:
                await docker.containers.container(record["container_id"]).kill()

        asyncio.run(kill())

    killer = threading.Thread(target=kill_soon)
    killer.start()
    started = time.monotonic()
    reply = execute(
        manager, "code_interpreter", "midcall", code="import time\ntime.sleep(20)\nprint('never')"
    )
    killer.join()
    assert time.monotonic() - started < 10  # not the 20 s of the call, nor a hang
    assert reply.status_code == 502 and "unreachable" in reply.json()["message"], reply.text
    assert status_of(manager, "code_interpreter", "midcall") in ("failed", "exited")  # the node is marked
    post(manager, "/create_tool_service", tool_name="code_interpreter", tenant_id="midcall")
    wait_running(manager, "code_interpreter", "midcall")
    again = execute(manager, "code_interpreter", "midcall", code="print(7)")
    assert again.status_code == 200 and again.json()["output"] == "7\n"


async def labelled_containers(namespace: str) -> dict[str, bool]:
    """Our containers in this namespace: id -> running."""
    async with aiodocker.Docker() as docker:
        found = await docker.containers.list(all=True, filters={"label": [f"{LABEL_NAMESPACE}={namespace}"]})
        return {c.id: c["State"] == "running" for c in found}


@pytest.mark.parametrize("delay", [0.0, 0.15, 0.4], ids=["at-once", "mid-start", "late"])
def test_manager_killed_during_creation_leaves_no_orphans_or_leaked_ports(
    manager_factory, node_image: str, namespace: str, redis_url: str, delay: float
) -> None:
    first = manager_factory(MSAGENT_RUNTIME="docker")
    assert post(first, "/create_tool_service", tool_name="calculator", tenant_id="crash").status_code == 200
    time.sleep(delay)
    first.stop(signal.SIGKILL)  # no shutdown code runs

    second = manager_factory(MSAGENT_RUNTIME="docker")
    store = redis.Redis.from_url(redis_url, decode_responses=True)
    records = {name: json.loads(raw) for name, raw in store.hgetall("msagent:tenant:crash:tools").items()}
    live = {r["container_id"] for r in records.values() if r["status"] in ("pending", "running")}
    containers = asyncio.run(labelled_containers(namespace))
    assert {cid for cid, running in containers.items() if running} <= live  # no orphan runs
    held = {r["port"] for r in records.values() if r["status"] in ("pending", "running")}
    assert {int(p) for p in store.hgetall("msagent:ports:owners")} <= held  # no port leaked

    # whatever state the crash left, the tool can be had again
    post(second, "/create_tool_service", tool_name="calculator", tenant_id="crash")
    wait_running(second, "calculator", "crash")
    reply = execute(second, "calculator", "crash", expression="2+3")
    assert reply.json()["output"] == "5"
    assert len(store.hgetall("msagent:ports:owners")) == 1


def test_a_port_allocated_just_before_a_crash_is_reclaimed(manager_factory, redis_url: str) -> None:
    async def leave_crash_state() -> int:
        # what a manager leaves when it dies between allocating a port and recording it
        store = Store.open(redis_url, port_range=(22700, 22799))
        try:
            await store.tools.create(ToolInstance(tool_name="calculator", tenant_id="window"))
            return await store.ports.allocate(port_owner("window", "calculator"))
        finally:
            await store.close()

    port = asyncio.run(leave_crash_state())
    owners = redis.Redis.from_url(redis_url, decode_responses=True)
    assert owners.hget("msagent:ports:owners", str(port)) == "window/calculator"
    manager = manager_factory(MSAGENT_RUNTIME="process")
    assert owners.hget("msagent:ports:owners", str(port)) is None  # reclaimed on start
    assert status_of(manager, "calculator", "window") == "exited"


def test_redis_restart_keeps_registries_and_sessions(
    manager_factory, assistant_factory, upstream: ScriptedUpstream, tmp_path
) -> None:
    port = free_port()
    server = EmbeddedRedis(tmp_path / "aof", port=port, appendonly=True).start()
    manager: ServiceProcess | None = None
    try:
        env = {"REDIS_URL": server.url}
        manager = manager_factory(
            MSAGENT_RUNTIME="process", MSAGENT_NODE_PORT_BASE="22600", MSAGENT_NODE_PORT_MAX="22699", **env
        )
        assistant = assistant_factory(MSAGENT_KNOWLEDGE="false", **env)
        post(manager, "/create_tool_service", tool_name="calculator", tenant_id="durable")
        wait_running(manager, "calculator", "durable")
        upstream.script = ["Noted: your locker is 42."]
        lite = {"llm_config": {"model": "m", "api_key": "k"}, "uuid_str": "durable-session"}
        first = post(
            assistant, "/v1/assistants/lite", **lite, messages=[{"role": "user", "content": "Locker 42."}]
        )
        assert first.status_code == 200

        server.stop()
        down = post(manager, "/check_tool_service_status", tool_name="calculator", tenant_id="durable")
        assert down.status_code == 503 and set(down.json()) == ENVELOPE_KEYS
        server = EmbeddedRedis(tmp_path / "aof", port=port, appendonly=True).start()

        assert requests.get(manager.url + "/tools", params={"tenant_id": "durable"}, timeout=30).json()[
            "output"
        ]["tools"] == {"calculator_durable": "running"}
        reply = execute(manager, "calculator", "durable", expression="6*7")
        assert reply.json()["output"] == "42"
        upstream.script = ["It is 42."]
        second = post(
            assistant, "/v1/assistants/lite", **lite, messages=[{"role": "user", "content": "Locker?"}]
        )
        assert second.status_code == 200
        history = [m["content"] for m in upstream.requests[-1]["messages"]]
        assert "Locker 42." in history and "Noted: your locker is 42." in history  # the session survived
    finally:
        if manager is not None:  # its node is a local process that nothing else would stop
            with contextlib.suppress(requests.RequestException):
                post(manager, "/remove_tool", tool_name="calculator", tenant_id="durable")
        server.stop()


def test_broken_or_nonsense_upstreams_end_in_clean_errors(
    assistant: ServiceProcess, upstream: ScriptedUpstream
) -> None:
    client = openai.OpenAI(base_url=assistant.url + "/v1", api_key="k", max_retries=0)
    upstream.script = ["word " * 100]
    upstream.break_after_chunks = 3
    received = []
    with pytest.raises(openai.APIError, match="upstream"):
        for chunk in client.chat.completions.create(model="m", messages=ASK, stream=True):
            received += [c.delta.content for c in chunk.choices if c.delta.content]
    assert "".join(received).startswith("word word")  # what came before the break was delivered

    upstream.break_after_chunks, upstream.garbage = None, True
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="m", messages=ASK)
    assert caught.value.status_code == 502 and caught.value.body["code"] == "upstream_bad_reply"
    with pytest.raises(openai.APIStatusError) as streamed:
        list(client.chat.completions.create(model="m", messages=ASK, stream=True))
    assert streamed.value.status_code == 502
    assert in_progress(assistant) == 0 and "Traceback" not in assistant.log()


def test_clients_hanging_up_mid_stream_leave_nothing_running(
    assistant: ServiceProcess, upstream: ScriptedUpstream
) -> None:
    upstream.script = lambda _body: "word " * 200  # type: ignore[assignment]
    upstream.chunks, upstream.chunk_delay = 100, 0.05  # five seconds per stream once released
    upstream.hold_streams = True  # every stream stays open until all eight are known to be in progress
    streams = []
    try:
        for _ in range(8):
            reply = requests.post(
                assistant.url + "/v1/chat/completions",
                stream=True,
                timeout=60,
                headers={"Authorization": "Bearer k"},
                json={"model": "m", "stream": True, "messages": ASK},
            )
            assert next(reply.iter_lines()).startswith(b"data: ")
            streams.append(reply)
        assert in_progress(assistant) == 8
    finally:
        for reply in streams:
            reply.close()
        upstream.hold_streams = False  # the assistant sees its callers gone at its next write
    wait_for(lambda: in_progress(assistant) == 0, 60, what="the abandoned streams to end")
    wait_for(lambda: upstream.disconnects == 8, 60, what="every upstream stream to be closed")
    assert "Traceback" not in assistant.log()  # a caller hanging up is not a server error


FORK_BOMB = """
import os, time
children = []
try:
    while len(children) < 1000:
        pid = os.fork()
        if pid == 0:
            time.sleep(5)
            os._exit(0)
        children.append(pid)
except OSError as exc:
    print("refused after", len(children), "errno", exc.errno)
for pid in children:
    os.kill(pid, 9)
    os.waitpid(pid, 0)
"""
DISK_FILLER = """
try:
    with open("/tmp/filler", "wb") as out:
        for _ in range(200):
            out.write(b"x" * (1 << 20))
    print("wrote 200 MB")
except OSError as exc:
    print("refused errno", exc.errno)
"""


def test_a_tool_cannot_exhaust_pids_or_disk(manager: ServiceProcess) -> None:
    post(manager, "/create_tool_service", tool_name="code_interpreter", tenant_id="greedy",
         tool_cfg={"timeout": 30})  # fmt: skip
    wait_running(manager, "code_interpreter", "greedy")
    forks = execute(manager, "code_interpreter", "greedy", code=FORK_BOMB).json()["output"]
    refused_after = int(forks.split()[2])
    assert "errno 11" in forks and refused_after < 128  # EAGAIN at the container's pids limit
    disk = execute(manager, "code_interpreter", "greedy", code=DISK_FILLER).json()["output"]
    assert disk.strip() == "refused errno 28"  # ENOSPC: /tmp is a 64 MB tmpfs, the root is read-only
    assert (
        execute(manager, "code_interpreter", "greedy", code="print('still here')").json()["output"]
        == "still here\n"
    )
