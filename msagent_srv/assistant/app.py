"""Assistant server app factory."""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from .. import netguard
from ..serve import StartupError
from ..settings import Settings
from ..store import Store
from ..store.api_keys import ApiKeys
from ..store.keyword_index import KeywordIndex
from ..web.auth import API_KEYS, KeyChecker, auth_middleware, auth_required
from ..web.envelopes import render_anthropic, render_both, render_legacy, render_openai
from ..web.known_errors import KNOWN_ERRORS
from ..web.middleware import Renderer, error_middleware
from . import openapi
from .backends.aiohttp_pool import upstream_client
from .backends.http1 import MAX_EVENT_LINE
from .backends.router import BackendRouter, caller_guard
from .engine import ChatEngine
from .keys import CHAT, KNOWLEDGE, LITE, METRICS, MODELS, ROUTER, SETTINGS, STORE, TASKS, Knowledge
from .knowledge.base import KnowledgeBase
from .knowledge.embeddings import Embedder, HTTPEmbedder, SentenceTransformerEmbedder
from .knowledge.store import VectorStore, VectorStoreLocked
from .lite import LiteAgentService
from .metrics import AssistantMetrics
from .models_catalog import ModelCatalog
from .tasks import BackgroundTasks

OPEN_PATHS = frozenset({"/health", "/docs", "/openapi.json"})  # liveness and the API's description


# Endpoints the original servers had: their clients read `message`, OpenAI-style clients read `error`.
_ORIGINAL_PATHS = ("/v1/assistants/lite", "/v1/files")


def _renderer(request: web.Request) -> Renderer:
    if request.path.startswith(_ORIGINAL_PATHS):
        return render_both
    if request.path == "/v1/messages":
        return render_anthropic
    return render_openai if request.path.startswith("/v1/") else render_legacy


def create_app(settings: Settings) -> web.Application:
    metrics = AssistantMetrics()
    middlewares = [error_middleware(_renderer, metrics, KNOWN_ERRORS)]
    if auth_required(settings.auth, settings.host):
        checker = KeyChecker(settings.admin_key_value(), settings.key_cache_seconds)
        middlewares.append(auth_middleware(checker, OPEN_PATHS, "assistant server"))
    app = web.Application(middlewares=middlewares, client_max_size=32 << 20)
    app[SETTINGS] = settings
    app[METRICS] = metrics

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        """Each resource is released by the stack, newest first: a failure at start-up releases exactly
        what was acquired before it."""
        async with contextlib.AsyncExitStack() as stack:
            store = Store.open(
                settings.redis_url_value() or "redis://127.0.0.1:6379/0",
                timeout=settings.redis_timeout,
                history_cap=settings.session_history_cap,
                history_ttl=settings.session_ttl,
                history_max_bytes=settings.session_history_max_bytes,
                responses_ttl=settings.responses_ttl,
            )
            stack.push_async_callback(store.close)
            # One session for every configured upstream; per-request timeouts are set by each backend.
            timeout = aiohttp.ClientTimeout(total=settings.upstream_timeout, sock_connect=10)
            session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=512, limit_per_host=256, keepalive_timeout=30),
                timeout=timeout,
                read_bufsize=MAX_EVENT_LINE // 2,  # stream lines up to MAX_EVENT_LINE
            )
            stack.push_async_callback(session.close)
            http = upstream_client(settings.upstream_http, connect_timeout=10)  # MSAGENT_UPSTREAM_HTTP
            stack.push_async_callback(http.close)
            # URLs that callers name themselves (an agent's api_base, a tool's base_url) go through the
            # guard: its aiohttp session (SDKs, in-process tools) and a guarded model client.
            guard = caller_guard(settings)
            netguard.install(guard)
            stack.callback(netguard.install, None)
            caller_session = guard.session(
                timeout=timeout,
                read_bufsize=MAX_EVENT_LINE // 2,
                connector_options={"limit": 256, "limit_per_host": 64, "keepalive_timeout": 30},
            )
            stack.push_async_callback(caller_session.close)
            caller_http = upstream_client(settings.upstream_http, connect_timeout=10, guard=guard)
            stack.push_async_callback(caller_http.close)
            try:
                router = BackendRouter(settings, session, http)
            except ValueError as exc:
                raise StartupError(f"bad upstream address: {exc}") from None
            stack.push_async_callback(router.close)
            await router.start()
            try:
                knowledge = create_knowledge_base(settings, session, store, metrics)
            except VectorStoreLocked as exc:
                raise StartupError(str(exc)) from None
            if knowledge is not None:
                stack.push_async_callback(knowledge.close)
            tasks = BackgroundTasks()  # indexing runs on the knowledge base: it ends first
            stack.push_async_callback(tasks.close)
            app[STORE], app[ROUTER], app[TASKS] = store, router, tasks
            app[API_KEYS] = ApiKeys(store.redis)
            app[CHAT] = ChatEngine(settings, router, metrics)
            app[KNOWLEDGE] = Knowledge(knowledge, knowledge_off_reason(settings))
            app[MODELS] = ModelCatalog(settings, router, session, knowledge.embedder if knowledge else None)
            app[LITE] = LiteAgentService(
                settings, app[CHAT], router, caller_session, caller_http, store, knowledge
            )
            yield

    app.cleanup_ctx.append(lifecycle)
    openapi.add_routes(app)  # every route, and the document describing them
    return app


def knowledge_off_reason(settings: Settings) -> str | None:
    """Why file upload and retrieval are off, or None when they are on."""
    if not settings.knowledge:
        return "knowledge retrieval is turned off on this server (MSAGENT_KNOWLEDGE=false)"
    needed = ["qdrant_client"] + (["sentence_transformers"] if settings.embedding_backend == "local" else [])
    missing = [name for name in needed if importlib.util.find_spec(name) is None]
    if missing:
        return f"knowledge retrieval needs the [knowledge] extra ({', '.join(missing)} missing): pip install 'msagent-srv[knowledge]'"
    return None


def create_knowledge_base(
    settings: Settings, session: aiohttp.ClientSession, store: Store, metrics: AssistantMetrics | None = None
) -> KnowledgeBase | None:
    """Embeddings (loaded on first use) and the vector store, as configured; None when knowledge is off."""
    if knowledge_off_reason(settings) is not None:
        return None
    secret = settings.embedding_api_key.get_secret_value() if settings.embedding_api_key else None
    embedder: Embedder
    if settings.embedding_backend == "local":
        embedder = SentenceTransformerEmbedder(settings.embedding_model, dtype=settings.embedding_dtype)
    elif settings.embedding_backend == "dashscope":
        base = settings.embedding_base_url or "https://dashscope.aliyuncs.com/compatible-mode/v1"
        key = secret or (
            settings.dashscope_api_key.get_secret_value() if settings.dashscope_api_key else None
        )
        embedder = HTTPEmbedder(session, base, settings.embedding_model or "text-embedding-v3", key)
    else:
        base = settings.embedding_base_url or settings.openai_base_url
        key = secret or (settings.openai_api_key.get_secret_value() if settings.openai_api_key else None)
        embedder = HTTPEmbedder(session, base, settings.embedding_model or "text-embedding-3-small", key)
    qdrant_key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
    vectors = VectorStore(settings.data_dir / "qdrant", settings.qdrant_url, qdrant_key)
    return KnowledgeBase(
        vectors,
        embedder,
        store.files,
        KeywordIndex(store.redis),
        chunk_tokens=settings.chunk_tokens,
        chunk_overlap=settings.chunk_overlap,
        metrics=metrics,
    )
