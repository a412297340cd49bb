"""Service plumbing: health, request ids, Redis outages as 503, `msagent-srv up`, settings, logs."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from msagent_srv.logs import JsonFormatter
from msagent_srv.settings import Settings

from .helpers import ServiceProcess, free_port, wait_for


def test_services_answer_503_when_redis_is_down(tmp_path) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    env = {
        "REDIS_URL": dead,
        "MSAGENT_REDIS_TIMEOUT": "1",
        "MSAGENT_RUNTIME": "process",
        "MSAGENT_DATA_DIR": str(tmp_path),
    }
    manager_port, assistant_port = free_port(), free_port()
    manager = ServiceProcess(["manager", "--port", str(manager_port)], env, manager_port, tmp_path / "m.log")
    assistant = ServiceProcess(
        ["assistant", "--port", str(assistant_port)], env, assistant_port, tmp_path / "a.log"
    )
    with manager.start(expect_ok=False), assistant.start(expect_ok=False):
        listing = requests.get(manager.url + "/tools", timeout=10)
        assert listing.status_code == 503
        assert "state store unavailable" in listing.json()["message"] and listing.json()["request_id"]
        create = requests.post(
            manager.url + "/create_tool_service", json={"tool_name": "calculator"}, timeout=10
        )
        assert create.status_code == 503
        assert requests.get(manager.url + "/health", timeout=10).status_code == 503
        assert requests.get(assistant.url + "/health", timeout=10).status_code == 503
        assert "Traceback" not in manager.log()


def test_request_id_is_echoed_or_made(tmp_path, redis_url: str) -> None:
    port = free_port()
    manager = ServiceProcess(
        ["manager", "--port", str(port)],
        {"REDIS_URL": redis_url, "MSAGENT_RUNTIME": "process", "MSAGENT_DATA_DIR": str(tmp_path)},
        port,
        tmp_path / "m.log",
    )
    with manager.start():
        mine = requests.get(manager.url + "/tools", headers={"X-Request-ID": "abc-123"}, timeout=10)
        assert mine.headers["X-Request-ID"] == "abc-123" and mine.json()["request_id"] == "abc-123"
        made = requests.get(manager.url + "/tools", timeout=10)
        assert (
            len(made.json()["request_id"]) == 32 and made.headers["X-Request-ID"] == made.json()["request_id"]
        )


def test_up_runs_the_stack_with_an_embedded_redis_and_stops_it(tmp_path) -> None:
    manager_port, assistant_port = free_port(), free_port()
    up = ServiceProcess(
        ["up", "--manager-port", str(manager_port), "--assistant-port", str(assistant_port)],
        {
            "REDIS_URL": "",
            "MSAGENT_DATA_DIR": str(tmp_path / "data"),
            "MSAGENT_RUNTIME": "process",
            "MSAGENT_NODE_PORT_BASE": "22100",
            "MSAGENT_NODE_PORT_MAX": "22199",
        },
        manager_port,
        tmp_path / "up.log",
    )
    try:
        up.start()  # a failed start-up stops `up`, which stops its Redis and nodes (finally checks it)
        assert requests.get(f"http://127.0.0.1:{assistant_port}/health", timeout=10).status_code == 200
        start_calculator(up, 120)
        assert "msagent-srv is up" in up.log() and "embedded" in up.log()
        assert (tmp_path / "data" / "redis" / "appendonlydir").exists() or any(
            (tmp_path / "data" / "redis").iterdir()
        )
        redis_port = _embedded_redis_port(tmp_path / "data" / "redis")
        node = socket.create_connection(
            ("127.0.0.1", 22100), timeout=2
        )  # the node's port (first of the range)
        node.close()
        assert "models     default dashscope" in up.log()
    finally:
        code = up.stop(signal.SIGINT)
    assert code == 0, up.log()
    assert "removed 1 tool node(s)" in up.log()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", 22100), timeout=1):
        pass  # the node went with the stack
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", redis_port), timeout=1):
        pass


def start_calculator(up: ServiceProcess, timeout: float) -> None:
    """Create a calculator node through the stack's manager and wait until it runs."""
    reply = requests.post(up.url + "/create_tool_service", json={"tool_name": "calculator"}, timeout=10)
    assert reply.status_code == 200, reply.text

    def running() -> bool:
        status = requests.post(
            up.url + "/check_tool_service_status", json={"tool_name": "calculator"}, timeout=10
        )
        return status.json()["output"]["status"] == "running"

    wait_for(running, timeout, what="the calculator node")


def _embedded_redis_port(data_dir) -> int:
    log = (data_dir / "redis.log").read_text()
    marker = "Running mode=standalone, port="
    return int(log.split(marker, 1)[1].split(".", 1)[0])


def test_settings_from_environment_and_flags() -> None:
    settings = Settings.load(
        {"REDIS_URL": "redis://h:1/2", "MSAGENT_MANAGER_PORT": "4000", "MSAGENT_NODE_MEMORY_MB": "256"},
        manager_port=5000,
        host=None,
    )
    assert settings.redis_url_value() == "redis://h:1/2"
    assert settings.manager_port == 5000 and settings.node_memory_mb == 256 and settings.host == "127.0.0.1"
    assert "redis://h:1/2" not in repr(settings)  # the URL may carry a password
    with pytest.raises(ValueError, match="manager_port"):
        Settings.load({"MSAGENT_MANAGER_PORT": "not a port"})
    assert Settings.load({"OPENAI_API_BASE": "http://h/v1"}).openai_base_url == "http://h/v1"  # older name


