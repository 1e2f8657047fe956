"""Peers not installable here, built from the attribute names in their source (OpenLIT 1.45 wheel:
`openlit/semcov/__init__.py`, `instrumentation/{openai,anthropic}/utils.py`, `__helpers.py`; OpenLLMetry's anthropic
instrumentation and legacy aliases: `opentelemetry-semantic-conventions-ai` 0.5). OpenLIT pins openai<3 and
anthropic<1, so installing it would downgrade the SDKs the project supports."""

from __future__ import annotations

import pytest

from costline.processor.ingest.normalize import normalize_span

from .spans import make_span

OPENLIT_COMMON = {
    "telemetry.sdk.name": "openlit",
    "gen_ai.operation.name": "chat",
    "server.address": "api.anthropic.com",
    "deployment.environment": "default",
    "service.name": "default",
    "gen_ai.usage.cost": 0.0123,  # OpenLIT's own price: ignored, the processor prices
    "gen_ai.server.time_to_first_token": 0.42,
}


def test_openlit_anthropic_input_excludes_cache() -> None:
    # openlit/instrumentation/anthropic/utils.py: input = anthropic usage.input_tokens (uncached), cache on top
    attrs = {**OPENLIT_COMMON, "gen_ai.system": "anthropic", "gen_ai.request.model": "claude-sonnet-4-5",
             "gen_ai.response.model": "claude-sonnet-4-5", "gen_ai.response.id": "msg_1",
             "gen_ai.usage.input_tokens": 250, "gen_ai.usage.output_tokens": 80,
             "gen_ai.usage.cache_read.input_tokens": 1000, "gen_ai.usage.cache_creation.input_tokens": 200,
             "gen_ai.request.stream": True}
    call = normalize_span(make_span(attrs), {}, "openlit.instrumentation.anthropic")
    assert call is not None and call.source == "openlit"
    assert (call.input_tokens, call.cache_read_tokens, call.cache_write_tokens, call.output_tokens) == (250, 1000, 200, 80)
    assert call.time_to_first_token_s == 0.42 and call.stream is True


def test_openlit_openai_input_includes_cache_and_reasoning_alias() -> None:
    attrs = {**OPENLIT_COMMON, "gen_ai.provider.name": "openai", "gen_ai.request.model": "o3",
             "gen_ai.usage.input_tokens": 1000, "gen_ai.usage.output_tokens": 50,
             "gen_ai.usage.cache_read.input_tokens": 400, "gen_ai.usage.reasoning_tokens": 10,
             "gen_ai.request.stream": False}
    # detected by telemetry.sdk.name even under an unknown scope name
    call = normalize_span(make_span(attrs), {}, "some.other.scope")
    assert call is not None and call.source == "openlit"
    assert (call.input_tokens, call.cache_read_tokens, call.output_tokens, call.reasoning_tokens) == (600, 400, 50, 10)
    assert call.time_to_first_token_s is None  # OpenLIT's "ttft" on a non-stream is the whole latency


@pytest.mark.parametrize(("system", "provider"), [
    ("gemini", "gcp.gemini"), ("vertex_ai", "gcp.vertex_ai"), ("xai", "x_ai"), ("mistral_ai", "mistral_ai"),
    ("azure.ai.openai", "azure.ai.openai"),
])
def test_openlit_old_system_values(system: str, provider: str) -> None:
    attrs = {**OPENLIT_COMMON, "gen_ai.system": system, "gen_ai.request.model": "m", "gen_ai.usage.input_tokens": 5}
    call = normalize_span(make_span(attrs), {}, "openlit.instrumentation.x")
    assert call is not None and call.provider == provider


