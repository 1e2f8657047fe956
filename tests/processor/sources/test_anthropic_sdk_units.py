"""The anthropic SDK's own span names its 1-hour cache writes and its service tier itself
(`anthropic/_tracing.py` SPAN_ATTRIBUTES): read without Costline's instrumentation."""

from costline.processor.ingest.normalize import normalize_span, resource_attributes
from tests.processor.otlp import llm_span, request_of


def test_the_sdks_own_span_gives_its_one_hour_cache_writes_and_tier():
    span = llm_span(model="claude-sonnet-4-5", provider="anthropic", input_tokens=1450, output_tokens=80,
                    extra={"gen_ai.usage.cache_write.input_tokens": 200,
                           "anthropic.usage.cache_creation.ephemeral_1h_input_tokens": 150,
                           "anthropic.usage.cache_creation.ephemeral_5m_input_tokens": 50,
                           "anthropic.response.service_tier": "priority"})
    request = request_of([span], scope="com.anthropic.sdk.python")
    rs = request.resource_spans[0]
    call = normalize_span(rs.scope_spans[0].spans[0], resource_attributes(rs.resource), "com.anthropic.sdk.python")
    assert call.source == "anthropic-sdk"
    assert (call.input_tokens, call.cache_write_tokens, call.cache_write_1h_tokens) == (1250, 200, 150)
    assert call.service_tier == "priority"
