"""A remote tool used like a local one: the proxy creates the tool's node through the manager, waits until
it runs, reads its description, and runs calls on it."""

from __future__ import annotations

import time
from typing import Any

from ..toolservice.aio import AsyncToolServiceProxy, ProxyInfo, StartWatch
from .manager import ManagerClient


class ToolServiceProxy(ProxyInfo):
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
        try:
            status = self.manager.create(tool_name, tool_cfg or {}, tenant_id, image)
            self.node_name, watch = status.node_name, StartWatch(tool_name, start_timeout)
            while (delay := watch.next_delay(status)) is not None:
                time.sleep(delay)
                status = self.manager.status(tool_name, tenant_id)
            self._set_info(self.manager.info(tool_name, tenant_id))
        except BaseException:
            self.manager.close()  # a proxy that never started holds no session
            raise

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


__all__ = ["AsyncToolServiceProxy", "ToolServiceProxy"]
