"""The async face of the manager's API (aiohttp), and a remote tool used like a local one. The server
uses these; the client library re-exports them beside their sync twins."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp

from .errors import ToolFailedToStart, ToolTimeout
from .operations import ManagerOperations, Request, ToolInfo, ToolNodeStatus, timed_out, unreachable, unwrap


class AsyncManagerClient(ManagerOperations):
    """`await client.create(...)`, `await client.execute(...)`: the operations of ManagerOperations."""

    def __init__(self, url: str | None = None, token: str | None = None, timeout: float = 30.0) -> None:
        super().__init__(url, token, timeout)
        self._session: aiohttp.ClientSession | None = None

    async def _send(self, request: Request) -> Any:
        if self._session is None:
            self._session = aiohttp.ClientSession(headers=self.headers)
        seconds = request.timeout or self.timeout
        try:
            async with self._session.request(
                request.method, self.url + request.path, json=request.body, params=request.params,
                timeout=aiohttp.ClientTimeout(total=seconds),
            ) as response:  # fmt: skip
                raw = await response.read()
        except asyncio.TimeoutError:  # TimeoutError from 3.11 on, its own class before
            raise timed_out(request.path, seconds) from None
        except aiohttp.ClientError as exc:
            raise unreachable(self.url, exc) from None
        return request.read(unwrap(request.path, response.status, raw))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> AsyncManagerClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class StartWatch:
    """Waiting for a node to run, without the I/O: `next_delay(status)` says how long to wait before the
    next status check, None once it runs; it raises when the node failed, ended or ran out of time."""

    def __init__(self, tool_name: str, start_timeout: float) -> None:
        self.tool_name, self.start_timeout = tool_name, start_timeout
        self._deadline, self._delay = time.monotonic() + start_timeout, 0.05

    def next_delay(self, status: ToolNodeStatus) -> float | None:
        if status.status in ("failed", "exited"):
            raise ToolFailedToStart(f"tool {self.tool_name} failed to start: {status.error or status.status}")
        if status.status == "running":
            return None
        if time.monotonic() + self._delay >= self._deadline:
            raise ToolTimeout(f"tool {self.tool_name} did not start within {self.start_timeout:g}s")
        delay, self._delay = self._delay, min(self._delay * 1.5, 1.0)  # 50 ms growing to 1 s
        return delay


class ProxyInfo:
    tool_name: str
    tenant_id: str
    name: str
    description: str
    parameters: list[dict[str, Any]] | dict[str, Any]

    def _set_info(self, info: ToolInfo) -> None:
        self.name, self.description, self.parameters = info.name, info.description, info.parameters

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.tool_name!r}, tenant_id={self.tenant_id!r})"


class AsyncToolServiceProxy(ProxyInfo):
    """`proxy = await AsyncToolServiceProxy.create("RenewInstance", {})`, then `await proxy.call(...)`."""

    def __init__(
        self, tool_name: str, tenant_id: str, manager: AsyncManagerClient, call_timeout: float | None
    ) -> None:
        self.tool_name, self.tenant_id, self.manager = tool_name, tenant_id, manager
        self.call_timeout, self.node_name = call_timeout, ""

    @classmethod
    async def create(
        cls,
        tool_name: str,
        tool_cfg: dict[str, Any] | None = None,
        tenant_id: str = "default",
        manager_url: str | None = None,
        token: str | None = None,
        *,
        image: str | None = None,
        start_timeout: float = 120.0,
        call_timeout: float | None = None,
    ) -> AsyncToolServiceProxy:
        proxy = cls(tool_name, tenant_id, AsyncManagerClient(manager_url, token), call_timeout)
        try:
            status = await proxy.manager.create(tool_name, tool_cfg or {}, tenant_id, image)
            proxy.node_name, watch = status.node_name, StartWatch(tool_name, start_timeout)
            while (delay := watch.next_delay(status)) is not None:
                await asyncio.sleep(delay)
                status = await proxy.manager.status(tool_name, tenant_id)
            proxy._set_info(await proxy.manager.info(tool_name, tenant_id))
        except BaseException:
            await proxy.manager.close()
            raise
        return proxy

    async def call(self, params: str | dict[str, Any], **kwargs: Any) -> Any:
        return await self.manager.execute(
            self.tool_name, params, self.tenant_id, timeout=self.call_timeout, **kwargs
        )

    async def remove(self) -> None:
        await self.manager.remove(self.tool_name, self.tenant_id)

    async def close(self) -> None:
        await self.manager.close()
