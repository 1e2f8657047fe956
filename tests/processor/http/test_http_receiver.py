"""OTLP/HTTP `/v1/traces`: encodings, compression, limits, auth and the status code of every outcome."""

from __future__ import annotations

import gzip
import http.client
import json
from urllib.parse import urlsplit

from google.protobuf import json_format
from google.rpc import code_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from costline.processor.ingest.receivers import Outcome
from tests.processor.http.conftest import TOKEN, Edge, LedgerUnavailable
from tests.processor.otlp import llm_request, otlp_json

PB = "application/x-protobuf"
JS = "application/json"


def post(url: str, body: bytes, headers: dict[str, str] | None = None,
         connection: http.client.HTTPConnection | None = None) -> tuple[int, dict[str, str], bytes]:
    parts = urlsplit(url)
    conn = connection or http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    conn.request("POST", parts.path, body=body, headers={"Content-Type": PB, **(headers or {})})
    response = conn.getresponse()
    data = response.read()
    if connection is None:
        conn.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, data


def status_of(body: bytes, content_type: str) -> status_pb2.Status:
    if content_type == JS:
        return json_format.Parse(body, status_pb2.Status())
    return status_pb2.Status.FromString(body)


def test_protobuf_export_is_acknowledged_with_an_empty_response(edge: Edge) -> None:
    request = llm_request(3)
    code, headers, body = post(edge.traces_url, request.SerializeToString())
    assert code == 200
    assert headers["content-type"] == PB
    assert ExportTraceServiceResponse.FromString(body) == ExportTraceServiceResponse()
    assert edge.pipeline.requests == [request]


def test_json_export_decodes_hex_ids_and_camel_case(edge: Edge) -> None:
    request = llm_request(2)
    document = otlp_json(request)
    assert len(document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"]) == 32  # hex, not base64
    for span in document["resourceSpans"][0]["scopeSpans"][0]["spans"]:
        span["kind"] = 3  # enums as integers, as OTLP/JSON mandates
        span["someFutureField"] = {"x": 1}  # unknown fields must be ignored
    code, headers, body = post(edge.traces_url, json.dumps(document).encode(), {"Content-Type": JS})
    assert code == 200, body
    assert headers["content-type"] == JS
    assert json.loads(body) == {}
    assert edge.pipeline.requests == [request]


def test_gzip_body(edge: Edge) -> None:
    request = llm_request(5)
    code, _, _ = post(edge.traces_url, gzip.compress(request.SerializeToString()), {"Content-Encoding": "gzip"})
    assert code == 200
    assert edge.pipeline.requests == [request]


def test_partial_success_reports_rejected_spans_in_the_request_encoding(edge: Edge) -> None:
    edge.pipeline.reject = 2
    code, _, body = post(edge.traces_url, llm_request(3).SerializeToString())
    assert code == 200
    response = ExportTraceServiceResponse.FromString(body)
    assert response.partial_success.rejected_spans == 2
    assert response.partial_success.error_message == "2 spans rejected"
    code, _, body = post(edge.traces_url, json.dumps(otlp_json(llm_request(3))).encode(), {"Content-Type": JS})
    assert code == 200
    assert json.loads(body) == {"partialSuccess": {"rejectedSpans": "2", "errorMessage": "2 spans rejected"}}


def test_undecodable_bodies_get_400_with_a_status_body(edge: Edge) -> None:
    cases = [
        (PB, b"\xff\xff\xff\xff\x0f garbage"),
        (JS, b"{not json"),
        (JS, b"[1, 2]"),
        (JS, b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}'),
        (JS, b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"startTimeUnixNano": "soon"}]}]}]}'),
        (JS, b'{"resourceSpans": "nope"}'),
        (JS, ("[" * 100_000).encode()),
    ]
    for content_type, body in cases:
        code, headers, data = post(edge.traces_url, body, {"Content-Type": content_type})
        assert code == 400, (content_type, body[:40])
        assert headers["content-type"] == content_type
        assert status_of(data, content_type).code == code_pb2.INVALID_ARGUMENT
    code, _, _ = post(edge.traces_url, b"not gzip", {"Content-Encoding": "gzip"})
    assert code == 400
    assert edge.pipeline.requests == []