@pytest.mark.parametrize(
    ("variable", "value"),
    [("MSAGENT_FUNCTION_CALLING", "emulted"), ("MSAGENT_FUNCTION_CALLING", "openai=nativ"),
     ("MSAGENT_UPLOAD_MAX_MB", "-5"), ("MSAGENT_RUNTIME", "kubernetes")],
)  # fmt: skip
def test_an_invalid_setting_stops_start_up_naming_its_variable(variable: str, value: str, tmp_path) -> None:
    started = subprocess.run(
        [sys.executable, "-m", "msagent_srv.cli", "assistant", "--port", str(free_port())],
        env={**os.environ, variable: value, "MSAGENT_DATA_DIR": str(tmp_path)},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert started.returncode != 0 and variable in started.stderr and "Traceback" not in started.stderr


def test_logs_are_json_and_never_carry_secrets() -> None:
    record = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "calling upstream with Bearer sk-secret123456", (), None
    )
    record.headers = {"Authorization": "Bearer sk-abc", "Accept": "json"}
    record.api_key = "sk-zzzzzzzzzz"
    line = JsonFormatter().format(record)
    entry = json.loads(line)
    assert "sk-secret123456" not in line and "sk-abc" not in line and "sk-zzzzzzzzzz" not in line
    assert entry["headers"]["Accept"] == "json" and entry["level"] == "info"


def run_assistant_to_exit(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Start an assistant that is expected to refuse to start."""
    return subprocess.run(
        [sys.executable, "-m", "msagent_srv.cli", "assistant"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_second_assistant_on_the_same_data_dir_says_why_it_cannot_start(assistant_factory) -> None:
    first = assistant_factory()
    second = run_assistant_to_exit({**first.env, "MSAGENT_ASSISTANT_PORT": str(free_port())})
    assert second.returncode != 0
    assert "used by another process" in second.stderr and "QDRANT_URL" in second.stderr
    assert "Traceback" not in second.stderr
    assert requests.get(first.url + "/health", timeout=10).status_code == 200  # the first one is unharmed


def test_an_upstream_address_that_is_not_a_url_stops_start_up_with_the_reason(
    redis_url: str, tmp_path: Path
) -> None:
    result = run_assistant_to_exit(
        {
            "REDIS_URL": redis_url,
            "MSAGENT_DATA_DIR": str(tmp_path),
            "MSAGENT_ASSISTANT_PORT": str(free_port()),
            "MSAGENT_KNOWLEDGE": "false",
            "OPENAI_BASE_URL": "api.openai.com/v1",
        }
    )
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "bad upstream address" in result.stderr and "api.openai.com/v1" in result.stderr


def test_up_builds_a_missing_node_image_and_runs_nodes_in_docker(
    tmp_path, node_image: str, namespace: str
) -> None:
    import asyncio
    import uuid

    import aiodocker

    tag = f"msagent-srv-node:up-{uuid.uuid4().hex[:8]}"
    manager_port, assistant_port = free_port(), free_port()
    up = ServiceProcess(
        ["up", "--manager-port", str(manager_port), "--assistant-port", str(assistant_port)],
        {
            "REDIS_URL": "",
            "MSAGENT_DATA_DIR": str(tmp_path / "data"),
            "MSAGENT_RUNTIME": "docker",
            "MSAGENT_NODE_IMAGE": tag,
            "MSAGENT_NAMESPACE": namespace,
            "MSAGENT_KNOWLEDGE": "false",
            "MSAGENT_NODE_PORT_BASE": "22400",
            "MSAGENT_NODE_PORT_MAX": "22499",
        },
        manager_port,
        tmp_path / "up.log",
    )
    try:
        up.start()
        assert f"node image {tag} not found: building it" in up.log()
        start_calculator(up, 120)
        reply = requests.post(
            up.url + "/execute_tool",
            json={"tool_name": "calculator", "params": {"expression": "9*9"}},
            timeout=30,
        )
        assert reply.json()["output"] == "81"
    finally:
        assert up.stop(signal.SIGINT) == 0, up.log()

        async def drop() -> None:
            async with aiodocker.Docker() as docker:
                await docker.images.delete(tag, force=True)

        asyncio.run(drop())


def declare_huge_body(url: str, path: str, content_type: str) -> tuple[int, dict]:
    """Send only the head of a request that announces 10 GB, and read the answer: a service that refuses
    early answers without waiting for a body that never comes."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {10 * 1024**3}\r\n\r\n".encode()
        )
        conn.settimeout(10)
        raw = b""
        while b"\r\n\r\n" not in raw or not raw.rstrip().endswith(b"}"):
            chunk = conn.recv(65536)
            if not chunk:
                break
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def test_oversized_bodies_are_refused_before_they_are_read(assistant_factory, manager_factory) -> None:
    assistant = assistant_factory(MSAGENT_KNOWLEDGE="true")
    manager = manager_factory(MSAGENT_RUNTIME="process")
    status, body = declare_huge_body(assistant.url, "/v1/chat/completions", "application/json")
    assert status == 413 and body["error"]["code"] == "body_too_large"
    status, body = declare_huge_body(assistant.url, "/v1/files", "multipart/form-data; boundary=b")
    assert status == 413 and body["error"]["code"] == "body_too_large"
    status, body = declare_huge_body(manager.url, "/create_tool_service", "application/json")
    assert status == 413 and "limit" in body["message"]
