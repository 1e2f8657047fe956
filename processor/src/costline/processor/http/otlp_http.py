"""OTLP/HTTP receiver: `POST /v1/traces`, `/v1/logs` and `/v1/metrics`, per the OTLP specification (protocol/otlp.md,
"OTLP/HTTP"). Traces go to the pipeline; logs to the coding assistants' ingest (`ingest.assistants`), metrics are
counted (`receivers.MetricPoints`); each signal answers with its own export response. Everything below holds for all
three alike.

- Encodings: binary protobuf (`application/x-protobuf`) and OTLP/JSON (`application/json`). The response uses the
  request's encoding.
- `Content-Encoding: gzip`, decompressed with the same size limit as the body so a small gzip bomb cannot expand into
  gigabytes in memory.
- Status codes: 200 with the signal's export response (partial success carries the rejected spans, log records or
  data points); 400 with a
  `google.rpc.Status` body for bodies that cannot be decoded; 401 when a bearer token is configured and the request
  lacks it; 413 over the size limit; 415 for other content types or encodings; 503 with `Retry-After` when the
  ledger cannot persist (retryable per the spec, so exporters retry); 500 for a pipeline bug (not retryable).
"""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Iterator
from http import HTTPStatus
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from google.rpc import code_pb2, status_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from costline.processor.http.auth import BearerAuth
from costline.processor.http.server import BadBody, BodyTooLarge, Request, Response
from costline.processor.ingest.receivers import LOGS, METRICS, TRACES, Ingestor, Outcome, ReceiverStats, ingest

TRACES_PATH = "/v1/traces"
LOGS_PATH = "/v1/logs"
METRICS_PATH = "/v1/metrics"
PROTOBUF = "application/x-protobuf"
JSON = "application/json"
TRANSPORT = "http"


class OTLPHttpReceiver:
    """Router for the OTLP/HTTP listener."""

    def __init__(self, pipeline: Ingestor, *, auth: BearerAuth, max_body_bytes: int, stats: ReceiverStats,
                 retry_after_s: int = 5, logs: Ingestor | None = None, metrics: Ingestor | None = None) -> None:
        """`logs`, `metrics`: what `/v1/logs` and `/v1/metrics` hand their requests to; None: that path is 404."""
        self._routes: dict[str, tuple[str, Ingestor, type[Message]]] = {
            TRACES_PATH: (TRACES, pipeline, ExportTraceServiceRequest)}
        if logs is not None:
            self._routes[LOGS_PATH] = (LOGS, logs, ExportLogsServiceRequest)
        if metrics is not None:
            self._routes[METRICS_PATH] = (METRICS, metrics, ExportMetricsServiceRequest)
        self._auth = auth
        self._max = max_body_bytes
        self._stats = stats
        self._retry_after = str(retry_after_s)

    def __call__(self, request: Request) -> Response:
        route = self._routes.get(request.path)
        if route is None:
            return Response.text(HTTPStatus.NOT_FOUND, "not found; OTLP is received at "
                                 f"{', '.join(self._routes)}\n")
        signal, handler, message_type = route
        if request.method != "POST":
            return Response.text(HTTPStatus.METHOD_NOT_ALLOWED, "use POST\n", [("Allow", "POST")])

        content_type = (request.header("Content-Type") or "").split(";", 1)[0].strip().lower()
        json_encoded = content_type == JSON
        # Authentication comes first: an unauthenticated client learns nothing else about the endpoint.
        if not self._auth.allows(request.header("Authorization")):
            self._stats.record(TRANSPORT, Outcome.UNAUTHENTICATED)
            return _status(HTTPStatus.UNAUTHORIZED, code_pb2.UNAUTHENTICATED, "missing or invalid bearer token",
                           json_encoded, [("WWW-Authenticate", 'Bearer realm="costline"')])
        if content_type not in (PROTOBUF, JSON):
            self._stats.record(TRANSPORT, Outcome.UNSUPPORTED)
            return _status(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, code_pb2.INVALID_ARGUMENT,
                           f"unsupported Content-Type {content_type!r}; use {PROTOBUF} or {JSON}", json_encoded)
        encoding = (request.header("Content-Encoding") or "identity").strip().lower()
        if encoding not in ("identity", "gzip"):
            self._stats.record(TRANSPORT, Outcome.UNSUPPORTED)
            return _status(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, code_pb2.INVALID_ARGUMENT,
                           f"unsupported Content-Encoding {encoding!r}; use gzip or none", json_encoded)

        try:
            body = request.read_body(self._max)
            if encoding == "gzip":
                body = gunzip(body, self._max)
            export = decode_json(body, message_type) if json_encoded else decode_protobuf(body, message_type)
        except BodyTooLarge as err:
            self._stats.record(TRANSPORT, Outcome.TOO_LARGE)
            return _status(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, code_pb2.RESOURCE_EXHAUSTED, str(err), json_encoded)
        except (BadBody, Undecodable) as err:
            self._stats.record(TRANSPORT, Outcome.UNDECODABLE)
            return _status(HTTPStatus.BAD_REQUEST, code_pb2.INVALID_ARGUMENT, str(err), json_encoded)

        ingested = ingest(handler, export, TRANSPORT, self._stats, signal)
        if ingested.outcome is Outcome.ACCEPTED:
            assert ingested.response is not None
            return _message(HTTPStatus.OK, ingested.response, json_encoded)
        if ingested.outcome is Outcome.UNAVAILABLE:
            return _status(HTTPStatus.SERVICE_UNAVAILABLE, code_pb2.UNAVAILABLE, ingested.message, json_encoded,
                           [("Retry-After", self._retry_after)])
        return _status(HTTPStatus.INTERNAL_SERVER_ERROR, code_pb2.INTERNAL, ingested.message, json_encoded)


