"""Typed keys of the manager app's state."""

from __future__ import annotations

from aiohttp import web

from ..settings import Settings
from .metrics import ManagerMetrics
from .nodes import NodeManager

SETTINGS = web.AppKey("settings", Settings)
NODES = web.AppKey("nodes", NodeManager)
METRICS = web.AppKey("metrics", ManagerMetrics)
