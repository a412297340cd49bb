"""The tool manager's API for its callers: one sans-I/O description (operations.py), the async face
(aio.py) and typed errors. Depends on aiohttp only: the server uses it without the client library."""

from .aio import AsyncManagerClient, AsyncToolServiceProxy
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
from .operations import ManagerOperations, ToolInfo, ToolNodeStatus, manager_url

__all__ = [
    "AsyncManagerClient",
    "AsyncToolServiceProxy",
    "InvalidRequest",
    "ManagerOperations",
    "ManagerUnreachable",
    "ToolExecutionError",
    "ToolFailedToStart",
    "ToolInfo",
    "ToolNodeStatus",
    "ToolNotFound",
    "ToolNotRunning",
    "ToolServiceError",
    "ToolTimeout",
    "manager_url",
]
