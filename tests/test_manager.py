"""The tool manager with real Docker nodes, driven over HTTP with `requests` as users do."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import signal

import aiodocker
import pytest
import requests

from .helpers import ENVELOPE_KEYS, ServiceProcess, wait_for
from .service_calls import RENEW, create_running, inspect, post, record_of, renew, status_of


def test_full_lifecycle_for_two_tenants(manager: ServiceProcess) -> None:
    first = post(manager, "/create_tool_service", tool_name="RenewInstance", tenant_id="alice")
    assert first.status_code == 200
    body = first.json()
    assert body["request_id"] and body["output"] == {
        "tool_node_name": "RenewInstance_alice",
        "status": "pending",
    }
    post(manager, "/create_tool_service", tool_name="RenewInstance", tenant_id="bob")
    wait_for(lambda: status_of(manager, "RenewInstance", "alice") == "running", 60, what="alice's node")
    wait_for(lambda: status_of(manager, "RenewInstance", "bob") == "running", 60, what="bob's node")

    listing = requests.get(manager.url + "/tools", params={"tenant_id": "alice"}, timeout=10).json()
    assert listing["output"] == {"tools": {"RenewInstance_alice": "running"}}

    info = post(manager, "/tool_info", tool_name="RenewInstance", tenant_id="alice").json()["output"]
    assert info["name"] == "RenewInstance" and {p["name"] for p in info["parameters"]} == {
        "instance_id",
        "period",
    }

    params = json.dumps({"instance_id": 123, "period": "mon"})
    result = post(manager, "/execute_tool", tool_name="RenewInstance", tenant_id="alice", params=params)
    assert result.status_code == 200 and result.json()["output"] == RENEW
    as_dict = post(
        manager,
        "/execute_tool",
        tool_name="RenewInstance",
        tenant_id="bob",
        params={"instance_id": 7, "period": "3"},
    )
    assert as_dict.json()["output"] == "已完成ECS实例ID为7的续费,续费时长3月"

    # creating a running tool again is idempotent
    again = post(manager, "/create_tool_service", tool_name="RenewInstance", tenant_id="alice").json()
    assert again["output"]["status"] == "running"

    updated = post(
        manager, "/update_tool_service", tool_name="RenewInstance", tenant_id="alice", tool_cfg={"x": 1}
    )
    assert updated.json()["output"]["status"] == "pending"
    wait_for(lambda: status_of(manager, "RenewInstance", "alice") == "running", 60, what="updated node")
    assert (
        post(manager, "/execute_tool", tool_name="RenewInstance", tenant_id="alice", params=params).json()[
            "output"
        ]
        == RENEW
    )

    removed = post(manager, "/remove_tool", tool_name="RenewInstance", tenant_id="alice").json()
    assert removed["output"]["status"] == "exited"
    # as the original's: a removed tool answers exited (its record kept for a while), listed as exited
    gone = post(manager, "/check_tool_service_status", tool_name="RenewInstance", tenant_id="alice")
    assert gone.status_code == 200 and gone.json()["output"]["status"] == "exited"
    listed = requests.get(manager.url + "/tools", params={"tenant_id": "alice"}, timeout=30).json()
    assert listed["output"]["tools"] == {"RenewInstance_alice": "exited"}
    again = post(manager, "/remove_tool", tool_name="RenewInstance", tenant_id="alice")  # idempotent
    assert again.status_code == 200 and again.json()["output"]["status"] == "exited"
    # bob's node is untouched
    assert (
        post(manager, "/execute_tool", tool_name="RenewInstance", tenant_id="bob", params=params).json()[
            "output"
        ]
        == RENEW
    )


def test_legacy_query_parameters(manager: ServiceProcess) -> None:
    post(manager, "/create_tool_service", tool_name="calculator", tenant_id="legacy")
    wait_for(
        lambda: (
            requests.post(
                manager.url + "/check_tool_service_status",
                params={"tool_name": "calculator", "tenant_id": "legacy"},
                timeout=10,
            ).json()["output"]["status"]
            == "running"
        ),
        60,
        what="calculator",
    )
    removed = requests.post(
        manager.url + "/remove_tool", params={"tool_name": "calculator", "tenant_id": "legacy"}, timeout=30
    )
    assert removed.status_code == 200 and removed.json()["output"]["status"] == "exited"


def test_twenty_concurrent_creations_get_distinct_ports_and_all_run(
    manager: ServiceProcess, redis_url: str
) -> None:
    tenants = [f"tenant{i}" for i in range(20)]
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        replies = list(
            pool.map(
                lambda t: post(manager, "/create_tool_service", tool_name="calculator", tenant_id=t), tenants
            )
        )
    assert all(r.status_code == 200 for r in replies)
    wait_for(
        lambda: all(status_of(manager, "calculator", t) in ("running", "failed") for t in tenants),
        120,
        interval=0.5,
        what="20 nodes",
    )
    assert [status_of(manager, "calculator", t) for t in tenants] == ["running"] * 20, manager.log()
    ports = [record_of(redis_url, t, "calculator")["port"] for t in tenants]
    assert len(set(ports)) == 20
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        results = list(
            pool.map(
                lambda t: post(
                    manager,
                    "/execute_tool",
                    tool_name="calculator",
                    tenant_id=t,
                    params={"expression": "6*7"},
                ).json()["output"],
                tenants,
            )
        )
    assert results == ["42"] * 20


def test_containers_are_hardened(manager_factory, node_image: str, redis_url: str) -> None:
    # a published port to probe: the bridge network, which the operator must ask for (default: none)
    manager = manager_factory(MSAGENT_RUNTIME="docker", MSAGENT_NODE_NETWORK="bridge")
    create_running(manager, "calculator")
    record = record_of(redis_url, "default", "calculator")
    info = inspect(record["container_id"])
    host = info["HostConfig"]
    assert host["Init"] is True
    assert host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"]
    assert "no-new-privileges" in host["SecurityOpt"]
    assert host["Memory"] == 512 * 1024 * 1024 and host["PidsLimit"] == 128 and host["NanoCpus"] == 10**9
    assert "/tmp" in host["Tmpfs"]
    assert info["Config"]["User"] == "65534:65534"
    assert host["PortBindings"]["8000/tcp"][0]["HostIp"] == "127.0.0.1"
    labels = info["Config"]["Labels"]
    assert labels["io.msagent.tool"] == "calculator" and labels["io.msagent.port"] == str(record["port"])
    # the node refuses callers that are not its manager
    direct = requests.post(
        f"http://127.0.0.1:{record['port']}/execute_tool", json={"params": {"expression": "1"}}, timeout=10
    )
    assert direct.status_code == 401


def test_killed_container_is_detected_and_can_be_recreated(manager: ServiceProcess, redis_url: str) -> None:
    create_running(manager, "RenewInstance", "k")
    container_id = record_of(redis_url, "k", "RenewInstance")["container_id"]

    async def kill() -> None:
        async with aiodocker.Docker() as docker:
            await docker.containers.container(container_id).kill()

    asyncio.run(kill())
    # the monitor notices without anyone asking for the status
    wait_for(
        lambda: record_of(redis_url, "k", "RenewInstance")["status"] in ("failed", "exited"),
        30,
        what="the monitor to notice the dead node",
    )
    call = post(manager, "/execute_tool", tool_name="RenewInstance", tenant_id="k", params="{}")
    assert call.status_code == 409 and "not running" in call.json()["message"]
    create_running(manager, "RenewInstance", "k")
    assert renew(manager, "k") == RENEW


def test_restarted_manager_adopts_running_nodes(manager_factory, node_image: str, redis_url: str) -> None:
    first = manager_factory(MSAGENT_RUNTIME="docker")
    create_running(first, "RenewInstance", "adopt")
    container_id = record_of(redis_url, "adopt", "RenewInstance")["container_id"]
    assert first.stop(signal.SIGTERM) == 0
    second = manager_factory(MSAGENT_RUNTIME="docker")
    assert status_of(second, "RenewInstance", "adopt") == "running"
    assert record_of(redis_url, "adopt", "RenewInstance")["container_id"] == container_id
    assert renew(second, "adopt") == RENEW


def test_node_that_cannot_start_fails_with_the_reason(manager: ServiceProcess, node_image: str) -> None:
    # a tool the manager does not know is refused at once (nothing allocated, nothing started) ...
    refused = post(manager, "/create_tool_service", tool_name="no_such_tool", tenant_id="f")
    assert refused.status_code == 400 and "unknown tool 'no_such_tool'" in refused.json()["message"]
    # ... unless a custom image may carry it: then the node fails, with the reason
    post(manager, "/create_tool_service", tool_name="no_such_tool", tenant_id="f", tool_image=node_image)
    wait_for(lambda: status_of(manager, "no_such_tool", "f") == "failed", 60, what="the node to fail")
    reply = post(manager, "/check_tool_service_status", tool_name="no_such_tool", tenant_id="f").json()
    assert "unknown tool 'no_such_tool'" in reply["output"]["error"]
    missing_image = post(
        manager,
        "/create_tool_service",
        tool_name="calculator",
        tenant_id="f",
        tool_image="msagent-srv-node:does-not-exist",
    )
    assert missing_image.status_code == 200
    wait_for(lambda: status_of(manager, "calculator", "f") == "failed", 60, what="missing image to fail")


def test_memory_bomb_kills_only_its_own_node(manager: ServiceProcess, redis_url: str) -> None:
    create_running(manager, "calculator", "neighbour")
    # no per-child rlimit: the container's memory limit is what stops the bomb
    create_running(manager, "code_interpreter", "bomber", cfg={"memory_limit_mb": 0, "timeout": 30})
    bomb = "x = []\nwhile True:\n    x.append(bytearray(50 * 1024 * 1024))"
    reply = post(
        manager, "/execute_tool", tool_name="code_interpreter", tenant_id="bomber", params={"code": bomb}
    )
    if reply.status_code == 200:  # the kernel killed the session process: the answer says so
        assert "the session was restarted" in reply.json()["output"]
    else:  # or it killed the node itself
        assert reply.status_code >= 500
    neighbour = post(
        manager,
        "/execute_tool",
        tool_name="calculator",
        tenant_id="neighbour",
        params={"expression": "2**10"},
    )
    assert neighbour.json()["output"] == "1024"


def test_code_interpreter_runs_code_in_its_container(manager: ServiceProcess) -> None:
    create_running(manager, "code_interpreter")
    code = "import os\nprint('hello from', os.getuid())\nsum(range(10))"
    output = post(manager, "/execute_tool", tool_name="code_interpreter", params={"code": code}).json()[
        "output"
    ]
    assert output == "hello from 65534\n\n45"
    write = post(
        manager, "/execute_tool", tool_name="code_interpreter", params={"code": "open('/etc/evil', 'w')"}
    ).json()["output"]
    assert "Read-only file system" in write or "Permission denied" in write


def test_tenants_cannot_see_or_call_each_others_tools(manager: ServiceProcess) -> None:
    create_running(manager, "calculator", "tenant-a")
    listing = requests.get(manager.url + "/tools", params={"tenant_id": "tenant-b"}, timeout=10).json()
    assert listing["output"] == {"tools": {}}
    call = post(
        manager, "/execute_tool", tool_name="calculator", tenant_id="tenant-b", params={"expression": "1"}
    )
    assert call.status_code == 404
    removal = post(manager, "/remove_tool", tool_name="calculator", tenant_id="tenant-b")
    assert removal.status_code == 200 and removal.json()["output"]["status"] == "exited"  # idempotent
    assert status_of(manager, "calculator", "tenant-a") == "running"  # and tenant-a's node untouched


@pytest.mark.parametrize(
    ("path", "body", "status", "fragment"),
    [
        ("/create_tool_service", {"tool_name": "../etc", "tenant_id": "x"}, 400, "tool_name"),
        ("/create_tool_service", {"tool_name": "calculator", "tenant_id": "a b"}, 400, "tenant_id"),
        ("/create_tool_service", {"tenant_id": "x"}, 400, "tool_name"),
        ("/create_tool_service", {"tool_name": "calculator", "tool_cfg": "nope"}, 400, "tool_cfg"),
        ("/execute_tool", {"tool_name": "calculator", "tenant_id": "nobody"}, 404, "not found"),
        ("/tool_info", {"tool_name": "calculator", "tenant_id": "nobody"}, 404, "not found"),
    ],
)
def test_bad_requests_get_a_clear_4xx(
    manager: ServiceProcess, path: str, body: dict, status: int, fragment: str
) -> None:
    reply = post(manager, path, **body)
    assert reply.status_code == status
    envelope = reply.json()
    assert set(envelope) == ENVELOPE_KEYS and envelope["output"] is None
    assert fragment in envelope["message"]


def test_malformed_json_is_a_400(manager: ServiceProcess) -> None:
    reply = requests.post(
        manager.url + "/create_tool_service",
        data=b"{not json",
        timeout=10,
        headers={"Content-Type": "application/json"},
    )
    assert reply.status_code == 400 and "not valid JSON" in reply.json()["message"]


def test_tool_errors_come_back_naming_the_tool(manager: ServiceProcess) -> None:
    create_running(manager, "calculator")
    reply = post(manager, "/execute_tool", tool_name="calculator", params={"expression": "1/0"})
    assert reply.status_code == 400
    assert "calculator" in reply.json()["message"] and "division by zero" in reply.json()["message"]
    missing = post(manager, "/execute_tool", tool_name="calculator", params="{}")
    assert missing.status_code == 400 and "expression" in missing.json()["message"]


def test_openapi_document_and_docs_page(manager: ServiceProcess) -> None:
    document = requests.get(manager.url + "/openapi.json", timeout=10).json()
    assert document["openapi"].startswith("3.")
    for path in (
        "/create_tool_service",
        "/check_tool_service_status",
        "/remove_tool",
        "/tools",
        "/tool_info",
        "/execute_tool",
        "/update_tool_service",
    ):
        assert path in document["paths"]
    create = document["paths"]["/create_tool_service"]["post"]["requestBody"]["content"]["application/json"][
        "schema"
    ]
    schema = document["components"]["schemas"][create["$ref"].rsplit("/", 1)[1]]
    assert {"tool_name", "tenant_id", "tool_cfg", "tool_image"} <= set(schema["properties"])
    page = requests.get(manager.url + "/docs", timeout=10)
    assert page.status_code == 200 and "text/html" in page.headers["Content-Type"]
    assert "/execute_tool" in page.text


def test_process_runtime_without_docker(manager_factory) -> None:
    manager = manager_factory(MSAGENT_RUNTIME="process")
    assert requests.get(manager.url + "/health", timeout=10).json()["runtime"] == "process"
    create_running(manager, "RenewInstance", "laptop")
    assert renew(manager, "laptop") == RENEW
    assert (
        post(manager, "/remove_tool", tool_name="RenewInstance", tenant_id="laptop").json()["output"][
            "status"
        ]
        == "exited"
    )


def test_idle_nodes_are_removed(manager_factory, node_image: str, redis_url: str) -> None:
    manager = manager_factory(MSAGENT_RUNTIME="docker", MSAGENT_NODE_IDLE_TIMEOUT="2")
    create_running(manager, "calculator", "idle")
    container_id = record_of(redis_url, "idle", "calculator")["container_id"]
    wait_for(
        lambda: status_of(manager, "calculator", "idle") == "exited", 60, what="the idle node to be removed"
    )
    listed = requests.get(manager.url + "/tools", params={"tenant_id": "idle"}, timeout=10).json()
    assert listed["output"]["tools"] == {"calculator_idle": "exited"}

    def container_gone() -> bool:
        try:
            inspect(container_id)
        except aiodocker.DockerError as exc:
            return exc.status == 404
        return False

    wait_for(container_gone, 60, what="the idle node's container to be removed")


def test_a_call_longer_than_the_node_timeout_is_a_504(manager_factory, node_image: str) -> None:
    manager = manager_factory(MSAGENT_RUNTIME="docker", MSAGENT_NODE_CALL_TIMEOUT="1")
    create_running(manager, "code_interpreter", cfg={"timeout": 30})
    reply = post(
        manager, "/execute_tool", tool_name="code_interpreter", params={"code": "import time; time.sleep(5)"}
    )
    assert reply.status_code == 504
    assert "code_interpreter" in reply.json()["message"] and "1s" in reply.json()["message"]
    # the node is still there for the next call
    quick = post(manager, "/execute_tool", tool_name="code_interpreter", params={"code": "1 + 1"})
    assert quick.json()["output"] == "2"


def test_node_gone_while_the_manager_was_down_is_marked_exited(
    manager_factory, node_image: str, redis_url: str
) -> None:
    first = manager_factory(MSAGENT_RUNTIME="docker")
    create_running(first, "calculator", "gone")
    record = record_of(redis_url, "gone", "calculator")
    first.stop()

    async def remove() -> None:
        async with aiodocker.Docker() as docker:
            await docker.containers.container(record["container_id"]).delete(force=True)

    asyncio.run(remove())
    second = manager_factory(MSAGENT_RUNTIME="docker")
    reply = post(second, "/check_tool_service_status", tool_name="calculator", tenant_id="gone").json()[
        "output"
    ]
    assert reply["status"] == "exited" and "gone" in reply["error"]
    import redis

    owners = redis.Redis.from_url(redis_url, decode_responses=True).hgetall("msagent:ports:owners")
    assert str(record["port"]) not in owners  # its port went back to the pool
    create_running(second, "calculator", "gone")  # and it can be created again


def test_nodes_without_a_network_are_reached_through_a_socket(
    manager_factory, node_image: str, redis_url: str
) -> None:
    manager = manager_factory(MSAGENT_RUNTIME="docker", MSAGENT_NODE_NETWORK="none")
    create_running(manager, "code_interpreter", "offline")
    record = record_of(redis_url, "offline", "code_interpreter")
    assert record["endpoint"].startswith("unix:")
    host = inspect(record["container_id"])["HostConfig"]
    assert host["NetworkMode"] == "none" and not host.get("PortBindings")
    probe = "import socket\ntry:\n    socket.create_connection(('1.1.1.1', 53), timeout=2)\n    'connected'\nexcept OSError as exc:\n    type(exc).__name__"
    output = post(
        manager, "/execute_tool", tool_name="code_interpreter", tenant_id="offline", params={"code": probe}
    ).json()["output"]
    assert output != "'connected'" and "crashed" not in output  # no way out of the container
    assert post(manager, "/remove_tool", tool_name="code_interpreter", tenant_id="offline").status_code == 200
