"""The models this server serves, for `GET /v1/models`: those it routes by name (the default model, the
routing table, a local model), the embedding model, and what the configured OpenAI-compatible upstreams
list at their `/models` (asked with a timeout, reused for `models_cache_seconds`, skipped when they fail)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time

import aiohttp

from ..settings import Settings
from .backends.openai_compat import OpenAICompatibleBackend
from .backends.router import BackendRouter
from .knowledge.embeddings import Embedder
from .protocol import ModelCard

log = logging.getLogger("msagent_srv.assistant")
UPSTREAM_LIST_TIMEOUT = 5.0
MAX_CACHED_LISTS = 1024


class ModelCatalog:
    def __init__(
        self,
        settings: Settings,
        router: BackendRouter,
        session: aiohttp.ClientSession,
        embedder: Embedder | None,
    ) -> None:
        self.settings, self.router, self.session, self.embedder = settings, router, session, embedder
        self._lists: dict[tuple[str, str], tuple[float, list[str]]] = {}  # (backend, key digest) -> ids

    def _upstreams(self) -> list[OpenAICompatibleBackend]:
        """The OpenAI-compatible backends that serve something here."""
        used = {self.settings.model_server, *self.router.routes.values()}
        return [
            backend
            for name, backend in self.router.backends.items()
            if name in used and isinstance(backend, OpenAICompatibleBackend)
        ]

    async def cards(self, caller_key: str | None) -> list[ModelCard]:
        cards = {model: ModelCard(id=model, owned_by=backend) for model, backend in self.router.models()}
        if self.embedder is not None:
            cards.setdefault(
                self.embedder.model_id, ModelCard(id=self.embedder.model_id, owned_by="embeddings")
            )
        backends = self._upstreams()
        listed = await asyncio.gather(*(self._listed(b, caller_key) for b in backends))
        for backend, ids in zip(backends, listed, strict=True):
            for model in ids:
                cards.setdefault(model, ModelCard(id=model, owned_by=backend.name))
        return sorted(cards.values(), key=lambda card: card.id)

    async def card(self, model: str, caller_key: str | None) -> ModelCard | None:
        return next((card for card in await self.cards(caller_key) if card.id == model), None)

    async def _listed(self, backend: OpenAICompatibleBackend, caller_key: str | None) -> list[str]:
        key = backend.api_key or caller_key
        # a list fetched with one caller's key is never shown to a caller with another
        slot = (backend.name, hashlib.sha256((key or "").encode()).hexdigest())
        cached = self._lists.get(slot)
        now = time.monotonic()
        if cached is not None and cached[0] > now:
            return cached[1]
        ids = await self._fetch(backend, key)
        if len(self._lists) >= MAX_CACHED_LISTS:
            self._lists.clear()
        self._lists[slot] = (now + self.settings.models_cache_seconds, ids)
        return ids

    async def _fetch(self, backend: OpenAICompatibleBackend, key: str | None) -> list[str]:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        try:
            async with self.session.get(
                backend.base_url + "/models",
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=UPSTREAM_LIST_TIMEOUT),
            ) as response:
                if response.status != 200:
                    return []
                data = await response.json(content_type=None)
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
            log.debug("upstream %s lists no models: %s", backend.name, exc.__class__.__name__)
            return []
        items = data.get("data") if isinstance(data, dict) else None
        return [
            item["id"] for item in items or [] if isinstance(item, dict) and isinstance(item.get("id"), str)
        ][:1000]
