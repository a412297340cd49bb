"""`msagent-srv assistant|manager|node|up|build-image`."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

from . import __version__, logs
from .settings import Settings, SettingsError

log = logging.getLogger("msagent_srv")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="address to listen on (env MSAGENT_HOST, default 127.0.0.1)")
    parser.add_argument("--redis-url", help="Redis URL (env REDIS_URL)")
    parser.add_argument("--data-dir", help="where state files live (env MSAGENT_DATA_DIR)")
    parser.add_argument("--log-level", help="DEBUG, INFO, WARNING (env MSAGENT_LOG_LEVEL)")
    parser.add_argument("--log-format", choices=["json", "text"], help="env MSAGENT_LOG_FORMAT")


def _manager_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runtime", choices=["auto", "docker", "process"], help="env MSAGENT_RUNTIME")
    parser.add_argument("--node-image", help="default tool node image (env MSAGENT_NODE_IMAGE)")
    parser.add_argument("--namespace", help="label for this manager's nodes (env MSAGENT_NAMESPACE)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="msagent-srv", description=__doc__)
    parser.add_argument("--version", action="version", version=__version__)
    commands = parser.add_subparsers(dest="command", required=True)

    manager = commands.add_parser("manager", help="run the tool manager (port 31511)")
    _common(manager)
    _manager_flags(manager)
    manager.add_argument("--port", type=int, dest="manager_port", help="default 31511")

    assistant = commands.add_parser("assistant", help="run the assistant server (port 31512)")
    _common(assistant)
    assistant.add_argument("--port", type=int, dest="assistant_port", help="default 31512")
    assistant.add_argument(
        "--model-server", choices=["dashscope", "openai", "ollama"], help="env MODEL_SERVER"
    )
    assistant.add_argument("--default-model", help="model for requests that name none")
    assistant.add_argument(
        "--model", dest="model_path", help="serve this GGUF file in-process (env MSAGENT_MODEL_PATH)"
    )
    assistant.add_argument(
        "--served-model-name", help="name of the --model model (env MSAGENT_SERVED_MODEL_NAME)"
    )

    up = commands.add_parser("up", help="run the whole stack; starts an embedded Redis when none answers")
    _common(up)
    _manager_flags(up)
    up.add_argument("--manager-port", type=int)
    up.add_argument("--assistant-port", type=int)
    up.add_argument("--keep-nodes", action="store_true", help="leave tool nodes running after Ctrl-C")
    up.add_argument("--model-server", choices=["dashscope", "openai", "ollama"], help="env MODEL_SERVER")
    up.add_argument("--model", dest="model_path", help="serve this GGUF file in-process")
    up.add_argument("--served-model-name", help="name of the --model model")

    node = commands.add_parser("node", help="run one tool node in this process")
    node.add_argument("--tool", required=True, help="tool name (see msagent-srv tools)")
    node.add_argument("--tool-cfg", default="{}", help="JSON object given to the tool")
    node.add_argument("--host", default="127.0.0.1")
    node.add_argument("--port", type=int, default=31513)
    node.add_argument("--token", default="", help="secret callers must send in X-Node-Token")
    node.add_argument("--call-timeout", type=float, default=60.0)

    commands.add_parser("tools", help="list the tools installed here")

    key_cmd = commands.add_parser("keys", help="tenant API keys of the manager (stored hashed in Redis)")
    key_cmd.add_argument("--redis-url", help="Redis URL (env REDIS_URL)")
    key_actions = key_cmd.add_subparsers(dest="action", required=True)
    create = key_actions.add_parser("create", help="make a key for a tenant (shown once)")
    create.add_argument("--tenant", required=True)
    create.add_argument("--name", default="")
    listing = key_actions.add_parser("list", help="keys by prefix, tenant and age")
    listing.add_argument("--tenant")
    revoke = key_actions.add_parser("revoke", help="revoke the key(s) starting with PREFIX")
    revoke.add_argument("prefix")

    build = commands.add_parser("build-image", help="build the tool node image")
    build.add_argument("--tag", default="msagent-srv-node:latest")
    source = build.add_mutually_exclusive_group()
    source.add_argument(
        "--from-host",
        action="store_true",
        help="assemble the image from this host's Python (no registry needed)",
    )
    source.add_argument(
        "--base-image",
        default="python:3.11-slim",
        help="base image for the Dockerfile build (default python:3.11-slim)",
    )
    build.add_argument(
        "--with",
        dest="extra",
        action="append",
        default=[],
        help="with --from-host: also include this installed distribution (repeatable)",
    )
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    """The settings, or an exit naming the variable whose value is wrong (no traceback)."""
    fields = set(Settings.model_fields)
    overrides: dict[str, Any] = {k: v for k, v in vars(args).items() if k in fields}
    try:
        return Settings.load(**overrides)
    except SettingsError as exc:
        sys.exit(f"msagent-srv {args.command}: invalid setting: {exc}")


async def _keys(args: argparse.Namespace) -> int:
    from .manager.schemas import ToolRef
    from .store import Store
    from .store.api_keys import ApiKeys

    url = Settings.load(redis_url=args.redis_url).redis_url_value()
    if not url:
        print("msagent-srv keys: set REDIS_URL or --redis-url", file=sys.stderr)
        return 2
    store = Store.open(url)
    api_keys = ApiKeys(store.redis)
    try:
        if args.action == "create":
            tenant = ToolRef(tool_name="x", tenant_id=args.tenant).tenant_id  # same rules as the API
            key, record = await api_keys.create(tenant, args.name)
            print(key)
            print(f"tenant {record.tenant_id}; shown once, stored hashed", file=sys.stderr)
        elif args.action == "list":
            for record in await api_keys.list(args.tenant):
                print(f"{record.prefix}...  {record.tenant_id}  {record.name}")
        else:
            count = await api_keys.revoke(args.prefix)
            print(f"revoked {count} key(s)")
            return 0 if count else 1
    finally:
        await store.close()
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.command == "node":
        from .node.main import run

        logs.configure()
        run(args.tool, json.loads(args.tool_cfg), args.host, args.port, args.token, args.call_timeout)
        return
    if args.command == "keys":
        sys.exit(asyncio.run(_keys(args)))
    if args.command == "tools":
        from .tools import available_tools

        print("\n".join(available_tools()))
        return
    if args.command == "build-image":
        from .node import image

        try:
            if args.from_host:
                image_id = asyncio.run(image.build_from_host(args.tag, args.extra))
            else:
                image_id = asyncio.run(image.build_from_dockerfile(args.tag, args.base_image))
        except image.ImageBuildError as exc:
            sys.exit(f"build-image: {exc}")
        print(f"built {args.tag} ({image_id[:19]})")
        return

    settings = _settings(args)
    logs.configure(settings.log_level, settings.log_format)
    from .serve import StartupError

    try:
        _run_service(args, settings)
    except StartupError as exc:
        sys.exit(f"msagent-srv {args.command}: {exc}")


def _run_service(args: argparse.Namespace, settings: Settings) -> None:
    if args.command == "manager":
        from .manager.app import create_app as manager_app
        from .serve import run, serve

        run(
            serve(
                [(manager_app(settings), settings.host, settings.manager_port)],
                lambda: log.info("manager listening", extra={"port": settings.manager_port}),
            )
        )
    elif args.command == "assistant":
        from .assistant.app import create_app as assistant_app
        from .serve import run, serve

        run(
            serve(
                [(assistant_app(settings), settings.host, settings.assistant_port)],
                lambda: log.info("assistant listening", extra={"port": settings.assistant_port}),
            )
        )
    elif args.command == "up":
        from .up import run_stack

        run_stack(settings, keep_nodes=args.keep_nodes)


if __name__ == "__main__":
    main()
