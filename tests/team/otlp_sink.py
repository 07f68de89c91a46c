"""A local OTLP/HTTP receiver for the tests: it accepts ``POST /v1/metrics`` (protobuf, maybe
gzipped), decodes each body into opentelemetry-proto's ``ExportMetricsServiceRequest`` and
keeps it with its headers. No OpenTelemetry Collector can be installed from the registries
here (none on PyPI, Debian or npm), so this decodes what a Collector's OTLP receiver would."""

from __future__ import annotations

import gzip
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)


class OtlpSink:
    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], ExportMetricsServiceRequest]] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path != "/v1/metrics" or (
                    self.headers.get("Content-Type") != "application/x-protobuf"
                ):
                    self.send_response(404)
                    self.end_headers()
                    return
                request = ExportMetricsServiceRequest()
                request.ParseFromString(body)
                sink.requests.append(({k.lower(): v for k, v in self.headers.items()}, request))
                answer = ExportMetricsServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> OtlpSink:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def points(self) -> dict[str, list[tuple[dict[str, Any], float]]]:
        """Metric name -> (attributes, value) of every data point of the last request."""
        found: dict[str, list[tuple[dict[str, Any], float]]] = {}
        _, request = self.requests[-1]
        for resource in request.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    kind = metric.WhichOneof("data")
                    for point in getattr(metric, kind).data_points:
                        attrs = {a.key: _value(a.value) for a in point.attributes}
                        value = point.as_int if point.HasField("as_int") else point.as_double
                        found.setdefault(metric.name, []).append((attrs, value))
        return found

    def resource(self) -> dict[str, Any]:
        _, request = self.requests[-1]
        return {a.key: _value(a.value) for a in request.resource_metrics[0].resource.attributes}


def _value(any_value: Any) -> Any:
    return getattr(any_value, any_value.WhichOneof("value"))
