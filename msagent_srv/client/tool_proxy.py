"""A remote tool used like a local one: the proxy creates the tool's node through the manager, waits until
it runs, reads its description, and runs calls on it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

from .errors import ToolFailedToStart, ToolTimeout
from .manager import AsyncManagerClient, ManagerClient, ToolInfo, ToolNodeStatus


def _delays(deadline: float) -> Iterator[float]:
    """Back-off between status checks: 50 ms growing to 1 s, until the deadline."""
    delay = 0.05
    while time.monotonic() + delay < deadline:
        yield delay
        delay = min(delay * 1.5, 1.0)


def _settled(status: ToolNodeStatus, tool_name: str) -> bool:
    """True once running; raises at once when the node failed or ended."""
    if status.status in ("failed", "exited"):
        raise ToolFailedToStart(f"tool {tool_name} failed to start: {status.error or status.status}")
    return status.status == "running"


class _ProxyInfo:
    tool_name: str
    tenant_id: str
    name: str
    description: str
    parameters: list[dict[str, Any]] | dict[str, Any]

    def _set_info(self, info: ToolInfo) -> None:
        self.name, self.description, self.parameters = info.name, info.description, info.parameters

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.tool_name!r}, tenant_id={self.tenant_id!r})"


class ToolServiceProxy(_ProxyInfo):
    """`ToolServiceProxy("RenewInstance", {}).call('{"instance_id": 123, "period": "mon"}')`.

    The manager URL is `manager_url`, else $TOOL_MANAGER_SERVICE_URL, else http://localhost:31511, read now.
    """

    def __init__(
        self,
        tool_name: str,
        tool_cfg: dict[str, Any] | None = None,
        tenant_id: str = "default",
        manager_url: str | None = None,
        token: str | None = None,
        *,
        image: str | None = None,
        start_timeout: float = 120.0,
        call_timeout: float | None = None,
    ) -> None:
        self.tool_name, self.tenant_id, self.call_timeout = tool_name, tenant_id, call_timeout
        self.manager = ManagerClient(manager_url, token)
        status = self.manager.create(tool_name, tool_cfg or {}, tenant_id, image)
        self.node_name = status.node_name
        deadline = time.monotonic() + start_timeout
        for delay in _delays(deadline):
            if _settled(status, tool_name):
                break
            time.sleep(delay)
            status = self.manager.status(tool_name, tenant_id)
        else:
            if not _settled(status, tool_name):
                raise ToolTimeout(f"tool {tool_name} did not start within {start_timeout:g}s")
        self._set_info(self.manager.info(tool_name, tenant_id))

    def call(self, params: str | dict[str, Any], **kwargs: Any) -> Any:
        """Run the tool with `params` (a JSON string or a dict); returns its output."""
        return self.manager.execute(
            self.tool_name, params, self.tenant_id, timeout=self.call_timeout, **kwargs
        )

    def remove(self) -> None:
        """Stop and remove the node."""
        self.manager.remove(self.tool_name, self.tenant_id)

    def close(self) -> None:
        self.manager.close()


class AsyncToolServiceProxy(_ProxyInfo):
    """The async twin: `proxy = await AsyncToolServiceProxy.create("RenewInstance", {})`, then
    `await proxy.call(...)`."""

    def __init__(
        self, tool_name: str, tenant_id: str, manager: AsyncManagerClient, call_timeout: float | None
    ) -> None:
        self.tool_name, self.tenant_id, self.manager, self.call_timeout = (
            tool_name,
            tenant_id,
            manager,
            call_timeout,
        )
        self.node_name = ""

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
            proxy.node_name = status.node_name
            deadline = time.monotonic() + start_timeout
            for delay in _delays(deadline):
                if _settled(status, tool_name):
                    break
                await asyncio.sleep(delay)
                status = await proxy.manager.status(tool_name, tenant_id)
            else:
                if not _settled(status, tool_name):
                    raise ToolTimeout(f"tool {tool_name} did not start within {start_timeout:g}s")
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
