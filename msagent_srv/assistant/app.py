"""Assistant server app factory."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from ..settings import Settings
from ..store import Store
from ..web.envelopes import render_legacy, render_openai
from ..web.middleware import Renderer, error_middleware
from . import routes
from .backends.router import BackendRouter
from .chat import ChatService
from .keys import CHAT, ROUTER, SETTINGS, STORE


def _renderer(request: web.Request) -> Renderer:
    return render_openai if request.path.startswith("/v1/") else render_legacy


async def health(request: web.Request) -> web.Response:
    await request.app[STORE].ping()
    return web.json_response({"status": "ok"})


def create_app(settings: Settings) -> web.Application:
    app = web.Application(middlewares=[error_middleware(_renderer)], client_max_size=32 << 20)
    app[SETTINGS] = settings

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        store = Store.open(
            settings.redis_url_value() or "redis://127.0.0.1:6379/0",
            timeout=settings.redis_timeout,
            history_cap=settings.session_history_cap,
            history_ttl=settings.session_ttl,
        )
        # One session for every upstream call; per-request timeouts are set by each backend.
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=512, limit_per_host=256, keepalive_timeout=30),
            timeout=aiohttp.ClientTimeout(total=settings.upstream_timeout, sock_connect=10),
        )
        router = BackendRouter(settings, session)
        await router.start()
        app[STORE], app[ROUTER] = store, router
        app[CHAT] = ChatService(settings, router)
        yield
        await router.close()
        await session.close()
        await store.close()

    app.cleanup_ctx.append(lifecycle)
    app.router.add_get("/health", health)
    routes.add_routes(app)
    return app
