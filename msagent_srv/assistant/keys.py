"""Typed keys of the assistant app's state."""

from __future__ import annotations

from aiohttp import web

from ..settings import Settings
from ..store import Store
from .backends.router import BackendRouter
from .chat import ChatService
from .knowledge.base import KnowledgeBase
from .lite import LiteAgentService
from .metrics import AssistantMetrics
from .tasks import BackgroundTasks

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", Store)
ROUTER = web.AppKey("router", BackendRouter)
CHAT = web.AppKey("chat", ChatService)
KNOWLEDGE = web.AppKey("knowledge", KnowledgeBase)
LITE = web.AppKey("lite", LiteAgentService)
TASKS = web.AppKey("tasks", BackgroundTasks)
METRICS = web.AppKey("metrics", AssistantMetrics)
