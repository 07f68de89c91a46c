"""Prometheus metrics with the names the original Stratavore used, computed live per scrape.

prometheus_client writes the exposition format; a custom collector reads counts from the DB
at scrape time, so there is no periodic update job and no stale value. prometheus_client (and
the HTTP and WSGI servers it imports) is imported at the first scrape or heartbeat: an idle
supervisor has no use for it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from supervisor.storage import queries

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry, Histogram
    from prometheus_client.core import Metric

HEARTBEAT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5)


class _StateCollector:
    """Runner counts, restarts, tokens and uptime, read at scrape time (a collector is
    anything with ``collect``)."""

    def __init__(self, started_at: float) -> None:
        self.started_at = started_at

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        by_state = GaugeMetricFamily(
            "stratavore_runners_total", "Runners by state.", labels=["status"]
        )
        for state, count in queries.counts_by_state().items():
            by_state.add_metric([state], count)
        yield by_state
        by_project = GaugeMetricFamily(
            "stratavore_runners_by_project", "Active runners by project.", labels=["project"]
        )
        for project, count in queries.active_counts_by_project().items():
            by_project.add_metric([project], count)
        yield by_project
        restarts = CounterMetricFamily(
            "stratavore_runner_restarts", "Restarts made by restart policies and users."
        )
        restarts.add_metric([], queries.total_restarts())
        yield restarts
        tokens = CounterMetricFamily(
            "stratavore_tokens_used",
            "Tokens in the usage ledger, in all and per agent.",
            labels=["scope"],
        )
        per_agent = queries.tokens_by_agent()
        tokens.add_metric(["global"], sum(per_agent.values()))
        for agent, count in sorted(per_agent.items()):
            tokens.add_metric([f"agent:{agent}"], count)
        yield tokens
        uptime = GaugeMetricFamily(
            "stratavore_daemon_uptime_seconds", "Seconds since the supervisor started."
        )
        uptime.add_metric([], time.time() - self.started_at)
        yield uptime


class Metrics:
    """The supervisor's private registry (never the process-global one), made when first
    needed."""

    def __init__(self, started_at: float) -> None:
        self.started_at = started_at
        self._registry: CollectorRegistry | None = None
        self._heartbeat_latency: Histogram | None = None

    @property
    def registry(self) -> CollectorRegistry:
        if self._registry is None:
            from prometheus_client import CollectorRegistry, Histogram

            self._registry = CollectorRegistry(auto_describe=False)
            self._registry.register(_StateCollector(self.started_at))
            self._heartbeat_latency = Histogram(
                "stratavore_heartbeat_latency_seconds",
                "Time to accept one heartbeat.",
                buckets=HEARTBEAT_BUCKETS,
                registry=self._registry,
            )
        return self._registry

    @property
    def heartbeat_latency(self) -> Histogram:
        if self._heartbeat_latency is None:
            self.registry  # noqa: B018 - makes it
        assert self._heartbeat_latency is not None
        return self._heartbeat_latency

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import generate_latest
        from prometheus_client.exposition import CONTENT_TYPE_LATEST

        return generate_latest(self.registry), CONTENT_TYPE_LATEST
