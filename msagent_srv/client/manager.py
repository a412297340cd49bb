"""Clients of the tool manager's HTTP API: `ManagerClient` (sync, requests) and `AsyncManagerClient`
(aiohttp). Both are faces of one description of the API (msagent_srv.toolservice.operations): the same
methods, typed results and typed errors."""

from __future__ import annotations

from typing import Any

import requests

from ..toolservice.aio import AsyncManagerClient
from ..toolservice.operations import (
    DEFAULT_MANAGER_URL,
    MANAGER_URL_ENV,
    ManagerOperations,
    Request,
    ToolInfo,
    ToolNodeStatus,
    manager_url,
    timed_out,
    unreachable,
    unwrap,
)


class ManagerClient(ManagerOperations):
    """`client.create(...)`, `client.execute(...)`: the operations of ManagerOperations, answered now."""

    def __init__(self, url: str | None = None, token: str | None = None, timeout: float = 30.0) -> None:
        super().__init__(url, token, timeout)
        self._session = requests.Session()
        self._session.headers.update(self.headers)

    def _send(self, request: Request) -> Any:
        seconds = request.timeout or self.timeout
        try:
            response = self._session.request(
                request.method, self.url + request.path, json=request.body, params=request.params,
                timeout=seconds,
            )  # fmt: skip
        except requests.Timeout:
            raise timed_out(request.path, seconds) from None
        except requests.RequestException as exc:
            raise unreachable(self.url, exc) from None
        return request.read(unwrap(request.path, response.status_code, response.content))

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> ManagerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = [
    "DEFAULT_MANAGER_URL",
    "MANAGER_URL_ENV",
    "AsyncManagerClient",
    "ManagerClient",
    "ToolInfo",
    "ToolNodeStatus",
    "manager_url",
]
