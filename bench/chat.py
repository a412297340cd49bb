"""Benchmark: what our assistant server adds to a chat completion with an emulated tool call, side by side
with calling the same scripted upstream directly (and, with --litellm, the LiteLLM proxy in front of it).

    python -m bench.chat [--requests 300] [--seconds 5] [--concurrency 32] [--litellm]

Reports latency p50/p99 at concurrency 1 and requests/s at --concurrency, streaming and not; the table is
ratios against direct. Writes bench/results/chat.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any

import aiohttp

from msagent_srv.store.embedded import EmbeddedRedis, free_port

from .common import percentile, sequential, start_process, throughput, wait_http, write_json

TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Current weather of a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
                   "required": ["city"]}}}]  # fmt: skip
MESSAGES = [{"role": "user", "content": "What is the weather in Paris?"}]


def make_call(
    session: aiohttp.ClientSession,
    url: str,
    body: dict[str, Any],
    stream: bool,
    check_tool: bool,
    key: str = "bench-key",
):
    payload = {**body, "stream": stream}
    headers = {"Authorization": f"Bearer {key}"}

    async def call() -> None:
        async with session.post(url, json=payload, headers=headers) as response:
            raw = await response.read()
            if response.status != 200:
                raise RuntimeError(f"{url}: HTTP {response.status} {raw[:200]!r}")
        if check_tool:  # the emulated call must really be parsed
            if stream:
                assert b'"tool_calls":[{"index":0,"id":"call_' in raw, raw[:300]
            else:
                assert (
                    json.loads(raw)["choices"][0]["message"]["tool_calls"][0]["function"]["name"]
                    == "get_weather"
                )

    return call


async def measure(
    url: str, body: dict[str, Any], check_tool: bool, args: argparse.Namespace, key: str = "bench-key"
) -> dict[str, Any]:
    connector = aiohttp.TCPConnector(limit=0)
    results: dict[str, Any] = {}
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
        for stream in (False, True):
            call = make_call(session, url, body, stream, check_tool, key)
            await sequential(call, 50)  # warm-up
            latencies = await sequential(call, args.requests)
            rps = await throughput(call, args.seconds, args.concurrency)
            results["stream" if stream else "plain"] = {
                "p50_ms": percentile(latencies, 50) * 1e3,
                "p99_ms": percentile(latencies, 99) * 1e3,
                "rps": rps,
            }
    return results


async def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="msagent-bench-chat-"))
    redis = EmbeddedRedis(workdir / "redis", appendonly=False).start()
    upstream_port, assistant_port = free_port(), free_port()
    processes = [start_process(["-m", "bench.upstream", "--port", str(upstream_port)])]
    processes.append(
        start_process(
            ["-m", "msagent_srv.cli", "assistant", "--port", str(assistant_port)],
            {
                "REDIS_URL": redis.url,
                "MODEL_SERVER": "openai",
                "OPENAI_BASE_URL": f"http://127.0.0.1:{upstream_port}/v1",
                "MSAGENT_LOG_LEVEL": "WARNING",
                "MSAGENT_DATA_DIR": str(workdir),
            },
        )
    )
    try:
        await wait_http(f"http://127.0.0.1:{upstream_port}/v1/chat/completions")
        await wait_http(f"http://127.0.0.1:{assistant_port}/health")
        targets = {
            "direct": (
                f"http://127.0.0.1:{upstream_port}/v1/chat/completions",
                {"model": "m", "messages": MESSAGES},
                False,
            ),
            "msagent-srv": (
                f"http://127.0.0.1:{assistant_port}/v1/chat/completions",
                {"model": "m", "messages": MESSAGES, "tools": TOOLS},
                True,
            ),
        }
        if args.litellm:
            from .litellm_proxy import MASTER_KEY, start_litellm

            litellm_url, litellm_process = await start_litellm(upstream_port, workdir)
            processes.append(litellm_process)
            targets["litellm"] = (litellm_url, {"model": "m", "messages": MESSAGES}, False)
        keys = {"litellm": MASTER_KEY} if args.litellm else {}
        return {
            name: await measure(url, body, check, args, keys.get(name, "bench-key"))
            for name, (url, body, check) in targets.items()
        }
    finally:
        for process in processes:
            process.terminate()
            process.wait()
        redis.stop()


def print_table(results: dict[str, Any], concurrency: int) -> None:
    direct = results["direct"]
    print(
        f"{'server':<14}{'mode':<8}{'p50 ms':>9}{'p99 ms':>9}{'added p50':>11}{'added p99':>11}"
        f"{'req/s c=' + str(concurrency):>13}{'vs direct':>11}"
    )
    for name, modes in results.items():
        for mode, row in modes.items():
            base = direct[mode]
            added = "" if name == "direct" else f"{row['p50_ms'] - base['p50_ms']:.2f}"
            added99 = "" if name == "direct" else f"{row['p99_ms'] - base['p99_ms']:.2f}"
            print(
                f"{name:<14}{mode:<8}{row['p50_ms']:>9.2f}{row['p99_ms']:>9.2f}{added:>11}{added99:>11}"
                f"{row['rps']:>13.0f}{row['rps'] / base['rps']:>11.2f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--litellm", action="store_true", help="also measure the LiteLLM proxy (own venv)")
    parser.add_argument("--json", default="bench/results/chat.json")
    args = parser.parse_args()
    results = asyncio.run(run(args))
    print_table(results, args.concurrency)
    write_json(args.json, results)


if __name__ == "__main__":
    main()
