"""`msagent-srv up`: the whole stack in one process, with an embedded Redis when none answers."""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web
from pydantic import SecretStr

from .settings import Settings
from .store import connect, ping
from .store.embedded import EmbeddedRedis
from .store.errors import StoreUnavailable

log = logging.getLogger("msagent_srv.up")


async def _reachable(url: str) -> bool:
    client = connect(url, timeout=1.0)
    try:
        return await ping(client)
    except StoreUnavailable:
        return False
    finally:
        await client.aclose()


async def remove_nodes(app: web.Application) -> None:
    """`up` stops what it started: the nodes go with the stack (run again, they are created again)."""
    from .manager.keys import NODES

    nodes = app.get(NODES)
    if nodes is None:
        return
    try:
        records = await nodes.store.tools.all()
    except StoreUnavailable:
        return
    for record in records:
        try:
            await nodes.remove(record.tenant_id, record.tool_name)
        except Exception as exc:  # one stubborn node must not keep the others running
            log.warning("could not remove %s: %s", record.node_name, exc)
    if records:
        print(f"removed {len(records)} tool node(s)", flush=True)


async def ensure_node_image(tag: str) -> None:
    """A fresh machine has no node image: build it from this host's Python (no registry needed)."""
    import aiodocker
    from aiodocker.exceptions import DockerError

    from .node.image import build_from_host

    async with aiodocker.Docker() as docker:
        try:
            await docker.images.inspect(tag)
            return
        except DockerError as exc:
            if exc.status != 404:
                raise
    print(f"node image {tag} not found: building it from this host's Python...", flush=True)
    await build_from_host(
        tag, progress=lambda line: print(f"  {line}", flush=True) if line.startswith("Step") else None
    )


def _backends(settings: Settings) -> str:
    parts = [f"default {settings.model_server}"]
    if settings.model_path:
        parts.append(f"local model '{settings.served_model_name}' ({settings.model_path})")
    parts += [f"{model} -> {backend}" for model, backend in settings.routes().items()]
    return ", ".join(parts)


def run_stack(settings: Settings, keep_nodes: bool = False) -> None:
    from .assistant.app import create_app as assistant_app
    from .assistant.app import knowledge_off_reason
    from .manager.app import create_app as manager_app
    from .manager.runtime import create_runtime
    from .serve import serve

    def stop_starting(_signum: int, _frame: object) -> None:
        raise SystemExit(143)  # SIGTERM while starting: the same cleanup as a Ctrl-C (finally below)

    signal.signal(signal.SIGTERM, stop_starting)  # once serving, serve() handles SIGTERM itself
    embedded: EmbeddedRedis | None = None
    url = settings.redis_url_value()
    if not url or not asyncio.run(_reachable(url)):
        if url:
            log.warning("Redis at the configured URL does not answer; starting an embedded one")
        embedded = EmbeddedRedis(settings.data_dir / "redis").start()
        settings = settings.model_copy(update={"redis_url": SecretStr(embedded.url)})

    async def main() -> None:
        runtime = await create_runtime(settings)
        if runtime.name == "docker":
            await ensure_node_image(settings.node_image)

        def ready() -> None:
            summary = (
                "msagent-srv is up\n"
                f"  assistant  http://{settings.host}:{settings.assistant_port}/v1\n"
                f"  manager    http://{settings.host}:{settings.manager_port}  (API docs: /docs)\n"
                f"  runtime    {runtime.name}, node image {settings.node_image}\n"
                f"  models     {_backends(settings)}\n"
                f"  knowledge  {knowledge_off_reason(settings) or 'on (uploads at /v1/files)'}\n"
                f"  redis      {'embedded, data in ' + str(settings.data_dir / 'redis') if embedded else 'external'}\n"
                "Press Ctrl-C to stop."
            )
            print(summary, flush=True)

        manager = manager_app(settings, runtime)
        if not keep_nodes:
            manager.on_shutdown.append(remove_nodes)
        try:
            await serve(
                [
                    (manager, settings.host, settings.manager_port),
                    (assistant_app(settings), settings.host, settings.assistant_port),
                ],
                ready,
            )
        finally:
            await runtime.close()

    from .serve import run

    try:
        run(main())
    finally:
        if embedded:
            embedded.stop()
