"""A bounded soak on loopback: chat streams and tool calls at once for a while (MSAGENT_SOAK_SECONDS, 60 by
default), with no errors, and no growth of open connections, file descriptors or memory beyond a bound."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass

import aiohttp
import requests

from msagent_srv.manager.node_transport import CONNECTIONS_PER_NODE
from msagent_srv.store.connection import POOL_SIZE as REDIS_POOL_SIZE

from .helpers import ServiceProcess, wait_for
from .upstreams import ScriptedUpstream

STREAMS = 50  # concurrent chat streams, each reconnecting as soon as it ends
TOOL_CALLS_PER_SECOND = 200
SOAK_SECONDS = float(os.environ.get("MSAGENT_SOAK_SECONDS", "60"))
CLIENT_CONNECTIONS = 64  # the soak's own connections to each service at most
# Descriptor growth allowed: what the product's caps let each service hold, plus a few (logs, Docker's
# socket, the event loop). A leak grows without bound: by thousands over a soak.
SLACK = 16
FD_GROWTH_BOUND = {
    # callers in, the pool to the one node, Redis
    "manager": CLIENT_CONNECTIONS + CONNECTIONS_PER_NODE + REDIS_POOL_SIZE + SLACK,
    # callers in, one upstream stream per caller stream, Redis
    "assistant": CLIENT_CONNECTIONS + CLIENT_CONNECTIONS + REDIS_POOL_SIZE + SLACK,
}
RSS_GROWTH_BOUND_MB = 64


@dataclass
class Usage:
    fds: int
    sockets: int
    rss_mb: float


def usage_of(pid: int) -> Usage:
    fd_dir = f"/proc/{pid}/fd"
    targets = []
    for fd in os.listdir(fd_dir):
        try:
            targets.append(os.readlink(f"{fd_dir}/{fd}"))
        except OSError:  # closed while we looked
            continue
    with open(f"/proc/{pid}/status") as status:
        rss_kb = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    return Usage(len(targets), sum(t.startswith("socket:") for t in targets), rss_kb / 1024)


async def soak(assistant: ServiceProcess, manager: ServiceProcess, seconds: float) -> dict[str, int]:
    counts = {"streams": 0, "tool_calls": 0, "errors": 0}
    errors: list[str] = []
    deadline = time.monotonic() + seconds
    chat = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "soak"}]}
    call = {"tool_name": "calculator", "tenant_id": "soak", "params": {"expression": "6*7"}}
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0, limit_per_host=CLIENT_CONNECTIONS), timeout=timeout
    ) as session:

        async def attempt(kind: str, request) -> None:  # type: ignore[no-untyped-def]
            """Run one request (which raises on a wrong answer) and count how it went."""
            try:
                await request()
                counts[kind] += 1
            except Exception as exc:
                counts["errors"] += 1
                errors.append(repr(exc))

        async def one_stream() -> None:
            async with session.post(
                assistant.url + "/v1/chat/completions", json=chat, headers={"Authorization": "Bearer k"}
            ) as reply:
                body = await reply.read()
            if reply.status != 200 or not body.rstrip().endswith(b"data: [DONE]"):
                raise RuntimeError(f"stream {reply.status}: {body[-200:]!r}")

        async def one_call() -> None:
            async with session.post(manager.url + "/execute_tool", json=call) as reply:
                data = await reply.json()
            if reply.status != 200 or data["output"] != "42":
                raise RuntimeError(f"tool call {reply.status}: {data}")

        async def stream_worker() -> None:
            while time.monotonic() < deadline:
                await attempt("streams", one_stream)

        async def tool_driver() -> None:
            pending: set[asyncio.Task[None]] = set()
            started, sent = time.monotonic(), 0
            while time.monotonic() < deadline:
                sent += 1
                task = asyncio.create_task(attempt("tool_calls", one_call))
                pending.add(task)
                task.add_done_callback(pending.discard)
                await asyncio.sleep(max(0.0, started + sent / TOOL_CALLS_PER_SECOND - time.monotonic()))
            await asyncio.gather(*pending)

        await asyncio.gather(tool_driver(), *(stream_worker() for _ in range(STREAMS)))
    assert not errors, errors[:10]
    return counts


def test_soak_streams_and_tool_calls(
    assistant_factory, manager: ServiceProcess, upstream: ScriptedUpstream
) -> None:
    upstream.script = lambda _body: "soak " * 40  # type: ignore[assignment]
    upstream.chunks, upstream.chunk_delay = 10, 0.02  # ~0.2 s per stream
    assistant = assistant_factory(MSAGENT_KNOWLEDGE="false")
    start_calculator(manager)

    asyncio.run(soak(assistant, manager, 5))  # warm-up: pools, caches and lazy imports settle
    services = {"assistant": assistant, "manager": manager}
    before = {name: usage_of(s.process.pid) for name, s in services.items()}  # type: ignore[union-attr]
    started = time.monotonic()
    counts = asyncio.run(soak(assistant, manager, SOAK_SECONDS))
    elapsed = time.monotonic() - started

    def settled() -> dict[str, Usage] | None:
        """Usage once closed connections have finished closing (a busy machine takes a while)."""
        now = {name: usage_of(s.process.pid) for name, s in services.items()}  # type: ignore[union-attr]
        within = all(now[n].fds - before[n].fds <= FD_GROWTH_BOUND[n] for n in services)
        return now if within else None

    try:
        after = wait_for(settled, 30, interval=0.5, what="descriptors to settle within the caps")
    finally:
        rate = counts["tool_calls"] / elapsed
        print(
            f"\nsoak {elapsed:.0f} s: {counts} ({rate:.0f} tool calls/s, {counts['streams'] / elapsed:.0f} streams/s)"
        )
        for name in services:
            print(f"  {name}: {before[name]} -> {usage_of(services[name].process.pid)}")  # type: ignore[union-attr]
    # the soak did real work whatever the machine's speed (figures printed above): every stream worker
    # streamed, and tool calls went through all along (at least 10 a second; the driver asks for 200)
    assert counts["streams"] >= STREAMS
    assert counts["tool_calls"] >= 10 * elapsed
    for name in services:
        assert after[name].sockets - before[name].sockets <= FD_GROWTH_BOUND[name], (name, before, after)
        assert after[name].rss_mb - before[name].rss_mb <= RSS_GROWTH_BOUND_MB, (name, before, after)


def start_calculator(manager: ServiceProcess) -> None:
    body = {"tool_name": "calculator", "tenant_id": "soak"}
    assert requests.post(manager.url + "/create_tool_service", json=body, timeout=30).status_code == 200
    wait_for(
        lambda: (
            requests.post(manager.url + "/check_tool_service_status", json=body, timeout=30).json()["output"][
                "status"
            ]
            == "running"
        ),
        120,
        what="the calculator node",
    )
