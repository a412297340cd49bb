"""Benchmark: what our assistant server adds to a chat completion with an emulated tool call, side by side
with calling the same scripted upstream directly (and, with --litellm, the LiteLLM proxy in front of it).

    python -m bench.chat [--requests 300] [--seconds 5] [--concurrency 32] [--litellm]
    python -m bench.chat --upstream-http both [--rounds 3]
    python -m bench.chat --responses [--rounds 3]

Reports latency p50/p99 at concurrency 1 and requests/s at --concurrency, streaming and not; the table is
ratios against direct. Writes bench/results/chat.json.

`--upstream-http both` (issue #14) starts our server twice against the same scripted upstream, once per
client for model calls (MSAGENT_UPSTREAM_HTTP=http1, our HTTP/1.1 client; =aiohttp, aiohttp's tuned
ClientSession), and measures both in one run: rounds alternate the order of the targets so a busy machine
weighs on each alike; latencies are pooled over the rounds, requests/s is the rounds' median, and so is the
CPU time each server process spends per request at --concurrency (Linux /proc: steadier than requests/s on a
busy machine). A second table gives aiohttp against http1 (added latency, requests/s, server CPU per
request). Writes bench/results/chat-upstream-http.json.

`--responses` (issue #15) measures the Responses API (`POST /v1/responses`, the same emulated tool call, the
flat tool form; with `store: false` and, as by default, stored in Redis) beside chat completions on the same
server, in alternating rounds as above; a second table gives each Responses row against chat completions.
Writes bench/results/chat-responses.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
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
RESPONSES_TOOLS = [{"type": "function", **tool["function"]} for tool in TOOLS]  # the flat form


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
        if check_tool and "input" in payload:  # Responses API: the call is a function_call item
            if stream:
                assert b'"type":"response.function_call_arguments.done"' in raw, raw[:300]
            else:
                assert json.loads(raw)["output"][-1]["name"] == "get_weather", raw[:300]
        elif check_tool:  # the emulated call must really be parsed
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


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far (Linux /proc), else None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure_rounds(
    targets: dict[str, tuple[str, dict[str, Any], bool]], pids: dict[str, int], args: argparse.Namespace
) -> dict[str, Any]:
    """Every target in every mode, `args.rounds` times, the order of the targets alternating by round; with
    the CPU time its process spent per request at --concurrency (less sensitive to a busy machine than
    requests/s: other processes take cores, not the server's instructions)."""
    latencies: dict[tuple[str, str], list[float]] = {}
    rates: dict[tuple[str, str], list[float]] = {}
    cpu: dict[tuple[str, str], list[float]] = {}
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
        for round_ in range(args.rounds):
            names = list(targets) if round_ % 2 == 0 else list(reversed(targets))
            for stream in (False, True):
                mode = "stream" if stream else "plain"
                for name in names:
                    url, body, check = targets[name]
                    call = make_call(session, url, body, stream, check)
                    await sequential(call, 50)  # warm-up
                    latencies.setdefault((name, mode), []).extend(await sequential(call, args.requests))
                    done = 0

                    async def counted(call: Any = call) -> None:
                        nonlocal done
                        await call()
                        done += 1

                    before = cpu_seconds(pids[name])
                    rates.setdefault((name, mode), []).append(
                        await throughput(counted, args.seconds, args.concurrency)
                    )
                    after = cpu_seconds(pids[name])
                    if before is not None and after is not None and done:
                        cpu.setdefault((name, mode), []).append((after - before) / done * 1e6)
    results: dict[str, Any] = {}
    for (name, mode), values in latencies.items():
        results.setdefault(name, {})[mode] = {
            "p50_ms": percentile(values, 50) * 1e3,
            "p99_ms": percentile(values, 99) * 1e3,
            "rps": statistics.median(rates[name, mode]),
            "rps_rounds": rates[name, mode],
            "cpu_us_per_request": statistics.median(cpu[name, mode]) if (name, mode) in cpu else None,
            "cpu_us_rounds": cpu.get((name, mode), []),
        }
    return results


def server_name(client: str | None) -> str:
    return "msagent-srv" if client is None else f"msagent-srv[{client}]"


async def run(args: argparse.Namespace) -> dict[str, Any]:
    upstream_http = getattr(args, "upstream_http", None)
    clients: list[str | None] = [upstream_http] if upstream_http != "both" else ["http1", "aiohttp"]
    workdir = Path(tempfile.mkdtemp(prefix="msagent-bench-chat-"))
    redis = EmbeddedRedis(workdir / "redis", appendonly=False).start()
    upstream_port = free_port()
    processes = [start_process(["-m", "bench.upstream", "--port", str(upstream_port)])]
    pids = {"direct": processes[0].pid}
    assistant_ports: dict[str | None, int] = {}
    for client in clients:
        port = assistant_ports[client] = free_port()
        env = {
            "REDIS_URL": redis.url,
            "MODEL_SERVER": "openai",
            "OPENAI_BASE_URL": f"http://127.0.0.1:{upstream_port}/v1",
            "MSAGENT_LOG_LEVEL": "WARNING",
            "MSAGENT_DATA_DIR": str(workdir if client is None else workdir / client),
        }
        if client is not None:
            env["MSAGENT_UPSTREAM_HTTP"] = client
        processes.append(start_process(["-m", "msagent_srv.cli", "assistant", "--port", str(port)], env))
        pids[server_name(client)] = processes[-1].pid
    try:
        await wait_http(f"http://127.0.0.1:{upstream_port}/v1/chat/completions")
        for port in assistant_ports.values():
            await wait_http(f"http://127.0.0.1:{port}/health")
        targets = {
            "direct": (
                f"http://127.0.0.1:{upstream_port}/v1/chat/completions",
                {"model": "m", "messages": MESSAGES},
                False,
            ),
        }
        for client, port in assistant_ports.items():
            targets[server_name(client)] = (
                f"http://127.0.0.1:{port}/v1/chat/completions",
                {"model": "m", "messages": MESSAGES, "tools": TOOLS},
                True,
            )
        if getattr(
            args, "responses", False
        ):  # the Responses API beside chat completions, same server, same upstream
            port = assistant_ports[None]
            body = {"model": "m", "input": MESSAGES[0]["content"], "tools": RESPONSES_TOOLS}
            url = f"http://127.0.0.1:{port}/v1/responses"
            targets["responses"] = (url, {**body, "store": False}, True)
            targets["responses+store"] = (url, body, True)  # kept in Redis, as by default
            pids["responses"] = pids["responses+store"] = pids[server_name(None)]
            return await measure_rounds(targets, pids, args)
        if upstream_http is not None:
            return await measure_rounds(targets, pids, args)
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
        f"{'server':<22}{'mode':<8}{'p50 ms':>9}{'p99 ms':>9}{'added p50':>11}{'added p99':>11}"
        f"{'req/s c=' + str(concurrency):>13}{'vs direct':>11}"
    )
    for name, modes in results.items():
        for mode, row in modes.items():
            base = direct[mode]
            added = "" if name == "direct" else f"{row['p50_ms'] - base['p50_ms']:.2f}"
            added99 = "" if name == "direct" else f"{row['p99_ms'] - base['p99_ms']:.2f}"
            print(
                f"{name:<22}{mode:<8}{row['p50_ms']:>9.2f}{row['p99_ms']:>9.2f}{added:>11}{added99:>11}"
                f"{row['rps']:>13.0f}{row['rps'] / base['rps']:>11.2f}"
            )


