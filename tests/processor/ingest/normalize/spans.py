"""Building OTLP spans from plain dicts, for tests and the benchmark."""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status


def any_value(value: object) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, str):
        return AnyValue(string_value=value)
    if isinstance(value, bytes):
        return AnyValue(bytes_value=value)
    if isinstance(value, (list, tuple)):
        return AnyValue(array_value=ArrayValue(values=[any_value(v) for v in value]))
    raise TypeError(value)


def make_span(attributes: Mapping[str, object], *, trace_id: bytes = b"\x01" * 16, span_id: bytes = b"\x02" * 8,
              parent_span_id: bytes = b"", error: bool = False, name: str = "chat") -> Span:
    span = Span(trace_id=trace_id, span_id=span_id, parent_span_id=parent_span_id, name=name,
                start_time_unix_nano=1_700_000_000_000_000_000, end_time_unix_nano=1_700_000_001_000_000_000,
                attributes=[KeyValue(key=k, value=any_value(v)) for k, v in attributes.items()])
    if error:
        span.status.code = Status.STATUS_CODE_ERROR
    return span