def test_openllmetry_anthropic_legacy_aliases_input_includes_cache() -> None:
    # OpenLLMetry's anthropic instrumentation sums input + cache read + cache creation into prompt tokens
    attrs = {"gen_ai.system": "Anthropic", "llm.request.type": "chat", "gen_ai.request.model": "claude-sonnet-4-5",
             "gen_ai.response.model": "claude-sonnet-4-5", "gen_ai.response.id": "msg_1",
             "gen_ai.usage.prompt_tokens": 1450, "gen_ai.usage.completion_tokens": 80,
             "gen_ai.usage.cache_read_input_tokens": 1000, "gen_ai.usage.cache_creation_input_tokens": 200,
             "llm.usage.total_tokens": 1530, "llm.is_streaming": True}
    call = normalize_span(make_span(attrs, name="anthropic.chat"), {}, "opentelemetry.instrumentation.anthropic")
    assert call is not None and call.source == "openllmetry"
    assert call.provider == "anthropic" and call.operation == "chat" and call.stream is True
    assert (call.input_tokens, call.cache_read_tokens, call.cache_write_tokens, call.output_tokens) == (250, 1000, 200, 80)


@pytest.mark.parametrize(("request_type", "operation"), [
    ("chat", "chat"), ("completion", "text_completion"), ("embedding", "embeddings"), ("weird", "chat"),
])
def test_openllmetry_request_type_gives_operation(request_type: str, operation: str) -> None:
    attrs = {"gen_ai.system": "openai", "llm.request.type": request_type, "gen_ai.request.model": "m",
             "gen_ai.usage.prompt_tokens": 10}
    call = normalize_span(make_span(attrs), {}, "opentelemetry.instrumentation.openai.v1")
    assert call is not None and call.operation == operation


def test_only_total_and_output() -> None:
    attrs = {"gen_ai.system": "openai", "gen_ai.request.model": "m", "llm.usage.total_tokens": 100,
             "gen_ai.usage.completion_tokens": 30}
    call = normalize_span(make_span(attrs), {}, "opentelemetry.instrumentation.openai.v1")
    assert call is not None and (call.input_tokens, call.output_tokens, call.has_usage) == (70, 30, True)


def test_openinference_anthropic_cache_write_and_provider_values() -> None:
    attrs = {"openinference.span.kind": "LLM", "llm.provider": "anthropic", "llm.system": "anthropic",
             "llm.model_name": "claude-sonnet-4-5", "llm.token_count.prompt": 1450,
             "llm.token_count.completion": 80, "llm.token_count.prompt_details.cache_read": 1000,
             "llm.token_count.prompt_details.cache_write": 200}
    call = normalize_span(make_span(attrs), {}, "openinference.instrumentation.anthropic")
    assert call is not None and call.source == "openinference" and call.provider == "anthropic"
    assert (call.input_tokens, call.cache_read_tokens, call.cache_write_tokens) == (250, 1000, 200)


@pytest.mark.parametrize(("value", "provider"), [
    ("azure", "azure.ai.openai"), ("google", "gcp.gen_ai"), ("aws", "aws.bedrock"), ("xai", "x_ai"),
    ("mistralai", "mistral_ai"), ("deepseek", "deepseek"), ("fireworks", "fireworks"),
])
def test_openinference_provider_values(value: str, provider: str) -> None:
    attrs = {"openinference.span.kind": "LLM", "llm.provider": value, "llm.model_name": "m"}
    call = normalize_span(make_span(attrs), {}, "openinference.instrumentation.x")
    assert call is not None and call.provider == provider


def test_openinference_detected_by_kind_under_other_scope_and_embedding() -> None:
    attrs = {"openinference.span.kind": "EMBEDDING", "embedding.model_name": "text-embedding-3-small",
             "llm.token_count.prompt": 16, "llm.system": "openai"}
    call = normalize_span(make_span(attrs), {}, "my.app")
    assert call is not None and call.source == "openinference" and call.operation == "embeddings"
    assert call.model == "text-embedding-3-small" and call.input_tokens == 16


def test_official_openai_v2_scope_is_semconv() -> None:
    # opentelemetry-instrumentation-openai-v2 (default mode): gen_ai.system, input/output only
    attrs = {"gen_ai.system": "openai", "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
             "gen_ai.usage.input_tokens": 100, "gen_ai.usage.output_tokens": 5}
    call = normalize_span(make_span(attrs), {}, "opentelemetry.instrumentation.openai_v2")
    assert call is not None and call.source == "semconv" and call.input_tokens == 100
