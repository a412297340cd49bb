"""Clients of the tool manager's HTTP API: `ManagerClient` (sync, requests) and `AsyncManagerClient`
(aiohttp) with the same methods, typed results and typed errors."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import aiohttp
import requests

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
    name: str
    description: str
    parameters: list[dict[str, Any]] | dict[str, Any]


def _unwrap(path: str, status: int, raw: bytes) -> Any:
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
    elif status in (400, 422) and kind is ToolServiceError:
        kind = InvalidRequest
    elif status == 503:
        kind = ManagerUnreachable
    raise kind(message, status=status, request_id=request_id)


def _status(output: dict[str, Any]) -> ToolNodeStatus:
    return ToolNodeStatus(output["tool_node_name"], output["status"], output.get("error"))


def _body(tool_name: str, tenant_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "tool_name": tool_name,
        "tenant_id": tenant_id,
        **{k: v for k, v in extra.items() if v is not None},
    }


class ManagerClient:
    def __init__(self, url: str | None = None, token: str | None = None, timeout: float = 30.0) -> None:
        self.url, self.timeout = manager_url(url), timeout
        self._session = requests.Session()
        if token:
            self._session.headers["Authorization"] = f"Bearer {token}"

    def _request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> Any:
        try:
            response = self._session.request(
                method, self.url + path, json=body, params=params, timeout=timeout or self.timeout
            )
        except requests.Timeout:
            raise ToolTimeout(
                f"{path}: the manager did not answer within {timeout or self.timeout:g}s"
            ) from None
        except requests.RequestException as exc:
            raise ManagerUnreachable(
                f"tool manager at {self.url} unreachable: {exc.__class__.__name__}"
            ) from None
        return _unwrap(path, response.status_code, response.content)

    def create(
        self,
        tool_name: str,
        tool_cfg: dict[str, Any] | None = None,
        tenant_id: str = "default",
        image: str | None = None,
    ) -> ToolNodeStatus:
        return _status(
            self._request(
                "POST",
                "/create_tool_service",
                _body(tool_name, tenant_id, tool_cfg=tool_cfg or {}, tool_image=image),
            )
        )

    def status(self, tool_name: str, tenant_id: str = "default") -> ToolNodeStatus:
        return _status(self._request("POST", "/check_tool_service_status", _body(tool_name, tenant_id)))

    def info(self, tool_name: str, tenant_id: str = "default") -> ToolInfo:
        return ToolInfo(**self._request("POST", "/tool_info", _body(tool_name, tenant_id)))

    def execute(
        self,
        tool_name: str,
        params: str | dict[str, Any],
        tenant_id: str = "default",
        timeout: float | None = None,
        **kwargs: Any,
    ) -> Any:
        return self._request(
            "POST",
            "/execute_tool",
            _body(tool_name, tenant_id, params=params, kwargs=kwargs),
            timeout=timeout,
        )

    def remove(self, tool_name: str, tenant_id: str = "default") -> ToolNodeStatus:
        return _status(self._request("POST", "/remove_tool", _body(tool_name, tenant_id)))

    def list(self, tenant_id: str = "default") -> dict[str, str]:
        return self._request("GET", "/tools", params={"tenant_id": tenant_id})["tools"]

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> ManagerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncManagerClient:
    def __init__(self, url: str | None = None, token: str | None = None, timeout: float = 30.0) -> None:
        self.url, self.timeout = manager_url(url), timeout
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._session: aiohttp.ClientSession | None = None

    async def _request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> Any:
        if self._session is None:
            self._session = aiohttp.ClientSession(headers=self._headers)
        try:
            async with self._session.request(
                method,
                self.url + path,
                json=body,
                params=params,
                timeout=aiohttp.ClientTimeout(total=timeout or self.timeout),
            ) as response:
                raw = await response.read()
        except TimeoutError:
            raise ToolTimeout(
                f"{path}: the manager did not answer within {timeout or self.timeout:g}s"
            ) from None
        except aiohttp.ClientError as exc:
            raise ManagerUnreachable(
                f"tool manager at {self.url} unreachable: {exc.__class__.__name__}"
            ) from None
        return _unwrap(path, response.status, raw)

    async def create(
        self,
        tool_name: str,
        tool_cfg: dict[str, Any] | None = None,
        tenant_id: str = "default",
        image: str | None = None,
    ) -> ToolNodeStatus:
        return _status(
            await self._request(
                "POST",
                "/create_tool_service",
                _body(tool_name, tenant_id, tool_cfg=tool_cfg or {}, tool_image=image),
            )
        )

    async def status(self, tool_name: str, tenant_id: str = "default") -> ToolNodeStatus:
        return _status(await self._request("POST", "/check_tool_service_status", _body(tool_name, tenant_id)))

    async def info(self, tool_name: str, tenant_id: str = "default") -> ToolInfo:
        return ToolInfo(**await self._request("POST", "/tool_info", _body(tool_name, tenant_id)))

    async def execute(
        self,
        tool_name: str,
        params: str | dict[str, Any],
        tenant_id: str = "default",
        timeout: float | None = None,
        **kwargs: Any,
    ) -> Any:
        return await self._request(
            "POST",
            "/execute_tool",
            _body(tool_name, tenant_id, params=params, kwargs=kwargs),
            timeout=timeout,
        )

    async def remove(self, tool_name: str, tenant_id: str = "default") -> ToolNodeStatus:
        return _status(await self._request("POST", "/remove_tool", _body(tool_name, tenant_id)))

    async def list(self, tenant_id: str = "default") -> dict[str, str]:
        return (await self._request("GET", "/tools", params={"tenant_id": tenant_id}))["tools"]

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> AsyncManagerClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
