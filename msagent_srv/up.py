"""`msagent-srv up`: the whole stack in one process, with an embedded Redis when none answers."""

from __future__ import annotations

import asyncio
import logging

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


def run_stack(settings: Settings) -> None:
    from .assistant.app import create_app as assistant_app
    from .manager.app import create_app as manager_app
    from .manager.runtime import create_runtime
    from .serve import serve

    embedded: EmbeddedRedis | None = None
    url = settings.redis_url_value()
    if not url or not asyncio.run(_reachable(url)):
        if url:
            log.warning("Redis at the configured URL does not answer; starting an embedded one")
        embedded = EmbeddedRedis(settings.data_dir / "redis").start()
        settings = settings.model_copy(update={"redis_url": SecretStr(embedded.url)})

    async def main() -> None:
        runtime = await create_runtime(settings)

        def ready() -> None:
            summary = (
                "msagent-srv is up\n"
                f"  assistant  http://{settings.host}:{settings.assistant_port}/v1\n"
                f"  manager    http://{settings.host}:{settings.manager_port}  (API docs: /docs)\n"
                f"  runtime    {runtime.name}, node image {settings.node_image}\n"
                f"  redis      {'embedded, data in ' + str(settings.data_dir / 'redis') if embedded else 'external'}\n"
                "Press Ctrl-C to stop."
            )
            print(summary, flush=True)

        try:
            await serve(
                [
                    (manager_app(settings, runtime), settings.host, settings.manager_port),
                    (assistant_app(settings), settings.host, settings.assistant_port),
                ],
                ready,
            )
        finally:
            await runtime.close()

    try:
        asyncio.run(main())
    finally:
        if embedded:
            embedded.stop()
