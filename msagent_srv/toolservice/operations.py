"""The tool manager's HTTP API, described once: each operation builds its request and reads its reply,
without doing any I/O. The sync face (requests, in msagent_srv.client) and the async face (aiohttp,
here) only send: their methods are these, so the two cannot drift."""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import (
    InvalidRequest,
    ManagerUnreachable,
    ToolExecutionError,
    ToolNotFound,
    ToolNotRunning,
    ToolServiceError,
    ToolTimeout,
)

DEFAULT_MANAGER_URL = "http://localhost:31511"
MANAGER_URL_ENV = "TOOL_MANAGER_SERVICE_URL"


def manager_url(explicit: str | None = None) -> str:
    return (explicit or os.environ.get(MANAGER_URL_ENV) or DEFAULT_MANAGER_URL).rstrip("/")


@dataclass(frozen=True)
class ToolNodeStatus:
    node_name: str
    status: str  # pending | running | exited | failed
    error: str | None = None


@dataclass(frozen=True)
class ToolInfo:
    """What a tool says of itself: the manager's `tool_info`."""

    name: str
    description: str
    parameters: list[dict[str, Any]] | dict[str, Any]


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: dict[str, Any] | None = None
    params: dict[str, str] | None = None
    timeout: float | None = None  # the whole exchange; None: the client's default
    read: Callable[[Any], Any] = field(default=lambda output: output)  # the envelope's output -> result


def unwrap(path: str, status: int, raw: bytes) -> Any:
    """The envelope's `output`, or the typed error its status and message mean."""
    try:
        body = json.loads(raw)
    except ValueError:
        raise ManagerUnreachable(f"{path}: the manager sent no JSON (HTTP {status})", status=status) from None
    if not isinstance(body, dict):
        raise ManagerUnreachable(f"{path}: the manager sent no envelope (HTTP {status})", status=status)
    if status == 200:
        return body.get("output")
    message, request_id = body.get("message") or f"HTTP {status}", body.get("request_id")
    kind: type[ToolServiceError] = {404: ToolNotFound, 409: ToolNotRunning, 504: ToolTimeout}.get(
        status, ToolServiceError
    )
    if path == "/execute_tool" and status in (400, 500, 502):
        kind = ToolExecutionError
    elif status in (400, 422, 429) and kind is ToolServiceError:
        kind = InvalidRequest
    elif status == 503:
        kind = ManagerUnreachable
    raise kind(message, status=status, request_id=request_id)


def timed_out(path: str, seconds: float) -> ToolTimeout:
    return ToolTimeout(f"{path}: the manager did not answer within {seconds:g}s")


def unreachable(url: str, exc: BaseException) -> ManagerUnreachable:
    return ManagerUnreachable(f"tool manager at {url} unreachable: {exc.__class__.__name__}")


def _status(output: dict[str, Any]) -> ToolNodeStatus:
    return ToolNodeStatus(output["tool_node_name"], output["status"], output.get("error"))


def _body(tool_name: str, tenant_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "tool_name": tool_name,
        "tenant_id": tenant_id,
        **{k: v for k, v in extra.items() if v is not None},
    }


class ManagerOperations(ABC):
    """Every operation of the manager's API. `_send` is the face's I/O: it returns the result (sync) or
    an awaitable of it (async), so each method here serves both faces."""

    def __init__(self, url: str | None = None, token: str | None = None, timeout: float = 30.0) -> None:
        self.url, self.timeout = manager_url(url), timeout
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    @abstractmethod
    def _send(self, request: Request) -> Any: ...

    def create(
        self, tool_name: str, tool_cfg: dict[str, Any] | None = None, tenant_id: str = "default",
        image: str | None = None,
    ) -> Any:  # fmt: skip
        """The node's status (ToolNodeStatus) once the manager took the request."""
        body = _body(tool_name, tenant_id, tool_cfg=tool_cfg or {}, tool_image=image)
        return self._send(Request("POST", "/create_tool_service", body, read=_status))

    def status(self, tool_name: str, tenant_id: str = "default") -> Any:
        return self._send(
            Request("POST", "/check_tool_service_status", _body(tool_name, tenant_id), read=_status)
        )

    def info(self, tool_name: str, tenant_id: str = "default") -> Any:
        return self._send(
            Request("POST", "/tool_info", _body(tool_name, tenant_id), read=lambda o: ToolInfo(**o))
        )

    def execute(
        self, tool_name: str, params: str | dict[str, Any], tenant_id: str = "default",
        timeout: float | None = None, **kwargs: Any,
    ) -> Any:  # fmt: skip
        """The tool's output; `kwargs` reach the tool (e.g. dashscope_api_key)."""
        body = _body(tool_name, tenant_id, params=params, kwargs=kwargs)
        return self._send(Request("POST", "/execute_tool", body, timeout=timeout))

    def remove(self, tool_name: str, tenant_id: str = "default") -> Any:
        return self._send(Request("POST", "/remove_tool", _body(tool_name, tenant_id), read=_status))

    def list(self, tenant_id: str = "default") -> Any:
        """{node name: status} of the tenant's tools."""
        return self._send(
            Request("GET", "/tools", params={"tenant_id": tenant_id}, read=lambda o: o["tools"])
        )
