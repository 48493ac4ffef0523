"""Prometheus metrics of one service process: a registry of its own (several services may share a process
in tests), gRPC calls by method and code, and an HTTP endpoint that serves them.

Figures that live in the database (runs by status, backlog) are read when scraped, so every replica
reports the same truth; counters of work done are kept by the process that did it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

# Seconds: from quick RPCs to long Spark runs.
DURATION_BUCKETS = (0.005, 0.025, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600)
SCRAPE_QUERY_TIMEOUT = 10.0


class ServiceMetrics:
    def __init__(self, service: str) -> None:
        self.service = service
        self.registry = CollectorRegistry()
        self._calls = Counter(
            "autoloader_grpc_requests",
            "gRPC calls served, by method and status code",
            ["method", "code"],
            registry=self.registry,
        )
        self._call_seconds = Histogram(
            "autoloader_grpc_request_duration_seconds",
            "Time to serve a gRPC call",
            ["method"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )

    def counter(self, name: str, help_text: str, labels: Iterable[str] = ()) -> Counter:
        return Counter(name, help_text, list(labels), registry=self.registry)

    def histogram(self, name: str, help_text: str, labels: Iterable[str] = ()) -> Histogram:
        return Histogram(name, help_text, list(labels), buckets=DURATION_BUCKETS, registry=self.registry)

    def observe_call(self, method: str, code: str, seconds: float) -> None:
        self._calls.labels(method=method, code=code).inc()
        self._call_seconds.labels(method=method).observe(seconds)

    def add_database_gauges(
        self, loop: asyncio.AbstractEventLoop, read: Callable[[], Coroutine[Any, Any, list[Gauge]]]
    ) -> None:
        """Gauges computed by `read` on the service's event loop each time the endpoint is scraped."""
        self.registry.register(_DatabaseCollector(loop, read))


@dataclass(frozen=True)
class Gauge:
    name: str
    help_text: str
    labels: tuple[str, ...]
    samples: list[tuple[tuple[str, ...], float]]


class _DatabaseCollector(Collector):
    def __init__(self, loop: asyncio.AbstractEventLoop, read: Callable[[], Coroutine[Any, Any, list[Gauge]]]) -> None:
        self._loop = loop
        self._read = read

    def collect(self) -> Iterable[Any]:
        # Scrapes arrive on the endpoint's thread; the database pool belongs to the event loop.
        gauges: list[Gauge] = asyncio.run_coroutine_threadsafe(self._read(), self._loop).result(SCRAPE_QUERY_TIMEOUT)
        for gauge in gauges:
            family = GaugeMetricFamily(gauge.name, gauge.help_text, labels=list(gauge.labels))
            for values, value in gauge.samples:
                family.add_metric(list(values), value)
            yield family

    def describe(self) -> Iterable[Any]:
        return []  # not known until scraped: keeps registration from calling collect()


@dataclass
class MetricsEndpoint:
    server: WSGIServer
    port: int

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def serve_metrics(metrics: ServiceMetrics, host: str, port: int) -> MetricsEndpoint:
    """Serve /metrics over HTTP on its own thread; port 0 picks a free one."""
    server, _thread = start_http_server(port, addr=host, registry=metrics.registry)
    return MetricsEndpoint(server=server, port=server.server_port)