def clients_table(results: dict[str, Any]) -> dict[str, Any]:
    """aiohttp against http1 per mode: the latency each adds over direct, requests/s; ratios > 1 mean
    http1 is better (aiohttp adds more, serves fewer)."""
    direct, ours, theirs = results["direct"], results[server_name("http1")], results[server_name("aiohttp")]
    table: dict[str, Any] = {}
    for mode in direct:
        row: dict[str, float | None] = {}
        for q in ("p50_ms", "p99_ms"):
            row[f"http1_added_{q}"] = ours[mode][q] - direct[mode][q]
            row[f"aiohttp_added_{q}"] = theirs[mode][q] - direct[mode][q]
            added = row[f"http1_added_{q}"]  # None: http1 added nothing measurable, no ratio
            row[f"added_{q}_aiohttp_over_http1"] = row[f"aiohttp_added_{q}"] / added if added > 0.01 else None
        row["http1_rps"], row["aiohttp_rps"] = ours[mode]["rps"], theirs[mode]["rps"]
        row["rps_http1_over_aiohttp"] = ours[mode]["rps"] / theirs[mode]["rps"]
        if ours[mode]["cpu_us_per_request"] and theirs[mode]["cpu_us_per_request"]:
            row["http1_cpu_us"], row["aiohttp_cpu_us"] = (
                ours[mode]["cpu_us_per_request"],
                theirs[mode]["cpu_us_per_request"],
            )
            row["cpu_aiohttp_over_http1"] = row["aiohttp_cpu_us"] / row["http1_cpu_us"]
        table[mode] = row
    return table


