"""Table-level behaviour on hand-built spans: detection, billing semantics, aliases, bad input."""

from __future__ import annotations

import math

import pytest

from costline.processor.ingest.normalize import InvalidSpan, normalize_span
from costline.processor.ingest.normalize.providers import canonical_provider

from .spans import make_span

COSTLINE = "costline.instrumentation"
RESOURCE = {"service.name": "checkout", "deployment.environment.name": "prod", "costline.team": "res-team",
            "costline.org": "acme"}

SEMCONV_CALL = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o",
    "gen_ai.response.model": "gpt-4o-2024-08-06",
    "gen_ai.response.id": "chatcmpl-1",
    "gen_ai.usage.input_tokens": 1000,
    "gen_ai.usage.output_tokens": 50,
    "gen_ai.usage.cache_read.input_tokens": 400,
    "gen_ai.usage.cache_write.input_tokens": 100,
    "gen_ai.usage.reasoning.output_tokens": 10,
    "gen_ai.request.stream": True,
    "gen_ai.response.time_to_first_chunk": 0.25,
    "server.address": "api.openai.com",
    "costline.team": "span-team",
    "costline.api_key.fingerprint": "0123456789abcdef",
}


def test_costline_span_all_fields() -> None:
    call = normalize_span(make_span(SEMCONV_CALL, parent_span_id=b"\x09" * 8), RESOURCE, COSTLINE)
    assert call is not None
    assert (call.provider, call.request_model, call.response_model, call.operation) == (
        "openai", "gpt-4o", "gpt-4o-2024-08-06", "chat")
    assert (call.input_tokens, call.cache_read_tokens, call.cache_write_tokens) == (500, 400, 100)
    assert (call.output_tokens, call.reasoning_tokens, call.has_usage) == (50, 10, True)
    assert call.total_input_tokens == 1000
    assert call.stream is True and call.time_to_first_token_s == 0.25
    assert call.response_id == "chatcmpl-1" and call.server_address == "api.openai.com"
    assert call.source == "costline"
    assert call.owner == {"costline.team": "span-team", "costline.org": "acme"}
    assert call.api_key_fingerprint == "0123456789abcdef"
    assert (call.environment, call.service_name) == ("prod", "checkout")
    assert (call.trace_id, call.span_id, call.parent_span_id) == (b"\x01" * 16, b"\x02" * 8, b"\x09" * 8)
    assert call.start_time_unix_nano == 1_700_000_000_000_000_000
    assert call.end_time_unix_nano == 1_700_000_001_000_000_000
    assert call.error_type is None


def test_old_environment_key_and_no_resource() -> None:
    call = normalize_span(make_span(SEMCONV_CALL), {"deployment.environment": "staging"}, "some.lib")
    assert call is not None and call.environment == "staging" and call.service_name is None
    assert call.source == "semconv"


@pytest.mark.parametrize("attrs", [
    {"http.request.method": "GET", "url.full": "https://x"},
    {},
    {"costline.team": "search"},  # owner keys alone: not an LLM call
    {"gen_ai.provider.name": "openai", "http.request.method": "GET"},  # provider tag, no model, no usage
    {"gen_ai.operation.name": "execute_tool", "gen_ai.provider.name": "openai", "gen_ai.request.model": "x"},
    {"openinference.span.kind": "CHAIN", "llm.model_name": "gpt-4o"},
])
def test_not_llm_calls(attrs: dict) -> None:
    assert normalize_span(make_span(attrs), RESOURCE, "some.scope") is None


def test_anthropic_sdk_non_call_span_is_ignored() -> None:
    # the SDK tags every API call with the provider; only spans with an operation are LLM calls (count_tokens is not)
    attrs = {"gen_ai.provider.name": "anthropic", "gen_ai.request.model": "claude-sonnet-4-5",
             "anthropic.message.count_tokens.input_tokens": 12}
    assert normalize_span(make_span(attrs), {}, "com.anthropic.sdk.python") is None


@pytest.mark.parametrize(("raw", "expected"), [
    ("xai", "x_ai"), ("gemini", "gcp.gemini"), ("vertex_ai", "gcp.vertex_ai"), ("az.ai.openai", "azure.ai.openai"),
    ("mistralai", "mistral_ai"), ("Anthropic", "anthropic"), ("OpenAI", "openai"), ("OPENAI", "openai"),
    ("SomethingNew", "somethingnew"), (None, "unknown"), ("", "unknown"),
])
def test_provider_aliases(raw: str | None, expected: str) -> None:
    assert canonical_provider(raw) == expected


