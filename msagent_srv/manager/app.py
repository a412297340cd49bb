"""Tool manager app factory."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from ..node.hardening import set_non_dumpable
from ..settings import Settings
from ..store import Store
from ..store.api_keys import ApiKeys
from ..web.auth import API_KEYS, KeyChecker, auth_middleware, auth_required
from ..web.envelopes import render_legacy
from ..web.known_errors import KNOWN_ERRORS
from ..web.middleware import error_middleware
from . import openapi, upkeep
from .errors import TenantAtNodeCap, UnknownToolName, UnsafeOnThisRuntime
from .keys import METRICS, NODES, SETTINGS
from .metrics import ManagerMetrics
from .node_transport import CONNECTIONS_PER_NODE
from .nodes import NodeManager
from .runtime import Runtime, create_runtime

log = logging.getLogger("msagent_srv.manager")
# how the manager answers the node manager's refusals
REFUSALS: dict[type[BaseException], tuple[int, str]] = {
    UnknownToolName: (400, "unknown_tool"),
    UnsafeOnThisRuntime: (403, "unsafe_on_process_runtime"),
    TenantAtNodeCap: (429, "too_many_nodes"),
}
# liveness, reachability (the original's clients probe `GET /`) and the API's description
OPEN_PATHS = frozenset({"/", "/health", "/docs", "/openapi.json"})


async def _cancelled(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def create_app(settings: Settings, runtime: Runtime | None = None) -> web.Application:
    """The manager. `runtime` overrides the configured one (tests pass a shared Docker runtime)."""
    metrics = ManagerMetrics()
    middlewares = [error_middleware(lambda _r: render_legacy, metrics, {**KNOWN_ERRORS, **REFUSALS})]
    if auth_required(settings.auth, settings.host):
        checker = KeyChecker(settings.admin_key_value(), settings.key_cache_seconds)
        middlewares.append(auth_middleware(checker, OPEN_PATHS, "manager"))
    app = web.Application(middlewares=middlewares, client_max_size=4 << 20)
    app[SETTINGS] = settings
    app[METRICS] = metrics

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        """Each resource is released by the stack, newest first: a failure at start-up releases exactly
        what was acquired before it."""
        # its memory and /proc/<pid>/environ (the admin key, REDIS_URL) are out of reach of processes of
        # its user that lack CAP_SYS_PTRACE, such as the code a process-runtime node runs
        set_non_dumpable()
        async with contextlib.AsyncExitStack() as stack:
            store = Store.open(
                settings.redis_url_value() or "redis://127.0.0.1:6379/0",
                timeout=settings.redis_timeout,
                port_range=(settings.node_port_base, settings.node_port_max),
                port_bind_host=settings.node_bind_address,
            )
            stack.push_async_callback(store.close)
            node_runtime = runtime or await create_runtime(settings)
            if runtime is None:  # a runtime handed in belongs to the caller
                stack.push_async_callback(node_runtime.close)
            # One session for every call to nodes; connection reuse keeps the proxy overhead low.
            session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=256, limit_per_host=CONNECTIONS_PER_NODE, keepalive_timeout=30
                ),
                timeout=aiohttp.ClientTimeout(total=settings.node_call_timeout + 5, sock_connect=5),
            )
            stack.push_async_callback(session.close)
            nodes = NodeManager(store, node_runtime, session, settings)
            stack.push_async_callback(nodes.close)
            app[NODES] = nodes
            app[API_KEYS] = ApiKeys(store.redis)

            async def count_nodes() -> None:
                metrics.count_nodes([record.status for record in await store.tools.all()])

            metrics.refreshers.append(count_nodes)
            try:
                counts = await upkeep.reconcile(nodes)
                log.info("reconciled nodes", extra={"runtime": node_runtime.name, **counts})
            except Exception as exc:  # Redis down at start: serve 503s until it is back
                log.warning("reconciliation skipped: %s", exc)
            monitor = asyncio.create_task(
                upkeep.monitor(nodes, settings.monitor_interval), name="node monitor"
            )
            stack.push_async_callback(_cancelled, monitor)
            yield

    app.cleanup_ctx.append(lifecycle)
    openapi.add_routes(app)  # every route, and the document describing them
    return app