def test_body_over_the_limit_is_413_without_reading_it(edge: Edge) -> None:
    before = edge.requests("http", Outcome.TOO_LARGE)
    code, headers, data = post(edge.traces_url, b"\0" * (1024 * 1024 + 1))
    assert code == 413
    assert status_of(data, PB).code == code_pb2.RESOURCE_EXHAUSTED
    assert edge.requests("http", Outcome.TOO_LARGE) == before + 1


def test_gzip_bomb_is_413(edge: Edge) -> None:
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024), compresslevel=9)  # 64 MiB of zeros in ~64 KiB
    assert len(bomb) < 1024 * 1024
    code, _, _ = post(edge.traces_url, bomb, {"Content-Encoding": "gzip"})
    assert code == 413
    assert edge.pipeline.requests == []


def test_unsupported_content_type_or_encoding_is_415(edge: Edge) -> None:
    assert post(edge.traces_url, b"x", {"Content-Type": "text/plain"})[0] == 415
    assert post(edge.traces_url, b"x", {"Content-Encoding": "br"})[0] == 415


def test_wrong_path_and_method(edge: Edge) -> None:
    assert post(edge.traces_url.replace("traces", "metrics"), b"")[0] == 404
    parts = urlsplit(edge.traces_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    conn.request("GET", "/v1/traces")
    response = conn.getresponse()
    assert (response.status, response.getheader("Allow")) == (405, "POST")


def test_ledger_unavailable_is_503_with_retry_after(edge: Edge) -> None:
    edge.pipeline.fail_with = LedgerUnavailable("database is locked")
    code, headers, data = post(edge.traces_url, llm_request(1).SerializeToString())
    assert code == 503
    assert headers["retry-after"] == "7"
    assert status_of(data, PB).code == code_pb2.UNAVAILABLE


def test_pipeline_bug_is_500_and_the_server_keeps_serving(edge: Edge) -> None:
    edge.pipeline.fail_with = RuntimeError("boom")
    assert post(edge.traces_url, llm_request(1).SerializeToString())[0] == 500
    edge.pipeline.fail_with = None
    assert post(edge.traces_url, llm_request(1).SerializeToString())[0] == 200


def test_keep_alive_serves_many_requests_on_one_connection(edge: Edge) -> None:
    parts = urlsplit(edge.traces_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    for _ in range(5):
        code, _, _ = post(edge.traces_url, llm_request(1).SerializeToString(), connection=conn)
        assert code == 200
    # An error answered after reading the body keeps the connection too.
    assert post(edge.traces_url, b"\xff\xff", connection=conn)[0] == 400
    assert post(edge.traces_url, llm_request(1).SerializeToString(), connection=conn)[0] == 200
    conn.close()
    assert len(edge.pipeline.requests) == 6


def test_chunked_body(edge: Edge) -> None:
    request = llm_request(4)
    parts = urlsplit(edge.traces_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    payload = request.SerializeToString()
    conn.request("POST", "/v1/traces", body=iter([payload[:100], payload[100:]]),
                 headers={"Content-Type": PB}, encode_chunked=True)
    assert conn.getresponse().status == 200
    assert edge.pipeline.requests == [request]


def test_bearer_token(secured: Edge) -> None:
    body = llm_request(1).SerializeToString()
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}, {"Authorization": "Basic x"}):
        code, response_headers, data = post(secured.traces_url, body, headers)
        assert code == 401, headers
        assert response_headers["www-authenticate"].startswith("Bearer")
        assert status_of(data, PB).code == code_pb2.UNAUTHENTICATED
    assert secured.pipeline.requests == []
    assert post(secured.traces_url, body, {"Authorization": f"Bearer {TOKEN}"})[0] == 200
    assert len(secured.pipeline.requests) == 1


def test_json_with_base64_ids_is_tolerated(edge: Edge) -> None:
    """Some exporters send protobuf's plain JSON mapping (base64 ids); the lengths tell it apart from hex."""
    request = llm_request(2)
    body = json_format.MessageToJson(request).encode()
    assert post(edge.traces_url, body, {"Content-Type": JS})[0] == 200
    assert edge.pipeline.requests == [request]
