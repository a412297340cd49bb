"""`python -m bench`: every benchmark of the project, one table, one JSON file (bench/results/all.json).

python -m bench [--quick] [--no-litellm]
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

from . import chat, knowledge, manager_nodes


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="shorter runs (1,000 chunks, fewer requests)")
    parser.add_argument("--no-litellm", action="store_true", help="skip the LiteLLM proxy comparison")
    args = parser.parse_args()
    quick = args.quick
    results: dict = {}
    chat_args = argparse.Namespace(
        requests=100 if quick else 300,
        seconds=3.0 if quick else 5.0,
        concurrency=32,
        litellm=not args.no_litellm,
    )
    results["chat"] = asyncio.run(chat.run(chat_args))
    responses_args = argparse.Namespace(**{**vars(chat_args), "litellm": False, "responses": True,
                                           "rounds": 1 if quick else 3})  # fmt: skip
    results["responses"] = asyncio.run(chat.run(responses_args))
    results["responses"]["vs_chat"] = chat.responses_table(results["responses"])
    node_args = argparse.Namespace(
        creates=5 if quick else 10,
        seconds=3.0 if quick else 5.0,
        concurrency=16,
        image="msagent-srv-node:latest",
    )
    results["manager_nodes"] = asyncio.run(manager_nodes.run(node_args))
    kb_args = argparse.Namespace(chunks=1000 if quick else 10000, queries=100 if quick else 300)
    results["knowledge"] = asyncio.run(knowledge.run(kb_args))

    print("\n== chat completions (emulated tool call), one worker, loopback ==")
    chat.print_table(results["chat"], chat_args.concurrency)
    chat.print_responses_table(results["responses"]["vs_chat"], chat_args.concurrency)
    print("\n== tool manager and nodes ==")
    manager_nodes.print_table(results["manager_nodes"], node_args.concurrency)
    print("\n== knowledge ==")
    knowledge.print_table(results["knowledge"])
    Path("bench/results").mkdir(parents=True, exist_ok=True)
    Path("bench/results/all.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
