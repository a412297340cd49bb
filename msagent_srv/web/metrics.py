"""Prometheus metrics: one registry per app (no globals), HTTP metrics for every service, and `/metrics`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class ServiceMetrics:
    """The metrics every service has; services subclass it to add their own to `self.registry`."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "msagent_http_requests",
            "HTTP requests answered",
            ["service", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "msagent_http_request_seconds",
            "time to answer an HTTP request",
            ["service", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_progress = Gauge(
            "msagent_http_requests_in_progress",
            "HTTP requests being answered (streams until their last byte)",
            ["service"],
            registry=self.registry,
        )
        self._in_progress = self.in_progress.labels(service)
        # refreshers run before each scrape, to set gauges read from Redis and the like
        self.refreshers: list[Callable[[], Awaitable[None]]] = []
        self._children: dict[tuple[str, int], tuple[Any, Any]] = {}  # labels() is slow on a hot path

    def request_started(self) -> None:
        self._in_progress.inc()

    def request_ended(self) -> None:
        self._in_progress.dec()

    def observe_request(self, request: web.Request, status: int, seconds: float) -> None:
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "unmatched"
        children = self._children.get((route, status))
        if children is None:
            children = self._children[(route, status)] = (
                self.requests.labels(self.service, route, str(status)),
                self.latency.labels(self.service, route),
            )
        children[0].inc()
        children[1].observe(seconds)

    async def handle(self, _request: web.Request) -> web.Response:
        for refresh in self.refreshers:
            try:
                await refresh()
            except Exception:  # a metric that cannot be read must not cost the others
                continue
        return web.Response(
            body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )
