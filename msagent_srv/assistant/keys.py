"""Typed keys of the assistant app's state."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from ..settings import Settings
from ..store import Store
from ..web.errors import ApiError
from .backends.router import BackendRouter
from .engine import ChatEngine
from .knowledge.base import KnowledgeBase
from .lite import LiteAgentService
from .metrics import AssistantMetrics
from .models_catalog import ModelCatalog
from .tasks import BackgroundTasks

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", Store)
ROUTER = web.AppKey("router", BackendRouter)
CHAT = web.AppKey("chat", ChatEngine)
MODELS = web.AppKey("models", ModelCatalog)


@dataclass(frozen=True)
class Knowledge:
    """The knowledge base, or why there is none (the [knowledge] extra missing, or turned off)."""

    base: KnowledgeBase | None
    off_reason: str | None

    def required(self) -> KnowledgeBase:
        if self.base is None:
            raise ApiError(501, self.off_reason or "knowledge retrieval is off", code="knowledge_unavailable")
        return self.base


KNOWLEDGE = web.AppKey("knowledge", Knowledge)
LITE = web.AppKey("lite", LiteAgentService)
TASKS = web.AppKey("tasks", BackgroundTasks)
METRICS = web.AppKey("metrics", AssistantMetrics)