class Undecodable(ValueError):
    """The body is not a valid export request (of its path's signal) in the declared encoding."""


def gunzip(data: bytes, limit: int) -> bytes:
    """Decompress gzip (all members) without ever holding more than `limit` + 1 decompressed bytes."""
    out = bytearray()
    remaining = data
    while True:
        decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            # max_length is never 0 here (which zlib would read as "unlimited"): len(out) <= limit.
            out += decompressor.decompress(remaining, limit + 1 - len(out))
        except zlib.error as err:
            raise Undecodable(f"invalid gzip body: {err}") from None
        if len(out) > limit:
            raise BodyTooLarge(f"decompressed body exceeds the limit of {limit} bytes")
        if not decompressor.eof:
            raise Undecodable("invalid gzip body: truncated")
        remaining = decompressor.unused_data
        if not remaining:
            return bytes(out)


def decode_protobuf(body: bytes, message_type: type[Message] = ExportTraceServiceRequest) -> Any:
    try:
        return message_type.FromString(body)
    except (DecodeError, RecursionError) as err:
        raise Undecodable(f"invalid protobuf {message_type.__name__}: {err}") from None


_ID_FIELDS = ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id")


def decode_json(body: bytes, message_type: type[Message] = ExportTraceServiceRequest) -> Any:
    """OTLP/JSON: protobuf's JSON mapping with two OTLP quirks handled here.

    Trace and span ids are hex strings in OTLP/JSON, where protobuf's mapping of `bytes` expects base64, so they are
    converted before parsing. Unknown fields must be ignored (spec: forward compatibility). Enum values as integers
    (what OTLP mandates) and field names in lowerCamelCase or original snake_case are both accepted by json_format.
    """
    try:
        document = json.loads(body)
        if not isinstance(document, dict):
            raise Undecodable("OTLP/JSON body must be a JSON object")
        for item in _with_ids(document, message_type):
            _hex_ids_to_base64(item)
        return json_format.ParseDict(document, message_type(), ignore_unknown_fields=True)
    except Undecodable:
        raise
    except (ValueError, TypeError, AttributeError, RecursionError, json_format.ParseError) as err:
        # json.JSONDecodeError and UnicodeDecodeError are ValueErrors; ParseError covers wrong field types.
        raise Undecodable(f"invalid OTLP/JSON {message_type.__name__}: {err}") from None


