"""Attacks from the security audit (issue #13), reproduced against a real manager, real Docker nodes, real
process nodes and a real Redis: each must fail now."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import threading
import time
from pathlib import Path

import aiodocker
import redis
import requests

from msagent_srv.manager.runtime.base import (
    LABEL_MANAGED,
    LABEL_NAMESPACE,
    LABEL_TENANT,
    LABEL_TOOL,
    unit_name,
)

from .helpers import ENVELOPE_KEYS, ServiceProcess, wait_for
from .service_calls import create_running, inspect, post, record_of, status_of

SECRET_CFG = "cfg-secret-5f1c9a0e7b"
ADMIN = "admin-key-for-the-escape-test-3d8e"

# Reads every place a secret could be found from inside the tool's code.
SNOOP = r"""
import json, os
seen = {"os.environ": dict(os.environ)}
def read(path):
    try:
        with open(path, "rb") as f:
            seen[path] = f.read(1 << 20).decode("latin-1")
    except OSError as exc:
        seen[path] = type(exc).__name__
pid = os.getpid()
ancestors = []
while pid > 1:
    with open(f"/proc/{pid}/stat") as f:
        pid = int(f.read().rsplit(")", 1)[1].split()[1])
    ancestors.append(pid)
for pid in ancestors:
    read(f"/proc/{pid}/environ")
    read(f"/proc/{pid}/cmdline")
for entry in os.listdir("/proc"):
    if entry.isdigit():
        read(f"/proc/{entry}/environ")
read("/run/msagent/secrets.json")
try:  # the parent's memory: where the token lives once read
    with open(f"/proc/{os.getppid()}/mem", "rb") as f:
        seen["mem"] = "readable"
except OSError as exc:
    seen["mem"] = type(exc).__name__
