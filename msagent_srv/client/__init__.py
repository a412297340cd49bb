"""What Python users import: remote tools used like local ones, and an agent that runs them."""

from .agent import Agent
from .assistant import AssistantClient, AssistantError, AsyncAssistantClient
from .errors import (
    InvalidRequest,
    ManagerUnreachable,
    ToolExecutionError,
    ToolFailedToStart,
    ToolNotFound,
    ToolNotRunning,
    ToolServiceError,
    ToolTimeout,
)
from .manager import AsyncManagerClient, ManagerClient, ToolInfo, ToolNodeStatus
from .tool_proxy import AsyncToolServiceProxy, ToolServiceProxy

__all__ = [
    "Agent",
    "AssistantClient",
    "AssistantError",
    "AsyncAssistantClient",
    "AsyncManagerClient",
    "AsyncToolServiceProxy",
    "InvalidRequest",
    "ManagerClient",
    "ManagerUnreachable",
    "ToolExecutionError",
    "ToolFailedToStart",
    "ToolInfo",
    "ToolNodeStatus",
    "ToolNotFound",
    "ToolNotRunning",
    "ToolServiceError",
    "ToolServiceProxy",
    "ToolTimeout",
]