def test_gen_ai_system_and_missing_provider() -> None:
    call = normalize_span(make_span({"gen_ai.system": "mistralai", "gen_ai.request.model": "m"}), {}, "x")
    assert call is not None and call.provider == "mistral_ai" and call.operation == "chat"
    call = normalize_span(make_span({"gen_ai.operation.name": "chat", "gen_ai.usage.output_tokens": 3}), {}, "x")
    assert call is not None and call.provider == "unknown" and call.request_model is None and call.has_usage


def test_missing_model_still_a_call() -> None:
    attrs = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.usage.input_tokens": 7}
    call = normalize_span(make_span(attrs), {}, COSTLINE)
    assert call is not None and call.model is None and call.input_tokens == 7


def test_error_type_and_status() -> None:
    base = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o"}
    call = normalize_span(make_span({**base, "error.type": "rate_limit_error"}, error=True), {}, COSTLINE)
    assert call is not None and call.error_type == "rate_limit_error" and not call.has_usage
    call = normalize_span(make_span(base, error=True), {}, COSTLINE)
    assert call is not None and call.error_type == "_OTHER"


def test_cache_creation_alias_and_clamp() -> None:
    attrs = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "anthropic", "gen_ai.request.model": "c",
             "gen_ai.usage.input_tokens": 100, "gen_ai.usage.cache_creation.input_tokens": 300}
    call = normalize_span(make_span(attrs), {}, "x")
    assert call is not None and call.cache_write_tokens == 300 and call.input_tokens == 0


@pytest.mark.parametrize("bad", [-1, 10**12 + 1, math.nan, math.inf, -0.5, "-3", "1e13", "nan"])
def test_impossible_counts_reject(bad: object) -> None:
    attrs = {**SEMCONV_CALL, "gen_ai.usage.output_tokens": bad}
    with pytest.raises(InvalidSpan):
        normalize_span(make_span(attrs), {}, COSTLINE)


@pytest.mark.parametrize("junk", [True, [1, 2], "many", b"\x01", ""])
def test_wrong_types_are_ignored(junk: object) -> None:
    model_junk = "" if isinstance(junk, str) else junk  # any non-empty string is a valid model name
    attrs = {**SEMCONV_CALL, "gen_ai.usage.output_tokens": junk, "gen_ai.request.model": model_junk,
             "gen_ai.request.stream": [True], "gen_ai.response.time_to_first_chunk": "soon", "costline.team": 5}
    call = normalize_span(make_span(attrs), {"costline.team": ["x"]}, COSTLINE)
    assert call is not None
    assert call.output_tokens == 0 and call.request_model is None and call.stream is False
    assert call.time_to_first_token_s is None and "costline.team" not in call.owner


def test_string_and_float_counts_accepted() -> None:
    attrs = {**SEMCONV_CALL, "gen_ai.usage.input_tokens": " 1200 ", "gen_ai.usage.output_tokens": 50.0}
    call = normalize_span(make_span(attrs), {}, COSTLINE)
    assert call is not None and call.input_tokens == 700 and call.output_tokens == 50


def test_negative_ttft_dropped_not_rejected() -> None:
    call = normalize_span(make_span({**SEMCONV_CALL, "gen_ai.response.time_to_first_chunk": -1.0}), {}, COSTLINE)
    assert call is not None and call.time_to_first_token_s is None


def test_junk_on_non_llm_span_never_raises() -> None:
    assert normalize_span(make_span({"gen_ai.usage.input_tokens": -5}), {}, "x") is None


def test_retries_from_the_resend_count() -> None:
    call = normalize_span(make_span({**SEMCONV_CALL, "http.request.resend_count": 2}), RESOURCE, COSTLINE)
    assert call is not None and call.retries == 2
    assert normalize_span(make_span(SEMCONV_CALL), RESOURCE, COSTLINE).retries == 0  # absent: no retry counted


@pytest.mark.parametrize("value", [-1, "lots", 10**9, 1.5, True])
def test_a_bad_resend_count_is_ignored_never_rejects_the_bill(value) -> None:
    call = normalize_span(make_span({**SEMCONV_CALL, "http.request.resend_count": value}), RESOURCE, COSTLINE)
    assert call is not None and call.retries == 0 and call.input_tokens == 500


def test_peer_spans_have_no_retries() -> None:
    attrs = {"openinference.span.kind": "LLM", "llm.model_name": "gpt-4o", "llm.provider": "openai",
             "llm.token_count.prompt": 10, "llm.token_count.completion": 2}
    call = normalize_span(make_span(attrs), RESOURCE, "openinference.instrumentation.openai")
    assert call is not None and call.retries == 0
