"""Spans really emitted by each instrumentation for real SDK calls → exact `LLMCall`s, cache semantics included.

The fake provider reports (semconv totals) chat: 1000 input of which 400 cached, 50 output of which 10 reasoning;
responses: 2000 / 500 cached, 300 / 100 reasoning; anthropic: 1450 input = 250 uncached + 1000 read + 200 written,
80 output; embeddings: 16 input. Billing semantics: input_tokens is the uncached part.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from costline.processor.ingest.normalize import dedupe_calls, normalize_span, resource_attributes
from costline.processor.model import LLMCall


def normalize_all(request: ExportTraceServiceRequest) -> list[LLMCall]:
    calls = []
    for resource_spans in request.resource_spans:
        resource = resource_attributes(resource_spans.resource)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                call = normalize_span(span, resource, scope_spans.scope.name)
                if call is not None:
                    calls.append(call)
    return calls


@dataclass(frozen=True)
class Want:
    request_model: str | None
    response_model: str | None
    operation: str
    tokens: tuple[int, int, int, int, int]  # uncached input, output, cache read, cache write, reasoning
    response_id: str | None
    stream: bool = False
    error: str | None = None
    provider: str = "openai"


CHAT = Want("gpt-4o", "gpt-4o-2024-08-06", "chat", (600, 50, 400, 0, 10), "chatcmpl-fake123")
STREAM = Want("gpt-4o", "gpt-4o-2024-08-06", "chat", (600, 50, 400, 0, 10), "chatcmpl-fake123", stream=True)
RESPONSES = Want("o3", "o3", "chat", (1500, 300, 500, 0, 100), "resp_fake123")
EMBED = Want("text-embedding-3-small", "text-embedding-3-small", "embeddings", (16, 0, 0, 0, 0), None)
ERROR = Want("gpt-4o", None, "chat", (0, 0, 0, 0, 0), None, error="api_error")
ANTHROPIC = Want("claude-sonnet-4-5", "claude-sonnet-4-5", "chat", (250, 80, 1000, 200, 0), "msg_fake123",
                 provider="anthropic")
ANTHROPIC_STREAM = Want("claude-sonnet-4-5", "claude-sonnet-4-5", "chat", (250, 80, 1000, 200, 0), "msg_fake123",
                        stream=True, provider="anthropic")


def _replace(want: Want, **changes: object) -> Want:
    return Want(**{**want.__dict__, **changes})


CASES: list[tuple[str, str, str, Want]] = [
    # setup, scenario, expected source, expected call
    ("costline", "chat", "costline", CHAT),
    ("costline", "chat_stream", "costline", STREAM),
    ("costline", "responses", "costline", RESPONSES),
    ("costline", "embeddings", "costline", EMBED),
    ("costline", "chat_error", "costline", ERROR),
    ("costline", "anthropic", "costline", ANTHROPIC),
    ("costline", "anthropic_stream", "costline", ANTHROPIC_STREAM),
    ("otel-genai", "chat", "otel-genai", CHAT),
    ("otel-genai", "chat_stream", "otel-genai", STREAM),
    ("otel-genai", "responses", "otel-genai", RESPONSES),
    ("otel-genai", "embeddings", "otel-genai", EMBED),
    ("otel-genai", "chat_error", "otel-genai", _replace(ERROR, error="openai.InternalServerError")),
    ("openllmetry", "chat", "openllmetry", CHAT),
    # OpenLLMetry 0.62 drops reasoning tokens on streams (they stay inside output, billed at the output rate).
    ("openllmetry", "chat_stream", "openllmetry", _replace(STREAM, tokens=(600, 50, 400, 0, 0))),
    ("openllmetry", "responses", "openllmetry", RESPONSES),
    ("openllmetry", "embeddings", "openllmetry", EMBED),
    ("openllmetry", "chat_error", "openllmetry", _replace(ERROR, error="InternalServerError")),
    # OpenInference: one model attribute (from the response), the requested one only in llm.invocation_parameters;
    # no response id, no stream flag, no error.type.
    ("openinference", "chat", "openinference", _replace(CHAT, response_id=None)),
    ("openinference", "chat_stream", "openinference", _replace(STREAM, response_id=None, stream=False)),
    ("openinference", "responses", "openinference", _replace(RESPONSES, response_id=None)),
    ("openinference", "embeddings", "openinference", EMBED),
    ("openinference", "chat_error", "openinference", _replace(ERROR, error="_OTHER")),
    # the anthropic SDK's own span, alone (recorded in the otel-genai process, which leaves anthropic alone) and
    # with Costline stamping owner keys and the fingerprint onto it
    ("otel-genai", "anthropic_sdk", "anthropic-sdk", ANTHROPIC),
    ("otel-genai", "anthropic_sdk_stream", "anthropic-sdk", ANTHROPIC_STREAM),
    ("costline", "anthropic_sdk", "anthropic-sdk", ANTHROPIC),
    ("costline", "anthropic_sdk_stream", "anthropic-sdk", ANTHROPIC_STREAM),
]


@pytest.mark.parametrize(("setup", "scenario", "source", "want"), CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_recorded_span_normalises_exactly(recorded, setup: str, scenario: str, source: str, want: Want) -> None:
    calls = normalize_all(recorded(setup)[scenario])
    assert len(calls) == 1, calls
    call = calls[0]
    assert call.source == source
    assert (call.provider, call.request_model, call.response_model, call.operation) == (
        want.provider, want.request_model, want.response_model, want.operation)
    assert (call.input_tokens, call.output_tokens, call.cache_read_tokens, call.cache_write_tokens,
            call.reasoning_tokens) == want.tokens
    assert call.has_usage is (want.error is None)
    assert call.response_id == want.response_id
    assert call.stream is want.stream
    assert call.error_type == want.error
    assert (call.environment, call.service_name) == ("test", "recorder")
    assert call.owner["costline.org"] == "acme"  # resource attribute
    assert len(call.trace_id) == 16 and len(call.span_id) == 8
    assert 0 < call.start_time_unix_nano <= call.end_time_unix_nano
    if want.stream and source != "openinference" and source != "openllmetry":
        assert call.time_to_first_token_s is not None and call.time_to_first_token_s > 0
    if "costline" in setup:  # Costline stamps owner keys and the key fingerprint onto the span it bills
        assert call.owner["costline.team"] == "search"
        assert call.api_key_fingerprint is not None and len(call.api_key_fingerprint) == 16


def test_anthropic_sdk_without_costline_has_no_owner_stamp(recorded) -> None:
    (call,) = normalize_all(recorded("otel-genai")["anthropic_sdk"])
    assert call.owner == {"costline.org": "acme"} and call.api_key_fingerprint is None


@pytest.mark.parametrize("scenario", ["chat", "chat_stream", "responses", "embeddings", "chat_error"])
def test_openllmetry_and_costline_bill_once(recorded, scenario: str) -> None:
    calls = normalize_all(recorded("openllmetry+costline")[scenario])
    assert sorted(c.source for c in calls) == ["costline", "openllmetry"]
    (kept,) = dedupe_calls(calls)
    assert kept.source == "costline"
    assert kept.owner["costline.team"] == "search" and kept.api_key_fingerprint is not None
