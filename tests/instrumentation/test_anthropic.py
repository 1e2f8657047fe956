"""The real anthropic SDK: one GenAI span per call, whether or not the SDK's own tracing is on."""

from __future__ import annotations

import json
from types import SimpleNamespace

import anthropic
import pytest
from opentelemetry.trace import StatusCode

from costline import owner
from costline.fingerprint import fingerprint
from costline.instrumentation.anthropic.usage import record_message
from costline.instrumentation.call_span import CallSpan
from costline.testing.fake_provider import CHUNK_TEXTS

from .conftest import ANTHROPIC_KEY, mock_async_http, mock_http

MESSAGES = [{"role": "user", "content": "Summarise the invoice"}]
MODEL = "claude-sonnet-4-5"
USAGE = {"x-fake-usage": json.dumps({"input": 1450, "cached": 1000, "cache_write": 200, "output": 80})}


def client(tracer_provider, sdk_tracing: bool, **kw):
    option = {"tracer_provider": tracer_provider} if sdk_tracing else False
    return anthropic.Anthropic(api_key=ANTHROPIC_KEY, http_client=mock_http(), open_telemetry=option, **kw)


def async_client(tracer_provider, sdk_tracing: bool):
    option = {"tracer_provider": tracer_provider} if sdk_tracing else False
    return anthropic.AsyncAnthropic(api_key=ANTHROPIC_KEY, http_client=mock_async_http(), open_telemetry=option)


def assert_usage(attrs):
    # semconv input = uncached 250 + cache read 1000 + cache write 200
    assert attrs["gen_ai.usage.input_tokens"] == 1450
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 1000
    assert attrs["gen_ai.usage.cache_write.input_tokens"] == 200
    assert attrs["gen_ai.usage.output_tokens"] == 80


@pytest.mark.parametrize("sdk_tracing", [True, False], ids=["sdk-span", "costline-span"])
def test_one_span_per_call_with_owner_and_fingerprint(spans, tracer_provider, sdk_tracing):
    with owner(team="legal", project="contracts"):
        client(tracer_provider, sdk_tracing).messages.create(
            model=MODEL, max_tokens=100, messages=MESSAGES, extra_headers=USAGE
        )
    span = spans.one()
    scope = "com.anthropic.sdk.python" if sdk_tracing else "costline.instrumentation"
    assert span.instrumentation_scope.name == scope
    a = span.attributes
    assert a["gen_ai.provider.name"] == "anthropic"
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.request.model"] == MODEL
    assert a["gen_ai.response.model"] == MODEL
    assert a["gen_ai.response.id"] == "msg_fake123"
    assert a["costline.team"] == "legal" and a["costline.project"] == "contracts"
    assert a["costline.api_key.fingerprint"] == fingerprint(ANTHROPIC_KEY)
    assert_usage(a)


@pytest.mark.parametrize("sdk_tracing", [True, False], ids=["sdk-span", "costline-span"])
def test_stream_create(spans, tracer_provider, sdk_tracing):
    stream = client(tracer_provider, sdk_tracing).messages.create(
        model=MODEL, max_tokens=100, messages=MESSAGES, stream=True, extra_headers=USAGE
    )
    texts = [e.delta.text for e in stream if e.type == "content_block_delta"]
    assert texts == list(CHUNK_TEXTS)
    a = spans.one().attributes
    assert_usage(a)
    assert a["gen_ai.request.stream"] is True
    assert a["gen_ai.response.time_to_first_chunk"] > 0


@pytest.mark.parametrize("sdk_tracing", [True, False], ids=["sdk-span", "costline-span"])
def test_messages_stream_helper(spans, tracer_provider, sdk_tracing):
    with client(tracer_provider, sdk_tracing).messages.stream(
        model=MODEL, max_tokens=100, messages=MESSAGES, extra_headers=USAGE
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "".join(CHUNK_TEXTS)
    assert final.usage.output_tokens == 80
    assert_usage(spans.one().attributes)


def test_stream_closed_early(spans, tracer_provider):
    stream = client(tracer_provider, False).messages.create(
        model=MODEL, max_tokens=100, messages=MESSAGES, stream=True, extra_headers=USAGE
    )
    next(iter(stream))
    stream.close()
    a = spans.one().attributes
    assert a["gen_ai.usage.cache_read.input_tokens"] == 1000  # message_start arrived before the close


@pytest.mark.parametrize("sdk_tracing", [True, False], ids=["sdk-span", "costline-span"])
async def test_async_create_and_stream(spans, tracer_provider, sdk_tracing):
    c = async_client(tracer_provider, sdk_tracing)
    await c.messages.create(model=MODEL, max_tokens=100, messages=MESSAGES, extra_headers=USAGE)
    async with c.messages.stream(model=MODEL, max_tokens=100, messages=MESSAGES, extra_headers=USAGE) as stream:
        async for _ in stream:
            pass
    assert len(spans.all()) == 2
    for span in spans.all():
        assert_usage(span.attributes)


def test_midstream_error_is_recorded_and_reraised(spans, tracer_provider):
    stream = client(tracer_provider, False).messages.create(
        model=MODEL, max_tokens=100, messages=MESSAGES, stream=True, extra_headers={"x-fake-scenario": "midstream-error"}
    )
    with pytest.raises(anthropic.APIStatusError) as info:
        for _ in stream:
            pass
    span = spans.one()
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes["error.type"] == "overloaded_error"
    assert info.value.type == "overloaded_error" if hasattr(info.value, "type") else True


@pytest.mark.parametrize("sdk_tracing", [True, False], ids=["sdk-span", "costline-span"])
def test_429_retry_counted(spans, tracer_provider, sdk_tracing):
    client(tracer_provider, sdk_tracing, max_retries=2).messages.create(
        model=MODEL, max_tokens=100, messages=MESSAGES, extra_headers={"x-fake-scenario": "429-once"}
    )
    assert spans.one().attributes["http.request.resend_count"] == 1


@pytest.mark.parametrize("sdk_tracing", [True, False], ids=["sdk-span", "costline-span"])
def test_error_reaches_caller_unchanged(spans, tracer_provider, sdk_tracing):
    with pytest.raises(anthropic.InternalServerError) as info:
        client(tracer_provider, sdk_tracing, max_retries=0).messages.create(
            model=MODEL, max_tokens=100, messages=MESSAGES, extra_headers={"x-fake-scenario": "500"}
        )
    assert type(info.value) is anthropic.InternalServerError
    span = spans.one()
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes["error.type"] == "api_error"


def test_sdk_span_into_another_provider_means_costline_makes_its_own(spans):
    from opentelemetry.sdk.trace import TracerProvider

    elsewhere = TracerProvider()  # the SDK traces into a provider Costline does not export through
    c = anthropic.Anthropic(api_key=ANTHROPIC_KEY, http_client=mock_http(), open_telemetry={"tracer_provider": elsewhere})
    c.messages.create(model=MODEL, max_tokens=100, messages=MESSAGES, extra_headers=USAGE)
    span = spans.one()
    assert span.instrumentation_scope.name == "costline.instrumentation"
    assert_usage(span.attributes)


def test_response_metadata_takes_the_service_tier_from_the_usage_and_only_non_empty_strings(tracer_provider):
    call = CallSpan(tracer_provider.get_tracer("test"), "chat", MODEL, {})
    record_message(call, SimpleNamespace(model=MODEL, id=None, usage=SimpleNamespace(
        service_tier="priority", input_tokens=10, output_tokens=2)))
    assert call.response_attrs == {"gen_ai.response.model": MODEL, "anthropic.response.service_tier": "priority",
                                   "gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 2}
    call.end()
