"""The real OpenTelemetry SDK exporters (OTLP/HTTP and OTLP/gRPC) against the receivers."""

from __future__ import annotations

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http import Compression as HttpCompression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from tests.processor.http.conftest import TOKEN, Edge


class _Recording(SpanExporter):
    """Wraps an exporter and keeps the results it returned, which the SDK's processor swallows."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner, self.results = inner, []

    def export(self, spans):
        result = self.inner.export(spans)
        self.results.append(result)
        return result

    def shutdown(self):
        self.inner.shutdown()


def emit(exporter: SpanExporter, n: int = 3) -> list[SpanExportResult]:
    recording = _Recording(exporter)
    provider = TracerProvider(resource=Resource.create({"service.name": "exporter-test", "costline.team": "search"}))
    provider.add_span_processor(SimpleSpanProcessor(recording))
    tracer = provider.get_tracer("costline.instrumentation")
    for _ in range(n):
        with tracer.start_as_current_span("chat gpt-4o", attributes={
            "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
            "gen_ai.usage.input_tokens": 100, "gen_ai.usage.output_tokens": 10,
        }):
            pass
    provider.shutdown()
    return recording.results


@pytest.mark.parametrize("compression", [HttpCompression.NoCompression, HttpCompression.Gzip])
def test_http_exporter(edge: Edge, compression) -> None:
    assert emit(HttpExporter(endpoint=edge.traces_url, compression=compression)) == [SpanExportResult.SUCCESS] * 3
    spans = edge.pipeline.spans
    assert [s.name for s in spans] == ["chat gpt-4o"] * 3
    assert {kv.key: kv.value.int_value for kv in spans[0].attributes}["gen_ai.usage.input_tokens"] == 100


def test_grpc_exporter(edge: Edge) -> None:
    exporter = GrpcExporter(endpoint=f"http://{edge.grpc_target}", insecure=True)
    assert emit(exporter) == [SpanExportResult.SUCCESS] * 3
    assert len(edge.pipeline.spans) == 3


def test_exporters_with_a_bearer_token(secured: Edge) -> None:
    headers = {"authorization": f"Bearer {TOKEN}"}
    assert emit(HttpExporter(endpoint=secured.traces_url, headers=headers), 1) == [SpanExportResult.SUCCESS]
    grpc_exporter = GrpcExporter(endpoint=f"http://{secured.grpc_target}", insecure=True, headers=headers)
    assert emit(grpc_exporter, 1) == [SpanExportResult.SUCCESS]
    assert emit(HttpExporter(endpoint=secured.traces_url), 1) == [SpanExportResult.FAILURE]
    assert len(secured.pipeline.spans) == 2
