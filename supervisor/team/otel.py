"""OpenTelemetry out: the metrics of ``/metrics`` exported over OTLP/HTTP (protobuf), so a
team's existing Collector (and the Prometheus or Grafana behind it) sees every machine.

Optional (the extra ``otel``: opentelemetry-sdk and its OTLP/HTTP exporter). Configured by the
standard variables, which the SDK reads itself: ``OTEL_EXPORTER_OTLP_ENDPOINT`` or
``OTEL_EXPORTER_OTLP_METRICS_ENDPOINT``, ``OTEL_EXPORTER_OTLP_HEADERS``,
``OTEL_EXPORTER_OTLP_CERTIFICATE``, ``OTEL_EXPORTER_OTLP_TIMEOUT``,
``OTEL_METRIC_EXPORT_INTERVAL``, ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_SDK_DISABLED``; or by an
endpoint from the settings. Nothing is exported unless an endpoint is given.

The instruments are observed at export time from the local store, like ``/metrics`` at
scrape time: runners by state and active runners by project (gauges), restarts, and tokens
and cost by project, model and agent (counters, summed over the ledger's 15-minute buckets).
The export runs in the SDK's own thread, never on the event loop.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterable, Mapping
from typing import Any

from supervisor.core.errors import KnownError
from supervisor.storage import queries

ENDPOINT_VARS = ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
TOKEN_KINDS = {
    "input": "input_tokens",
    "output": "output_tokens",
    "cache_write": "cache_creation_tokens",
    "cache_read": "cache_read_tokens",
}


def wanted(env: Mapping[str, str] | None = None, endpoint: str | None = None) -> bool:
    """Whether to export: an endpoint in the settings or the standard variables, and the SDK
    not disabled (``OTEL_SDK_DISABLED=true``)."""
    env = os.environ if env is None else env
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return bool(endpoint or any(env.get(name) for name in ENDPOINT_VARS))


def _usage_by_project_model_agent() -> list[tuple[str, str, str, dict[str, int], float]]:
    """Ledger totals per (project, model, agent): tokens by kind, vendor cost."""
    return [
        (project, model, agent, dict(zip(TOKEN_KINDS, map(int, sums), strict=True)), cost)
        for project, model, agent, *sums, cost in queries.usage_by_project_model_agent()
    ]


def machine_attributes() -> dict[str, str]:
    """Resource attributes that tell this machine apart: its machine id and, in a team, the
    member name."""
    from supervisor.team import local

    found = {"stratavore.machine_id": local.machine_id()}
    member = local.membership()
    if member is not None:
        found["stratavore.member"] = member.member
    return found


class OtelExport:
    """A MeterProvider with a periodic OTLP/HTTP metric exporter over the local store."""

    def __init__(
        self,
        endpoint: str | None = None,
        interval_s: float | None = None,
        attributes: Mapping[str, str] | None = None,
        started_at: float | None = None,
    ) -> None:
        try:
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
                OTLPMetricExporter,
            )
            from opentelemetry.sdk.metrics import MeterProvider
            from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
            from opentelemetry.sdk.resources import Resource
        except ImportError:
            raise KnownError(
                "OpenTelemetry export needs the `otel` extra: pip install 'stratavore[otel]'."
            ) from None
        self.started_at = time.time() if started_at is None else started_at
        # None: the exporter reads OTEL_EXPORTER_OTLP_(METRICS_)ENDPOINT itself; a base
        # endpoint from the settings gets the signal's path, as the variable would
        if endpoint and not endpoint.rstrip("/").endswith("/v1/metrics"):
            endpoint = endpoint.rstrip("/") + "/v1/metrics"
        exporter = OTLPMetricExporter(endpoint=endpoint)
        interval = None if interval_s is None else interval_s * 1000
        self.reader = PeriodicExportingMetricReader(exporter, export_interval_millis=interval)
        if attributes is None:
            attributes = machine_attributes()
        resource = Resource.create(
            {"service.name": "stratavore", "host.name": socket.gethostname(), **attributes}
        )
        self.provider = MeterProvider(resource=resource, metric_readers=[self.reader])
        self._instruments(self.provider.get_meter("stratavore"))

    def _instruments(self, meter: Any) -> None:
        from opentelemetry.metrics import CallbackOptions, Observation

        def runners(_: CallbackOptions) -> Iterable[Observation]:
            for state, count in queries.counts_by_state().items():
                yield Observation(count, {"status": state})

        def by_project(_: CallbackOptions) -> Iterable[Observation]:
            for project, count in queries.active_counts_by_project().items():
                yield Observation(count, {"project": project})

        def restarts(_: CallbackOptions) -> Iterable[Observation]:
            yield Observation(queries.total_restarts())

        def uptime(_: CallbackOptions) -> Iterable[Observation]:
            yield Observation(time.time() - self.started_at)

        def tokens(_: CallbackOptions) -> Iterable[Observation]:
            for project, model, agent, kinds, _cost in _usage_by_project_model_agent():
                for kind, count in kinds.items():
                    attrs = {"project": project, "model": model, "agent": agent, "type": kind}
                    yield Observation(count, attrs)

        def cost(_: CallbackOptions) -> Iterable[Observation]:
            for project, model, agent, _kinds, usd in _usage_by_project_model_agent():
                yield Observation(usd, {"project": project, "model": model, "agent": agent})

        meter.create_observable_gauge("stratavore.runners", [runners], "{runner}",
                                      "Runners by state.")  # fmt: skip
        meter.create_observable_gauge("stratavore.runners.active", [by_project], "{runner}",
                                      "Active runners by project.")  # fmt: skip
        meter.create_observable_counter("stratavore.runner.restarts", [restarts], "{restart}",
                                        "Restarts made by restart policies and users.")  # fmt: skip
        meter.create_observable_gauge("stratavore.uptime", [uptime], "s",
                                      "Seconds since the supervisor started.")  # fmt: skip
        meter.create_observable_counter("stratavore.tokens", [tokens], "{token}",
                                        "Tokens in the usage ledger by project, model, agent "
                                        "and type.")  # fmt: skip
        meter.create_observable_counter("stratavore.cost", [cost], "USD",
                                        "Vendor cost in the usage ledger by project, model and "
                                        "agent.")  # fmt: skip

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Export now (what a test or a shutdown wants); whether it went."""
        return self.provider.force_flush(int(timeout_s * 1000))

    def close(self) -> None:
        """A last export, then stop the exporter's thread."""
        self.provider.shutdown()
