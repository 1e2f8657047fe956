"""OTLP/gRPC TraceService/Export: the same outcomes as OTLP/HTTP, as gRPC status codes."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub

from tests.processor.http.conftest import TOKEN, Edge, LedgerUnavailable
from tests.processor.otlp import llm_request

METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


@pytest.fixture
def stub(edge: Edge):
    with grpc.insecure_channel(edge.grpc_target) as channel:
        yield TraceServiceStub(channel)


def test_export_ok_and_partial_success(edge: Edge, stub: TraceServiceStub) -> None:
    request = llm_request(3)
    assert stub.Export(request, timeout=5) == ExportTraceServiceResponse()
    assert edge.pipeline.requests == [request]
    edge.pipeline.reject = 1
    response = stub.Export(llm_request(3), timeout=5)
    assert response.partial_success.rejected_spans == 1


def test_gzip_compressed_call(edge: Edge, stub: TraceServiceStub) -> None:
    request = llm_request(3)
    stub.Export(request, timeout=5, compression=grpc.Compression.Gzip)
    assert edge.pipeline.requests == [request]


def test_undecodable_message_is_invalid_argument(edge: Edge) -> None:
    with grpc.insecure_channel(edge.grpc_target) as channel:
        raw = channel.unary_unary(METHOD)  # no serializers: send bytes as they are
        with pytest.raises(grpc.RpcError) as caught:
            raw(b"\xff\xff\xff\xff\x0f garbage", timeout=5)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert edge.pipeline.requests == []


def test_message_over_the_limit_is_resource_exhausted(edge: Edge) -> None:
    with grpc.insecure_channel(edge.grpc_target) as channel:
        raw = channel.unary_unary(METHOD)
        with pytest.raises(grpc.RpcError) as caught:
            raw(b"\0" * (1024 * 1024 + 10), timeout=5)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_ledger_unavailable_is_unavailable_with_retry_info(edge: Edge, stub: TraceServiceStub) -> None:
    edge.pipeline.fail_with = LedgerUnavailable("disk full")
    with pytest.raises(grpc.RpcError) as caught:
        stub.Export(llm_request(1), timeout=5)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    retry = dict(caught.value.trailing_metadata())["google.rpc.retryinfo-bin"]
    assert error_details_pb2.RetryInfo.FromString(retry).retry_delay.seconds == 7


def test_pipeline_bug_is_internal(edge: Edge, stub: TraceServiceStub) -> None:
    edge.pipeline.fail_with = RuntimeError("boom")
    with pytest.raises(grpc.RpcError) as caught:
        stub.Export(llm_request(1), timeout=5)
    assert caught.value.code() == grpc.StatusCode.INTERNAL


def test_bearer_token_in_metadata(secured: Edge) -> None:
    with grpc.insecure_channel(secured.grpc_target) as channel:
        stub = TraceServiceStub(channel)
        for metadata in ((), (("authorization", "Bearer wrong"),), (("authorization", TOKEN),)):
            with pytest.raises(grpc.RpcError) as caught:
                stub.Export(llm_request(1), timeout=5, metadata=metadata)
            assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert secured.pipeline.requests == []
        stub.Export(llm_request(1), timeout=5, metadata=(("authorization", f"Bearer {TOKEN}"),))
        assert len(secured.pipeline.requests) == 1
