"""Prometheus metrics at /metrics on every service."""

from __future__ import annotations

import requests
from prometheus_client.parser import text_string_to_metric_families

from msagent_srv.node.schemas import NODE_TOKEN_HEADER

from .helpers import ServiceProcess, wait_for
from .service_calls import create_running, post, record_of, upload, wait_indexed
from .upstreams import ScriptedUpstream


def scrape(url: str, headers: dict[str, str] | None = None) -> dict[tuple[str, tuple], float]:
    reply = requests.get(url + "/metrics", headers=headers, timeout=10)
    assert reply.status_code == 200 and reply.headers["Content-Type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(reply.text)
        for s in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_assistant_metrics(assistant: ServiceProcess, upstream: ScriptedUpstream) -> None:
    upstream.reset(["hello"])
    requests.post(
        assistant.url + "/v1/chat/completions",
        headers={"Authorization": "Bearer k"},
        timeout=30,
        json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
    )
    upload(assistant, "m1", {"a.md": b"# A\n\nSome text to index."})
    wait_indexed(assistant, "m1", ["a.md"])
    samples = scrape(assistant.url)
    assert (
        value(
            samples,
            "msagent_http_requests_total",
            service="assistant",
            route="/v1/chat/completions",
            status="200",
        )
        == 1
    )
    assert value(samples, "msagent_upstream_seconds_count", backend="openai", stream="false") == 1
    assert value(samples, "msagent_upstream_tokens_total", backend="openai", kind="prompt") == 11
    assert value(samples, "msagent_ingest_files_total", result="indexed") == 1
    assert value(samples, "msagent_ingest_chunks_total") >= 1
    assert value(samples, "msagent_ingest_active") == 0
    files = requests.get(assistant.url + "/v1/files", params={"uuid_str": "m1"}, timeout=10).json()["output"][
        "files"
    ]
    assert files[0]["progress"] == 1.0


def test_manager_and_node_metrics(manager_factory, node_image: str, redis_url: str) -> None:
    # a node on the bridge network, so its own port can be scraped beside the manager's numbers
    manager = manager_factory(MSAGENT_RUNTIME="docker", MSAGENT_NODE_NETWORK="bridge")
    create_running(manager, "calculator", "metrics")
    post(manager, "/execute_tool", tool_name="calculator", tenant_id="metrics", params={"expression": "1+1"})
    post(manager, "/execute_tool", tool_name="calculator", tenant_id="metrics", params={"expression": "1/0"})
    samples = scrape(manager.url)
    assert value(samples, "msagent_tool_executions_total", tool="calculator", result="ok") == 1
    assert value(samples, "msagent_tool_executions_total", tool="calculator", result="error") == 1
    assert value(samples, "msagent_tool_nodes", status="running") == 1
    assert (
        value(samples, "msagent_http_requests_total", service="manager", route="/execute_tool", status="400")
        == 1
    )
    record = record_of(redis_url, "metrics", "calculator")
    anonymous = requests.get(f"http://127.0.0.1:{record['port']}/metrics", timeout=10)
    assert anonymous.status_code == 401  # a node's numbers are its manager's to read
    token = {NODE_TOKEN_HEADER: record["node_token"]}
    node = wait_for(lambda: scrape(f"http://127.0.0.1:{record['port']}", token), 60, what="node metrics")
    assert value(node, "msagent_node_executions_total", result="ok") == 1
    assert value(node, "msagent_node_executions_total", result="tool_error") == 1
