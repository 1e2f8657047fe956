"""`/v1/logs`, `/v1/metrics` and the gRPC LogsService and MetricsService of a real `costline serve`: the same auth,
encodings, body handling and partial success as `/v1/traces`; a log export that does not decode, or whose request
event carries impossible values, bills nothing; metrics are acknowledged and counted, never billed."""

from __future__ import annotations

import gzip
import json
import time
from pathlib import Path

import grpc
import pytest
from google.rpc import status_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)

from costline.processor.http.otlp_http import decode_json
from tests.processor.assistants.test_recorded_logs import FIXTURES, last_time
from tests.processor.http.test_http_receiver import post
from tests.processor.served import CONFIG, serve

FIXTURE = json.loads((FIXTURES / "claude-code" / "chat.json").read_text())
IDENTITY = "assistants:\n  identities:\n    - {email: alice@acme.com, user: alice}\n"
PROTOBUF = {"Content-Type": "application/x-protobuf"}
METRICS_JSON = {"resourceMetrics": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "claude-code"}}]},
                "scopeMetrics": [{"scope": {"name": "com.anthropic.claude_code"}, "metrics": [
                    {"name": "claude_code.cost.usage", "unit": "USD", "sum": {"aggregationTemporality": 1, "isMonotonic": True,
                     "dataPoints": [{"asDouble": 0.00072, "timeUnixNano": "1796582932021000000",
                                     "exemplars": [{"asDouble": 0.00072, "traceId": "5b8efff798038103d269b633813fc60c",
                                                    "spanId": "eee19b7ec3c1b174"}]}]}},
                    {"name": "claude_code.token.usage", "unit": "tokens", "sum": {"aggregationTemporality": 1, "isMonotonic": True,
                     "dataPoints": [{"asDouble": 120}, {"asDouble": 24}]}}]}]}]}


def logs_request(**token_overrides: int) -> ExportLogsServiceRequest:
    """The recorded export, its request event's token counts replaced as given, its records' times moved to now
    (the processor's clock is the system's: a recorded time would fall out of the accepted window one day)."""
    document = json.loads(json.dumps(FIXTURE["requests"][-1]))
    shift = time.time_ns() - int(last_time(FIXTURE).timestamp() * 1e9)
    for rl in document["resourceLogs"]:
        for sl in rl["scopeLogs"]:
            for record in sl["logRecords"]:
                for key in ("timeUnixNano", "observedTimeUnixNano"):
                    record[key] = str(int(record[key]) + shift)
                for kv in record["attributes"]:
                    if kv["key"] in token_overrides:
                        kv["value"] = {"intValue": str(token_overrides[kv["key"]])}
    return decode_json(json.dumps(document).encode(), ExportLogsServiceRequest)


def billed_requests(served) -> int:
    return sum(int(row["requests"]) for row in served.usage("team"))


@pytest.fixture
def served(tmp_path: Path, serving):
    (tmp_path / "costline.yaml").write_text(CONFIG + IDENTITY)
    process = serve(tmp_path, f"sqlite:///{tmp_path / 'ledger.db'}", grpc=True)
    serving.append(process)
    return process


def test_logs_over_http_bill_once_and_bad_exports_bill_nothing(served):
    logs_url = served.otlp_url.replace("/v1/traces", "/v1/logs")
    # Undecodable bodies: 400 with a google.rpc.Status, in the request's encoding; nothing billed.
    status, _, body = post(logs_url, b"\x0a\xff\xff", PROTOBUF)
    assert status == 400 and "ExportLogsServiceRequest" in status_pb2.Status.FromString(body).message
    status, _, body = post(logs_url, b'{"resourceLogs": [{"scopeLogs": 7}]}', {"Content-Type": "application/json"})
    assert status == 400 and json.loads(body)["message"].startswith("OTLP/JSON")
    # A request event with an impossible token count: rejected as partial success, named, not billed.
    status, _, body = post(logs_url, logs_request(input_tokens=-5).SerializeToString(), PROTOBUF)
    answer = ExportLogsServiceResponse.FromString(body)
    assert status == 200 and answer.partial_success.rejected_log_records == 1
    assert "input_tokens=-5" in answer.partial_success.error_message
    assert billed_requests(served) == 0
    # The recorded export, gzip'd protobuf, sent twice (the exporter's retry): billed once, to alice.
    good = gzip.compress(logs_request().SerializeToString())
    for _ in range(2):
        status, _, body = post(logs_url, good, {**PROTOBUF, "Content-Encoding": "gzip"})
        assert status == 200 and not ExportLogsServiceResponse.FromString(body).HasField("partial_success")
    rows = served.usage("user")
    assert [(r["user"], int(r["requests"])) for r in rows] == [("alice", 1)]
    text = served.metrics()
    assert 'costline_receiver_log_records_total{outcome="rejected",transport="http"} 1.0' in text
    assert 'costline_assistant_requests_total{outcome="duplicate",tool="claude-code"} 1.0' in text


def test_metrics_are_acknowledged_and_counted_never_billed(served):
    metrics_url = served.otlp_url.replace("/v1/traces", "/v1/metrics")
    status, _, body = post(metrics_url, json.dumps(METRICS_JSON).encode(), {"Content-Type": "application/json"})
    assert status == 200 and json.loads(body) == {}
    status, _, body = post(metrics_url, b"\x0a\xff", PROTOBUF)
    assert status == 400
    with grpc.insecure_channel(served.grpc_address) as channel:
        export = channel.unary_unary("/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
                                     request_serializer=ExportMetricsServiceRequest.SerializeToString,
                                     response_deserializer=ExportMetricsServiceResponse.FromString)
        export(decode_json(json.dumps(METRICS_JSON).encode(), ExportMetricsServiceRequest), timeout=10)
    assert billed_requests(served) == 0
    text = served.metrics()
    assert 'costline_receiver_metric_points_total{outcome="accepted",transport="http"} 3.0' in text
    assert 'costline_receiver_metric_points_total{outcome="accepted",transport="grpc"} 3.0' in text


def test_logs_over_grpc_bill_once_and_undecodable_is_invalid_argument(served):
    with grpc.insecure_channel(served.grpc_address) as channel:
        raw = channel.unary_unary("/opentelemetry.proto.collector.logs.v1.LogsService/Export",
                                  request_serializer=lambda b: b, response_deserializer=ExportLogsServiceResponse.FromString)
        with pytest.raises(grpc.RpcError) as refused:
            raw(b"\x0a\xff\xff", timeout=10)
        assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert billed_requests(served) == 0
        export = logs_request().SerializeToString()
        for _ in range(2):  # the exporter's retry sends the same bytes
            raw(export, timeout=10)
    assert [(r["user"], int(r["requests"])) for r in served.usage("user")] == [("alice", 1)]
