"""Tools: the contract, the registry (entry points) and the built-in tools."""

from .base import TOOL_ENDPOINTS, Tool, ToolError, ToolParameter, parameters_to_json_schema
from .registry import UnknownTool, available_tools, load_tool, tool_class

__all__ = [
    "TOOL_ENDPOINTS",
    "Tool",
    "ToolError",
    "ToolParameter",
    "UnknownTool",
    "available_tools",
    "load_tool",
    "parameters_to_json_schema",
    "tool_class",
]
