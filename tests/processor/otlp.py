"""Builders for OTLP trace requests of realistic LLM spans, shared by the edge and fault suites (and nothing else)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from tests.processor.ingest.normalize.spans import any_value

Attr = str | bool | int | float

RECENT_NS = (time.time_ns() // 3_600_000_000_000 - 1) * 3_600_000_000_000 + 1_600_000_000_000
"""The default span start: in the hour before the suite started (26 minutes 40 seconds into it), one value for the
whole run, so that a span built twice is the same span; recent, since the processor rejects spans older than
`limits.max_span_age_hours` (72 hours by default)."""


def attributes(values: Mapping[str, Attr]) -> list[KeyValue]:
    return [KeyValue(key=k, value=any_value(v)) for k, v in values.items()]


def llm_span(*, model: str = "gpt-4o", provider: str = "openai", input_tokens: int | None = 1000,
             output_tokens: int | None = 200, cache_read: int | None = None, team: str | None = "search",
             start_ns: int = RECENT_NS, extra: Mapping[str, Attr] | None = None,
             error: bool = False, trace_id: bytes | None = None, span_id: bytes | None = None) -> Span:
    """One chat span as Costline's plugin emits it (docs/attributes.md), with fresh random ids."""
    values: dict[str, Attr] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": provider,
        "gen_ai.request.model": model,
        "gen_ai.response.model": model,
        "gen_ai.response.id": "chatcmpl-" + os.urandom(8).hex(),
        "server.address": "api.openai.com",
    }
    if input_tokens is not None:
        values["gen_ai.usage.input_tokens"] = input_tokens
    if output_tokens is not None:
        values["gen_ai.usage.output_tokens"] = output_tokens
    if cache_read is not None:
        values["gen_ai.usage.cache_read.input_tokens"] = cache_read
    if team is not None:
        values["costline.team"] = team
    values.update(extra or {})
    span = Span(
        trace_id=trace_id or os.urandom(16), span_id=span_id or os.urandom(8), name=f"chat {model}",
        kind=Span.SPAN_KIND_CLIENT, start_time_unix_nano=start_ns, end_time_unix_nano=start_ns + 850_000_000,
        attributes=attributes(values),
    )
    if error:
        span.status.code = Status.STATUS_CODE_ERROR
        span.attributes.append(KeyValue(key="error.type", value=AnyValue(string_value="rate_limit_error")))
    return span


def request_of(spans: Iterable[Span], resource: Mapping[str, Attr] | None = None,
               scope: str = "costline.instrumentation") -> ExportTraceServiceRequest:
    resource_attrs = {"service.name": "search-api", **(resource or {})}
    return ExportTraceServiceRequest(resource_spans=[ResourceSpans(
        resource=Resource(attributes=attributes(resource_attrs)),
        scope_spans=[ScopeSpans(scope=InstrumentationScope(name=scope, version="0.1.0"), spans=list(spans))],
    )])


def llm_request(n: int = 3, **span_kwargs) -> ExportTraceServiceRequest:
    return request_of(llm_span(**span_kwargs) for _ in range(n))


def otlp_json(request: ExportTraceServiceRequest) -> dict:
    """The request in OTLP/JSON: protobuf's JSON mapping with trace and span ids as hex (not base64)."""
    from google.protobuf import json_format

    document = json_format.MessageToDict(request)
    for rs, rs_pb in zip(document.get("resourceSpans", []), request.resource_spans, strict=True):
        for ss, ss_pb in zip(rs.get("scopeSpans", []), rs_pb.scope_spans, strict=True):
            for span, span_pb in zip(ss.get("spans", []), ss_pb.spans, strict=True):
                span["traceId"], span["spanId"] = span_pb.trace_id.hex(), span_pb.span_id.hex()
                if span_pb.parent_span_id:
                    span["parentSpanId"] = span_pb.parent_span_id.hex()
    return document