def print_clients_table(table: dict[str, Any], concurrency: int) -> None:
    print("\n== model-call client: http1 (ours) vs aiohttp (tuned), same server, same upstream ==")
    print(
        f"{'mode':<8}{'added p50 ms':>22}{'ratio':>7}{'added p99 ms':>22}{'ratio':>7}"
        f"{'req/s c=' + str(concurrency):>20}{'ratio':>7}{'server CPU us/req':>20}{'ratio':>7}"
    )
    print(f"{'':<8}" + f"{'http1 / aiohttp':>22}{'':>7}" * 2 + f"{'http1 / aiohttp':>20}{'':>7}" * 2)
    for mode, row in table.items():
        p50 = f"{row['http1_added_p50_ms']:.2f} / {row['aiohttp_added_p50_ms']:.2f}"
        p99 = f"{row['http1_added_p99_ms']:.2f} / {row['aiohttp_added_p99_ms']:.2f}"
        rps = f"{row['http1_rps']:.0f} / {row['aiohttp_rps']:.0f}"
        cpu = f"{row['http1_cpu_us']:.0f} / {row['aiohttp_cpu_us']:.0f}" if "http1_cpu_us" in row else "-"
        cpu_ratio = f"{row['cpu_aiohttp_over_http1']:.2f}" if "http1_cpu_us" in row else "-"
        p50_ratio, p99_ratio = (
            "-"
            if row[f"added_{q}_aiohttp_over_http1"] is None
            else f"{row[f'added_{q}_aiohttp_over_http1']:.2f}"
            for q in ("p50_ms", "p99_ms")
        )
        print(
            f"{mode:<8}{p50:>22}{p50_ratio:>7}{p99:>22}{p99_ratio:>7}{rps:>20}"
            f"{row['rps_http1_over_aiohttp']:>7.2f}{cpu:>20}{cpu_ratio:>7}"
        )
    print(
        "ratios: aiohttp's added latency and CPU over http1's, http1's req/s over aiohttp's "
        "(> 1: http1 better)"
    )


def responses_table(results: dict[str, Any]) -> dict[str, Any]:
    """The Responses API rows against chat completions on the same server: added latency over direct and
    requests/s, each as a ratio to chat completions' (1.0: the same; 1.10 would be 10% slower)."""
    direct, chat = results["direct"], results[server_name(None)]
    table: dict[str, Any] = {}
    for name in ("responses", "responses+store"):
        for mode in direct:
            chat_added = chat[mode]["p50_ms"] - direct[mode]["p50_ms"]
            added = results[name][mode]["p50_ms"] - direct[mode]["p50_ms"]
            table[f"{name} {mode}"] = {
                "chat_added_p50_ms": chat_added, "added_p50_ms": added,
                "added_p50_over_chat": added / chat_added if chat_added > 0.01 else None,
                "chat_rps": chat[mode]["rps"], "rps": results[name][mode]["rps"],
                "chat_rps_over_rps": chat[mode]["rps"] / results[name][mode]["rps"],
                "chat_cpu_us": chat[mode]["cpu_us_per_request"], "cpu_us": results[name][mode]["cpu_us_per_request"],
            }  # fmt: skip
    return table


def print_responses_table(table: dict[str, Any], concurrency: int) -> None:
    print("\n== Responses API vs chat completions: same server, same upstream, same emulated tool call ==")
    print(f"{'row':<24}{'added p50 ms':>20}{'ratio':>7}{'req/s c=' + str(concurrency):>18}{'ratio':>7}"
          f"{'CPU us/req':>18}")  # fmt: skip
    print(f"{'':<24}{'chat / this':>20}{'':>7}{'chat / this':>18}{'':>7}{'chat / this':>18}")
    for name, row in table.items():
        ratio = "-" if row["added_p50_over_chat"] is None else f"{row['added_p50_over_chat']:.2f}"
        cpu = (
            f"{row['chat_cpu_us']:.0f} / {row['cpu_us']:.0f}" if row["cpu_us"] and row["chat_cpu_us"] else "-"
        )
        print(
            f"{name:<24}{row['chat_added_p50_ms']:>9.2f} / {row['added_p50_ms']:<8.2f}{ratio:>7}"
            f"{row['chat_rps']:>8.0f} / {row['rps']:<7.0f}{row['chat_rps_over_rps']:>7.2f}{cpu:>18}"
        )
    print(
        "ratios: this row's added p50 over chat's, chat's req/s over this row's (1.00: the same, > 1: slower)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--litellm", action="store_true", help="also measure the LiteLLM proxy (own venv)")
    parser.add_argument(
        "--upstream-http",
        choices=["http1", "aiohttp", "both"],
        help="start our server with this model-call client (MSAGENT_UPSTREAM_HTTP); both: side by side",
    )
    parser.add_argument(
        "--responses", action="store_true", help="the Responses API side by side with chat completions"
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="with --upstream-http/--responses: rounds per target"
    )
    parser.add_argument("--json", help="default bench/results/chat.json (chat-upstream-http.json)")
    args = parser.parse_args()
    if sum((args.upstream_http is not None, args.litellm, args.responses)) > 1:
        parser.error("--litellm, --upstream-http and --responses are separate runs")
    results = asyncio.run(run(args))
    print_table(results, args.concurrency)
    if args.upstream_http == "both":
        results["clients"] = clients_table(results)
        print_clients_table(results["clients"], args.concurrency)
    if args.responses:
        results["vs_chat"] = responses_table(results)
        print_responses_table(results["vs_chat"], args.concurrency)
    default = "chat.json" if args.upstream_http is None else "chat-upstream-http.json"
    default = "chat-responses.json" if args.responses else default
    write_json(args.json or f"bench/results/{default}", results)


if __name__ == "__main__":
    main()
