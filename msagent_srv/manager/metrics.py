"""Manager metrics: tool executions and failures, nodes by status."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from ..store import ToolStatus
from ..web.metrics import ServiceMetrics


class ManagerMetrics(ServiceMetrics):
    def __init__(self) -> None:
        super().__init__("manager")
        self.executions = Counter(
            "msagent_tool_executions",
            "execute_tool calls through the manager",
            ["tool", "result"],
            registry=self.registry,
        )
        self.nodes = Gauge("msagent_tool_nodes", "tool nodes by status", ["status"], registry=self.registry)

    def count_nodes(self, statuses: list[ToolStatus]) -> None:
        for status in ToolStatus:
            self.nodes.labels(status.value).set(sum(1 for s in statuses if s is status))