print(json.dumps({"ancestors": ancestors, "seen": seen}))
"""


def run_code(manager: ServiceProcess, tenant: str, code: str, timeout: float = 60) -> requests.Response:
    return requests.post(
        manager.url + "/execute_tool",
        json={"tool_name": "code_interpreter", "tenant_id": tenant, "params": {"code": code}},
        timeout=timeout,
    )


def port_owners(redis_url: str) -> dict[str, str]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        return client.hgetall("msagent:ports:owners")
    finally:
        client.close()


# -- 3. code cannot read its node's secrets, nor the manager's -------------------------------------------


def test_code_on_docker_finds_no_node_token_or_tool_cfg(manager: ServiceProcess, redis_url: str) -> None:
    create_running(manager, "code_interpreter", "snoop", cfg={"api_key": SECRET_CFG})
    token = record_of(redis_url, "snoop", "code_interpreter")["node_token"]
    reply = run_code(manager, "snoop", SNOOP)
    assert reply.status_code == 200, reply.text
    output = reply.json()["output"]
    report = json.loads(output)
    assert token not in reply.text and SECRET_CFG not in reply.text
    node_pid = report["ancestors"][0]
    seen = report["seen"]
    assert "MSAGENT_NODE_TOKEN" not in seen["/proc/1/environ"]  # docker-init holds no secret
    assert seen[f"/proc/{node_pid}/environ"] == "PermissionError"  # the node is non-dumpable
    assert seen["mem"] == "PermissionError"
    assert seen["/run/msagent/secrets.json"] == "FileNotFoundError"  # read once, then deleted
    # and the node still works, with its tool_cfg
    assert run_code(manager, "snoop", "6 * 7").json()["output"] == "42"


def test_process_runtime_refuses_code_tools_by_default(manager_factory, redis_url: str) -> None:
    manager = manager_factory(MSAGENT_RUNTIME="process")
    reply = post(manager, "/create_tool_service", tool_name="code_interpreter", tenant_id="laptop")
    assert reply.status_code == 403
    body = reply.json()
    assert set(body) == ENVELOPE_KEYS and body["output"] is None
    assert "MSAGENT_PROCESS_RUNTIME_UNSAFE_TOOLS" in body["message"] and "code_interpreter" in body["message"]
    assert (
        post(
            manager, "/check_tool_service_status", tool_name="code_interpreter", tenant_id="laptop"
        ).status_code
        == 404
    )
    assert port_owners(redis_url) == {}
    create_running(manager, "calculator", "laptop")  # tools that run no code are fine


def test_process_runtime_opt_in_still_hides_the_managers_secrets(manager_factory, redis_url: str) -> None:
    manager = manager_factory(
        MSAGENT_RUNTIME="process",
        MSAGENT_PROCESS_RUNTIME_UNSAFE_TOOLS="code_interpreter",
        MSAGENT_ADMIN_KEY=ADMIN,
        MSAGENT_NODE_PORT_BASE="22700",
        MSAGENT_NODE_PORT_MAX="22709",
    )
    try:
        create_running(manager, "code_interpreter", "optin", cfg={"api_key": SECRET_CFG})
        token = record_of(redis_url, "optin", "code_interpreter")["node_token"]
        reply = run_code(manager, "optin", SNOOP)
        assert reply.status_code == 200, reply.text
        output = reply.json()["output"]
        report = json.loads(output)
        assert manager.process is not None and manager.process.pid in report["ancestors"]  # it looked there
        for secret in (ADMIN, redis_url, token, SECRET_CFG):
            assert secret not in reply.text
        assert "REDIS_URL" not in report["seen"]["os.environ"]
        assert report["seen"][f"/proc/{manager.process.pid}/environ"] == "PermissionError"
    finally:
        post(manager, "/remove_tool", tool_name="code_interpreter", tenant_id="optin")


# -- 4. container names are unique by construction, and identities are checked ---------------------------


def old_unit_name(namespace: str, tenant: str, tool: str) -> str:
    """The scheme before the fix: the digest was cut off past 63 characters."""
    import hashlib

    digest = hashlib.sha256(f"{namespace}/{tenant}/{tool}".encode()).hexdigest()[:8]
    return f"msagent-node-{tool}-{tenant}-{digest}".lower().replace("_", "-")[:63]


def test_a_crafted_tenant_cannot_replace_another_tenants_container(
    manager: ServiceProcess, redis_url: str, namespace: str
) -> None:
    victim, attacker = (
        "acme-corporation-production-workspace-1",
        "acme-corporation-production-workspace-1-evil",
    )
    assert old_unit_name(namespace, victim, "calculator") == old_unit_name(namespace, attacker, "calculator")
    create_running(manager, "calculator", victim)
    victim_container = record_of(redis_url, victim, "calculator")["container_id"]
    create_running(manager, "calculator", attacker)
    attacker_container = record_of(redis_url, attacker, "calculator")["container_id"]
    assert attacker_container != victim_container
    assert inspect(victim_container)["State"]["Running"]
    names = {inspect(c)["Name"].lstrip("/") for c in (victim_container, attacker_container)}
    assert len(names) == 2 and all(len(n) <= 63 for n in names)
    for tenant in (victim, attacker):
        call = post(
            manager, "/execute_tool", tool_name="calculator", tenant_id=tenant, params={"expression": "6*7"}
        )
        assert call.json()["output"] == "42"


def test_a_foreign_container_under_a_nodes_name_is_never_replaced(
    manager: ServiceProcess, node_image: str, namespace: str
) -> None:
    name = unit_name(namespace, "squatted", "calculator")
    labels = {
        LABEL_MANAGED: "1",
        LABEL_NAMESPACE: namespace,
        LABEL_TENANT: "someone-else",
        LABEL_TOOL: "calculator",
    }

    async def squat() -> str:
        async with aiodocker.Docker() as docker:
            container = await docker.containers.create(
                {"Image": node_image, "Entrypoint": ["python3", "-c", "pass"], "Labels": labels}, name=name
            )
            return str(container.id)

    foreign = asyncio.run(squat())
    post(manager, "/create_tool_service", tool_name="calculator", tenant_id="squatted")
    wait_for(lambda: status_of(manager, "calculator", "squatted") == "failed", 60, what="the create to fail")
    error = post(manager, "/check_tool_service_status", tool_name="calculator", tenant_id="squatted").json()
    assert "belongs to another node" in error["output"]["error"]
    assert inspect(foreign)["Config"]["Labels"][LABEL_TENANT] == "someone-else"  # untouched


# -- 6. the calculator bounds every intermediate result ----------------------------------------------------


def test_huge_powers_are_quick_tool_errors_and_the_node_stays_responsive(manager: ServiceProcess) -> None:
    create_running(manager, "calculator", "bignum")

    def calc(expression: str) -> tuple[requests.Response, float]:
        started = time.monotonic()
        reply = post(
            manager,
            "/execute_tool",
            tool_name="calculator",
            tenant_id="bignum",
            params={"expression": expression},
        )
        return reply, time.monotonic() - started

    baseline = max(calc("6*7")[1] for _ in range(5))
    stop = threading.Event()
    side_calls: list[int] = []

    def keep_calling() -> None:  # the node must answer others while it refuses the big ones
        while not stop.is_set():
            side_calls.append(calc("2**10")[0].status_code)

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        side = pool.submit(keep_calling)
        try:
            for expression in ("(10**10000)**1000", "10**5000", "factorial(10**6)", "(2**9000)*(2**9000)"):
                reply, took = calc(expression)
                assert reply.status_code == 400, reply.text
                assert "calculator" in reply.json()["message"] and "too large" in reply.json()["message"]
                # it froze the node for seconds (12 s in the audit); a second of slack for a busy machine
                assert took < 50 * baseline + 1.0, (expression, took, baseline)
        finally:
            stop.set()
            side.result()
    assert side_calls and set(side_calls) == {200}


# -- 7. one tenant cannot exhaust the ports ---------------------------------------------------------------


def test_unknown_tools_and_failing_nodes_leave_the_ports_to_others(
    manager_factory, node_image: str, redis_url: str
) -> None:
    manager = manager_factory(
        MSAGENT_RUNTIME="docker", MSAGENT_NODE_PORT_BASE="22800", MSAGENT_NODE_PORT_MAX="22802"
    )
    for i in range(10):  # 10 creates on a range of 3 ports
        reply = post(manager, "/create_tool_service", tool_name=f"nonexistent{i}", tenant_id="greedy")
        assert reply.status_code == 400 and f"nonexistent{i}" in reply.json()["message"]
    for i in range(6):  # nodes that start and fail: a custom image may hold the tool, this one does not
        post(
            manager,
            "/create_tool_service",
            tool_name=f"failing{i}",
            tenant_id="greedy",
            tool_image=node_image,
        )
        wait_for(lambda i=i: status_of(manager, f"failing{i}", "greedy") == "failed", 60, what=f"failing{i}")
    assert port_owners(redis_url) == {}
    create_running(manager, "calculator", "other")
    assert (
        post(
            manager, "/execute_tool", tool_name="calculator", tenant_id="other", params={"expression": "1+1"}
        ).json()["output"]
        == "2"
    )


def test_nodes_per_tenant_are_capped(manager_factory, node_image: str) -> None:
    manager = manager_factory(MSAGENT_RUNTIME="docker", MSAGENT_MAX_NODES_PER_TENANT="2")
    create_running(manager, "calculator", "capped")
    create_running(manager, "RenewInstance", "capped")
    over = post(manager, "/create_tool_service", tool_name="code_interpreter", tenant_id="capped")
    assert over.status_code == 429
    body = over.json()
    assert set(body) == ENVELOPE_KEYS and "MSAGENT_MAX_NODES_PER_TENANT" in body["message"]
    again = post(manager, "/create_tool_service", tool_name="calculator", tenant_id="capped")
    assert again.status_code == 200  # re-creating a node it holds is not one more
    create_running(manager, "code_interpreter", "neighbour")  # others are not affected
    assert post(manager, "/remove_tool", tool_name="RenewInstance", tenant_id="capped").status_code == 200
    create_running(manager, "code_interpreter", "capped")


# -- 9. bounded replies; nothing a code execution forks outlives it -------------------------------------


def alive(pid: int) -> bool:
    """True while `pid` runs (a zombie waiting for its reaper, pytest here, has ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_a_node_reply_over_the_cap_is_refused_with_memory_bounded(manager: ServiceProcess) -> None:
    create_running(manager, "code_interpreter", "big", cfg={"timeout": 60})
    assert manager.process is not None
    small = run_code(manager, "big", "'x' * 1_000_000")  # under the cap: relayed
    assert small.status_code == 200 and len(small.json()["output"]) == 1_000_002
    before = rss_kb(manager.process.pid)
    reply = run_code(manager, "big", "'x' * 40_000_000", timeout=120)  # a 40 MB reply, the cap is 16 MB
    assert reply.status_code == 502
    assert "larger than 16 MB" in reply.json()["message"] and set(reply.json()) == ENVELOPE_KEYS
    grown_mb = (rss_kb(manager.process.pid) - before) / 1024
    assert grown_mb < 16, f"manager RSS grew {grown_mb:.0f} MB"
    assert run_code(manager, "big", "1 + 1").json()["output"] == "2"


FORKER = """
import os, time
pid = os.fork()
if pid == 0:
    time.sleep(300)
    os._exit(0)
print(pid)
"""

# leaves its session (setsid) and is orphaned: it is no longer in the code's process group or session
ESCAPER = """
import os, time
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.setsid()
    grandchild = os.fork()
    if grandchild == 0:
        os.close(1)
        os.close(2)
        time.sleep(300)
        os._exit(0)
    os.write(w, str(grandchild).encode())
    os._exit(0)
os.waitpid(pid, 0)
print(os.read(r, 32).decode())
"""


def test_forked_grandchildren_end_with_the_call_in_a_container(manager: ServiceProcess) -> None:
    create_running(manager, "code_interpreter", "forks")
    first = run_code(manager, "forks", FORKER)
    assert first.status_code == 200
    grandchild = int(first.json()["output"])  # the call ends with its code, not its timeout

    def gone() -> bool:
        probe = f"import os\nos.path.exists('/proc/{grandchild}')"
        return run_code(manager, "forks", probe).json()["output"] == "False"

    wait_for(gone, 30, interval=0.5, what="the forked grandchild to be gone")

    escaped = run_code(manager, "forks", ESCAPER).json()["output"]
    grandchild = int(escaped)  # neither a timeout nor a crash
    wait_for(gone, 30, interval=0.5, what="the grandchild that left its session to be gone")


def test_forked_grandchildren_end_with_the_call_and_the_node_on_the_process_runtime(
    manager_factory, tmp_path: Path
) -> None:
    manager = manager_factory(
        MSAGENT_RUNTIME="process",
        MSAGENT_PROCESS_RUNTIME_UNSAFE_TOOLS="code_interpreter",
        MSAGENT_NODE_PORT_BASE="22710",
        MSAGENT_NODE_PORT_MAX="22719",
    )
    create_running(manager, "code_interpreter", "forks", cfg={"timeout": 120})
    popen = "import subprocess\nprint(subprocess.Popen(['sleep', '300'], start_new_session=False).pid)"
    reply = run_code(manager, "forks", popen)
    assert reply.status_code == 200, reply.text
    grandchild = int(reply.json()["output"])  # not a timeout
    wait_for(lambda: not alive(grandchild), 30, what="the grandchild to be gone")
    escaped = run_code(manager, "forks", ESCAPER).json()["output"]
    wait_for(lambda: not alive(int(escaped)), 30, what="the grandchild that left its session to end")

    # a call still running when its node is removed: the code and what it forked end with the node
    pid_file = tmp_path / "pids"
    os.chmod(tmp_path, 0o777)
    hang = (
        "import os, subprocess, time\n"
        "child = subprocess.Popen(['sleep', '300'])\n"
        f"open({str(pid_file)!r}, 'w').write(f'{{os.getpid()}} {{child.pid}}')\n"
        "time.sleep(300)"
    )
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        call = pool.submit(run_code, manager, "forks", hang, 120)
        pids = wait_for(lambda: pid_file.exists() and pid_file.read_text().split(), 60, what="the pids")
        assert (
            post(manager, "/remove_tool", tool_name="code_interpreter", tenant_id="forks").status_code == 200
        )
        for pid in pids:
            wait_for(lambda pid=pid: not alive(pid), 30, what=f"process {pid} to end")
        ended = call.result()  # the caller is answered, not left hanging: killed code, or the node gone
        assert ended.status_code >= 400 or "restarted" in ended.json()["output"], ended.text


# -- 10. defaults: no network, node endpoints need the secret -------------------------------------------


def test_nodes_default_to_no_network(manager: ServiceProcess, redis_url: str) -> None:
    create_running(manager, "code_interpreter", "offline")
    record = record_of(redis_url, "offline", "code_interpreter")
    host = inspect(record["container_id"])["HostConfig"]
    assert host["NetworkMode"] == "none" and not host.get("PortBindings")
    assert record["endpoint"].startswith("unix:")
    probe = "import socket\ntry:\n    socket.create_connection(('1.1.1.1', 53), timeout=2)\n    'connected'\nexcept OSError as exc:\n    type(exc).__name__"
    assert run_code(manager, "offline", probe).json()["output"] != "'connected'"


def test_node_health_and_metrics_need_the_node_secret(
    manager_factory, node_image: str, redis_url: str
) -> None:
    manager = manager_factory(MSAGENT_RUNTIME="docker", MSAGENT_NODE_NETWORK="bridge")
    create_running(manager, "calculator", "probe")  # the manager's readiness check sends the secret
    record = record_of(redis_url, "probe", "calculator")
    node = f"http://127.0.0.1:{record['port']}"
    for path in ("/health", "/metrics", "/tool_info"):
        assert requests.get(node + path, timeout=10).status_code == 401
        with_secret = requests.get(node + path, headers={"X-Node-Token": record["node_token"]}, timeout=10)
        assert with_secret.status_code == 200
