"""Typed errors of the tool manager's clients (the server's and the Python library's)."""

from __future__ import annotations


class ToolServiceError(Exception):
    """Base class: something went wrong between this client and a tool."""

    def __init__(self, message: str, *, status: int | None = None, request_id: str | None = None) -> None:
        super().__init__(message)
        self.message, self.status, self.request_id = message, status, request_id


class ManagerUnreachable(ToolServiceError):
    """The tool manager did not answer (wrong URL, down, or a network failure)."""


class ToolNotFound(ToolServiceError):
    """The manager has no such tool for this tenant."""


class ToolNotRunning(ToolServiceError):
    """The tool exists but its node is not running."""


class ToolFailedToStart(ToolServiceError):
    """The node failed to start; `message` carries the manager's reason."""


class ToolTimeout(ToolServiceError):
    """The node did not start, or a call did not finish, within the deadline."""


class ToolExecutionError(ToolServiceError):
    """The tool ran and failed, or refused its arguments."""


class InvalidRequest(ToolServiceError):
    """The manager refused the request as malformed (a 4xx naming the problem)."""
