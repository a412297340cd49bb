"""Which backend serves a model: the routing table, else the server's default backend."""

from __future__ import annotations

import aiohttp

from ...netguard import NetGuard
from ...settings import Settings
from ...web.auth import private_urls_allowed
from .base import Backend
from .dashscope_backend import DashScopeBackend
from .http1 import Http1Client
from .openai_compat import OpenAICompatibleBackend


class UnknownBackend(LookupError):
    pass


class BackendRouter:
    def __init__(self, settings: Settings, session: aiohttp.ClientSession, http: Http1Client) -> None:
        """Raises ValueError when a configured upstream address is not an http(s) URL."""
        self.settings = settings
        timeout = settings.upstream_timeout
        secret = lambda value: value.get_secret_value() if value else None  # noqa: E731
        self.backends: dict[str, Backend] = {
            "dashscope": DashScopeBackend(
                session, settings.dashscope_base_url, secret(settings.dashscope_api_key), timeout
            ),
            "openai": OpenAICompatibleBackend(
                http, settings.openai_base_url, secret(settings.openai_api_key), timeout=timeout
            ),
            "ollama": OpenAICompatibleBackend(
                http,
                ollama_url(settings.ollama_host),
                name="ollama",
                timeout=timeout,
                needs_key=False,
            ),
        }
        self.routes = settings.routes()
        if settings.model_path:
            from .local import LocalModelBackend

            self.backends["local"] = LocalModelBackend(settings.model_path, n_ctx=settings.local_n_ctx)
            self.routes.setdefault(settings.served_model_name, "local")

    async def start(self) -> None:
        """Load what must be loaded before the first request (a local model)."""
        local = self.backends.get("local")
        if local is not None:
            await local.load()  # type: ignore[attr-defined]

    def backend_for(self, model: str) -> Backend:
        name = self.routes.get(model, self.settings.model_server)
        backend = self.backends.get(name)
        if backend is None:
            raise UnknownBackend(f"model '{model}' routes to backend '{name}', which is not configured")
        return backend

    def models(self) -> list[tuple[str, str]]:
        """(model, backend) pairs the server knows by name."""
        known = dict(self.routes)
        if self.settings.default_model:
            known.setdefault(
                self.settings.default_model,
                self.routes.get(self.settings.default_model, self.settings.model_server),
            )
        return sorted(known.items())

    async def close(self) -> None:
        for backend in self.backends.values():
            await backend.close()


def ollama_url(host: str) -> str:
    """Ollama's OpenAI-compatible base URL from OLLAMA_HOST, which may omit the scheme (as Ollama allows)."""
    host = host.strip().rstrip("/")
    if "://" not in host:
        host = "http://" + host
    return host + "/v1"


def upstream_urls(settings: Settings) -> list[str]:
    """The upstreams the operator configured (allowed to callers whatever addresses they have). Only those
    set explicitly: Ollama's default (a loopback port) is no choice of the operator's."""
    chosen = settings.model_fields_set
    urls = [settings.openai_base_url, settings.dashscope_base_url]
    if "ollama_host" in chosen or settings.model_server == "ollama" or "ollama" in settings.routes().values():
        urls.append(ollama_url(settings.ollama_host))
    return urls + ([settings.embedding_base_url] if settings.embedding_base_url else [])


def caller_guard(settings: Settings) -> NetGuard:
    """The guard for every URL a caller chooses (an agent's api_base, a tool's base_url)."""
    return NetGuard(allow_private=private_urls_allowed(settings), trusted_urls=upstream_urls(settings))
