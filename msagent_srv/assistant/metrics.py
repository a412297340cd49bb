"""Assistant metrics: upstream model latency, tokens and errors; knowledge ingest progress."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from ..web.metrics import LATENCY_BUCKETS, ServiceMetrics


class AssistantMetrics(ServiceMetrics):
    def __init__(self) -> None:
        super().__init__("assistant")
        self.upstream_seconds = Histogram(
            "msagent_upstream_seconds",
            "time the upstream model took for a reply",
            ["backend", "stream"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.upstream_tokens = Counter(
            "msagent_upstream_tokens",
            "tokens of upstream model calls",
            ["backend", "kind"],
            registry=self.registry,
        )
        self.upstream_errors = Counter(
            "msagent_upstream_errors",
            "failed upstream model calls",
            ["backend", "code"],
            registry=self.registry,
        )
        self.ingest_files = Counter(
            "msagent_ingest_files", "files indexed", ["result"], registry=self.registry
        )
        self.ingest_chunks = Counter("msagent_ingest_chunks", "chunks indexed", registry=self.registry)
        self.ingest_active = Gauge("msagent_ingest_active", "files being indexed now", registry=self.registry)
        self.tool_calls = Counter(
            "msagent_agent_tool_calls",
            "tool calls run by /v1/assistants/lite",
            ["tool"],
            registry=self.registry,
        )
