"""Benchmark: tool node create->running latency, and execute_tool through the manager vs. the node
directly, side by side in one run on loopback.

    python -m bench.manager_nodes [--creates 10] [--seconds 5] [--concurrency 16] [--json bench/results/manager_nodes.json]

Needs a Docker engine and the node image (`msagent-srv build-image --from-host`). Starts its own Redis
and manager; removes what it created.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from msagent_srv.store.embedded import EmbeddedRedis, free_port

NODE_TOKEN_HEADER = "X-Node-Token"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def wait_healthy(session: aiohttp.ClientSession, url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            async with session.get(url) as r:
                if r.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.05)
    raise RuntimeError(f"{url} not healthy")


async def load(
    session: aiohttp.ClientSession, url: str, body: dict, headers: dict, seconds: float, concurrency: int
) -> tuple[float, list[float]]:
    latencies: list[float] = []
    deadline = time.monotonic() + seconds

    async def worker() -> None:
        while time.monotonic() < deadline:
            started = time.perf_counter()
            async with session.post(url, json=body, headers=headers) as r:
                await r.read()
                assert r.status == 200, r.status
            latencies.append(time.perf_counter() - started)

    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return len(latencies) / (time.monotonic() - started), latencies


async def run(args: argparse.Namespace) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="msagent-bench-"))
    redis = EmbeddedRedis(workdir / "redis", appendonly=False).start()
    port = free_port()
    env = {
        **os.environ,
        "REDIS_URL": redis.url,
        "MSAGENT_RUNTIME": "docker",
        "MSAGENT_NODE_NETWORK": "bridge",  # the bench calls the node's port directly, beside the manager
        "MSAGENT_NAMESPACE": "bench",
        "MSAGENT_NODE_IMAGE": args.image,
        "MSAGENT_LOG_LEVEL": "WARNING",
        "MSAGENT_DATA_DIR": str(workdir),
    }
    manager = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "msagent_srv.cli", "manager", "--port", str(port), env=env
    )
    base = f"http://127.0.0.1:{port}"
    results: dict = {}
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
            await wait_healthy(session, base + "/health")
            create_latencies = []
            for i in range(args.creates):
                tenant = f"bench{i}"
                started = time.perf_counter()
                async with session.post(
                    base + "/create_tool_service", json={"tool_name": "calculator", "tenant_id": tenant}
                ) as r:
                    assert r.status == 200
                while True:
                    async with session.post(
                        base + "/check_tool_service_status",
                        json={"tool_name": "calculator", "tenant_id": tenant},
                    ) as r:
                        status = (await r.json())["output"]["status"]
                    if status == "running":
                        break
                    if status == "failed":
                        raise RuntimeError("node failed to start")
                    await asyncio.sleep(0.01)
                create_latencies.append(time.perf_counter() - started)
            results["create_to_running_ms"] = {
                "p50": percentile(create_latencies, 50) * 1e3,
                "p99": percentile(create_latencies, 99) * 1e3,
                "n": len(create_latencies),
            }
            # the node's own address and secret, to call it directly
            import redis as redis_sync

            record = json.loads(
                redis_sync.Redis.from_url(redis.url).hget("msagent:tenant:bench0:tools", "calculator")
            )
            direct_url = f"http://127.0.0.1:{record['port']}/execute_tool"
            direct_headers = {NODE_TOKEN_HEADER: record["node_token"]}
            params = {"expression": "6*7"}
            for _ in range(200):  # warm up both paths
                async with session.post(direct_url, json={"params": params}, headers=direct_headers) as r:
                    await r.read()
            sequential = {}
            for name, url, body, headers in (
                ("direct", direct_url, {"params": params}, direct_headers),
                (
                    "manager",
                    base + "/execute_tool",
                    {"tool_name": "calculator", "tenant_id": "bench0", "params": params},
                    {},
                ),
            ):
                _, latencies = await load(session, url, body, headers, args.seconds / 2, 1)
                rps, _ = await load(session, url, body, headers, args.seconds, args.concurrency)
                sequential[name] = {
                    "p50_ms": percentile(latencies, 50) * 1e3,
                    "p99_ms": percentile(latencies, 99) * 1e3,
                    "rps": rps,
                }
            results["execute_tool"] = sequential
            results["added_latency_ms"] = {
                q: sequential["manager"][f"{q}_ms"] - sequential["direct"][f"{q}_ms"] for q in ("p50", "p99")
            }
            results["proxied_rps_ratio"] = sequential["manager"]["rps"] / sequential["direct"]["rps"]
            for i in range(args.creates):
                async with session.post(
                    base + "/remove_tool", json={"tool_name": "calculator", "tenant_id": f"bench{i}"}
                ):
                    pass
    finally:
        manager.terminate()
        await manager.wait()
        redis.stop()
    return results


def print_table(results: dict, concurrency: int) -> None:
    c, e = results["create_to_running_ms"], results["execute_tool"]
    print(f"{'measure':<38}{'value':>12}")
    print(f"{'create->running p50 / p99 (ms)':<38}{c['p50']:>6.0f} / {c['p99']:.0f}")
    print(f"{'direct to node p50 / p99 (ms)':<38}{e['direct']['p50_ms']:>6.2f} / {e['direct']['p99_ms']:.2f}")
    print(
        f"{'through manager p50 / p99 (ms)':<38}{e['manager']['p50_ms']:>6.2f} / {e['manager']['p99_ms']:.2f}"
    )
    print(
        f"{'added latency p50 / p99 (ms)':<38}{results['added_latency_ms']['p50']:>6.2f} / {results['added_latency_ms']['p99']:.2f}"
    )
    print(f"{'requests/s direct, c=' + str(concurrency):<38}{e['direct']['rps']:>12.0f}")
    print(f"{'requests/s via manager, c=' + str(concurrency):<38}{e['manager']['rps']:>12.0f}")
    print(f"{'proxied / direct requests/s':<38}{results['proxied_rps_ratio']:>12.2f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--creates", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--image", default="msagent-srv-node:latest")
    parser.add_argument("--json", default="bench/results/manager_nodes.json")
    args = parser.parse_args()
    results = asyncio.run(run(args))
    print_table(results, args.concurrency)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
