"""Finds tools by name through the `msagent_srv.tools` entry point group (so packages can add tools)."""

from __future__ import annotations

from functools import lru_cache
from importlib.metadata import entry_points
from typing import Any

from .base import Tool

ENTRY_POINT_GROUP = "msagent_srv.tools"


class UnknownTool(LookupError):
    pass


@lru_cache(maxsize=1)
def _entry_points() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available_tools() -> list[str]:
    return sorted(_entry_points())


def tool_class(name: str) -> type[Tool]:
    entry = _entry_points().get(name)
    if entry is None:
        raise UnknownTool(f"unknown tool {name!r}; available: {', '.join(available_tools())}")
    cls = entry.load()
    if not (isinstance(cls, type) and issubclass(cls, Tool)):
        raise UnknownTool(f"entry point {name!r} is not a Tool subclass")
    return cls


def load_tool(name: str, cfg: dict[str, Any] | None = None) -> Tool:
    return tool_class(name)(cfg)
