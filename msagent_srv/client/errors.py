"""Typed errors of the client library (defined with the manager's API, in msagent_srv.toolservice)."""

from ..toolservice.errors import (
    InvalidRequest,
    ManagerUnreachable,
    ToolExecutionError,
    ToolFailedToStart,
    ToolNotFound,
    ToolNotRunning,
    ToolServiceError,
    ToolTimeout,
)

__all__ = [
    "InvalidRequest",
    "ManagerUnreachable",
    "ToolExecutionError",
    "ToolFailedToStart",
    "ToolNotFound",
    "ToolNotRunning",
    "ToolServiceError",
    "ToolTimeout",
]