_METRIC_KINDS = ("sum", "gauge", "histogram", "exponentialHistogram", "exponential_histogram", "summary")


def _with_ids(document: Any, message_type: type[Message]) -> Iterator[Any]:
    """The objects of an OTLP/JSON document that carry trace or span ids: spans and their links, log records,
    metric data points' exemplars."""
    if message_type is ExportLogsServiceRequest:
        for resource_logs in _list(document, "resourceLogs", "resource_logs"):
            for scope_logs in _list(resource_logs, "scopeLogs", "scope_logs"):
                yield from _list(scope_logs, "logRecords", "log_records")
    elif message_type is ExportMetricsServiceRequest:
        for resource_metrics in _list(document, "resourceMetrics", "resource_metrics"):
            for scope_metrics in _list(resource_metrics, "scopeMetrics", "scope_metrics"):
                for metric in _list(scope_metrics, "metrics"):
                    for kind in _METRIC_KINDS:
                        data = metric.get(kind) if isinstance(metric, dict) else None
                        if isinstance(data, dict):
                            for point in _list(data, "dataPoints", "data_points"):
                                yield from _list(point, "exemplars")
    else:
        for resource_spans in _list(document, "resourceSpans", "resource_spans"):
            for scope_spans in _list(resource_spans, "scopeSpans", "scope_spans"):
                for span in _list(scope_spans, "spans"):
                    yield span
                    yield from _list(span, "links")


def _list(parent: Any, *names: str) -> list[Any]:
    if not isinstance(parent, dict):
        raise Undecodable("OTLP/JSON: expected an object")
    for name in names:
        value = parent.get(name)
        if value is not None:
            if not isinstance(value, list):
                raise Undecodable(f"OTLP/JSON: {name} must be an array")
            return value
    return []


def _hex_ids_to_base64(item: Any) -> None:
    if not isinstance(item, dict):
        raise Undecodable("OTLP/JSON: spans, links, log records and exemplars must be objects")
    for name in _ID_FIELDS:
        value = item.get(name)
        if isinstance(value, str) and value:
            item[name] = _id_as_base64(name, value)


def _id_as_base64(name: str, value: str) -> str:
    """Hex per the spec; base64 of exactly 16 or 8 bytes is tolerated, since some exporters send protobuf's plain
    JSON mapping. The lengths cannot be confused: 32/16 hex characters versus 24/12 base64 characters."""
    try:
        return base64.b64encode(bytes.fromhex(value)).decode("ascii")
    except ValueError:
        pass
    if len(value) in (24, 12):
        try:
            if len(base64.b64decode(value, validate=True)) in (16, 8):
                return value
        except ValueError:
            pass
    raise Undecodable(f"OTLP/JSON: {name} {value[:40]!r} is not a hex id")


def _message(status: int, message: Message, json_encoded: bool, headers: list[tuple[str, str]] | None = None
             ) -> Response:
    if json_encoded:
        body = json.dumps(json_format.MessageToDict(message), separators=(",", ":")).encode()
        return Response(status, body, JSON, headers or [])
    return Response(status, message.SerializeToString(), PROTOBUF, headers or [])


def _status(status: int, code: int, message: str, json_encoded: bool,
            headers: list[tuple[str, str]] | None = None) -> Response:
    """An error response: a `google.rpc.Status` in the request's encoding, as the OTLP spec asks."""
    return _message(status, status_pb2.Status(code=code, message=message), json_encoded, headers)


__all__ = ["LOGS_PATH", "METRICS_PATH", "OTLPHttpReceiver", "Undecodable", "decode_json", "decode_protobuf", "gunzip"]
