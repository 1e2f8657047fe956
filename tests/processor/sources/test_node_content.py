"""Forwarding never carries the Node sources' content: the recorded spans, through the processor's redaction, keep
no prompt, completion, embedding input or request header — the calls' own spans (allowlist) and the spans that are
no calls (the Vercel AI SDK's outer spans, Langfuse's observations: the denylist) alike."""

from __future__ import annotations

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from costline.processor.http.otlp_http import decode_json
from costline.processor.ingest.normalize.span import normalize_span
from costline.processor.ingest.redact import redact_llm_span, redact_span
from tests.processor.sources.node_workload import fixture

WORKLOAD_TEXT = ("Say something short", "Costline counts every token", "x-fake-usage", "sk-record")


@pytest.mark.parametrize("source", ["vercel-ai", "langfuse", "openllmetry-js", "otel-openai-js"])
def test_no_content_leaves_with_a_forwarded_node_span(source):
    spans = 0
    for body in fixture(source).requests:
        request: ExportTraceServiceRequest = decode_json(body)
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    is_call = normalize_span(span, {}, scope_spans.scope.name) is not None
                    (redact_llm_span if is_call else redact_span)(span)
                    text = str(span)
                    assert not [t for t in WORKLOAD_TEXT if t in text], (source, span.name, text)
                    spans += 1
    assert spans
