"""Assistant server app factory."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from ..settings import Settings
from ..store import Store
from ..web.envelopes import render_legacy, render_openai
from ..web.middleware import error_middleware

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", Store)


def _renderer(request: web.Request):
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
        app[STORE] = store
        yield
        await store.close()

    app.cleanup_ctx.append(lifecycle)
    app.router.add_get("/health", health)
    return app
