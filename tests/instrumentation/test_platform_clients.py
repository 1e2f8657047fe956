"""`AnthropicBedrock` and `AnthropicVertex` (the anthropic SDK's platform clients) are their platforms' calls:
provider `aws.bedrock` / `gcp.vertex_ai` on sync, async and streamed calls, whichever span records them, and the
processor prices them at AWS's and Google's list prices (issue 17 item 3).

The real SDK clients talk to the fake provider over `httpx2.MockTransport` in their own wire formats: Bedrock's
`/model/{id}/invoke` and its binary AWS event stream (decoded by botocore, as in production), Vertex AI's
`:rawPredict` / `:streamRawPredict`.
"""

from __future__ import annotations

import json
from decimal import Decimal

import anthropic
import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

from .conftest import mock_async_http, mock_http

pytest.importorskip("botocore", reason="anthropic[bedrock] decodes Bedrock streams with botocore")

BEDROCK_MODEL = "anthropic.claude-sonnet-4-5-20250929-v1:0"
VERTEX_MODEL = "claude-sonnet-4-5@20250929"
MESSAGES = [{"role": "user", "content": "Summarise the invoice"}]
USAGE = {"x-fake-usage": json.dumps({"input": 12_000, "cached": 8_000, "cache_write": 1_000, "output": 600})}


def bedrock(tracer_provider, sdk_tracing: bool, is_async: bool = False):
    option = {"tracer_provider": tracer_provider} if sdk_tracing else False
    cls = anthropic.AsyncAnthropicBedrock if is_async else anthropic.AnthropicBedrock
    return cls(api_key="bedrock-api-key", aws_region="us-east-1", open_telemetry=option,
               http_client=(mock_async_http if is_async else mock_http)())


def vertex(tracer_provider, sdk_tracing: bool, is_async: bool = False):
    option = {"tracer_provider": tracer_provider} if sdk_tracing else False
    cls = anthropic.AsyncAnthropicVertex if is_async else anthropic.AnthropicVertex
    return cls(access_token="ya29.token", region="us-east5", project_id="acme-prod", open_telemetry=option,
               http_client=(mock_async_http if is_async else mock_http)())


PLATFORMS = [(bedrock, BEDROCK_MODEL, "aws.bedrock"), (vertex, VERTEX_MODEL, "gcp.vertex_ai")]


def assert_platform_call(span, model: str, provider: str) -> None:
    a = span.attributes
    assert a["gen_ai.provider.name"] == provider
    assert a["gen_ai.request.model"] == model
    assert a["gen_ai.usage.input_tokens"] == 12_000
    assert (a["gen_ai.usage.cache_read.input_tokens"], a["gen_ai.usage.cache_write.input_tokens"]) == (8_000, 1_000)
    assert a["gen_ai.usage.output_tokens"] == 600


@pytest.mark.parametrize("sdk_tracing", [True, False], ids=["sdk-span", "costline-span"])
@pytest.mark.parametrize(("make", "model", "provider"), PLATFORMS, ids=["bedrock", "vertex"])
def test_platform_client_sync_and_streams(spans, tracer_provider, make, model, provider, sdk_tracing):
    client = make(tracer_provider, sdk_tracing)
    kw = dict(model=model, max_tokens=100, messages=MESSAGES, extra_headers=USAGE)
    assert client.messages.create(**kw).usage.output_tokens == 600
    events = [event.type for event in client.messages.create(stream=True, **kw)]
    assert events[0] == "message_start" and events[-1] == "message_stop"
    with client.messages.stream(**kw) as stream:
        stream.until_done()
    assert len(spans.all()) == 3
    for span in spans.all():
        assert_platform_call(span, model, provider)


@pytest.mark.parametrize("sdk_tracing", [True, False], ids=["sdk-span", "costline-span"])
@pytest.mark.parametrize(("make", "model", "provider"), PLATFORMS, ids=["bedrock", "vertex"])
async def test_platform_client_async(spans, tracer_provider, make, model, provider, sdk_tracing):
    client = make(tracer_provider, sdk_tracing, is_async=True)
    kw = dict(model=model, max_tokens=100, messages=MESSAGES, extra_headers=USAGE)
    await client.messages.create(**kw)
    async with client.messages.stream(**kw) as stream:
        await stream.until_done()
    assert len(spans.all()) == 2
    for span in spans.all():
        assert_platform_call(span, model, provider)


# --- priced by the processor at the platform's list price --------------------------------------------------------------
# genai-prices 0.2.5, per million tokens (input / cache read / 5-minute cache write / output):
#   aws regional.anthropic.claude-sonnet-4-5-20250929-v1:0   3.30 / 0.33 / 4.125 / 16.50  (Bedrock's regional +10 %)
#   google claude-sonnet-4-5                                 3.00 / 0.30 / 3.75  / 15.00
# The call: 12 000 input of which 8 000 cache reads and 1 000 cache writes (3 000 uncached), 600 output.
HAND = {
    "aws.bedrock": (Decimal("3000") * Decimal("3.30") + Decimal("8000") * Decimal("0.33")
                    + Decimal("1000") * Decimal("4.125") + Decimal("600") * Decimal("16.50")) / 10**6,
    "gcp.vertex_ai": (Decimal("3000") * Decimal("3.00") + Decimal("8000") * Decimal("0.30")
                      + Decimal("1000") * Decimal("3.75") + Decimal("600") * Decimal("15.00")) / 10**6,
}
"""0.02606 USD on Bedrock, 0.02415 USD on Vertex AI; the same call on Anthropic's own API is 0.02415 too."""


@pytest.mark.parametrize("sdk_tracing", [True, False], ids=["sdk-span", "costline-span"])
@pytest.mark.parametrize(("make", "model", "provider"), PLATFORMS, ids=["bedrock", "vertex"])
def test_priced_at_the_platforms_list_price(spans, tracer_provider, make, model, provider, sdk_tracing):
    pytest.importorskip("costline.processor", reason="prices with the processor's pricer (not beside the oldest SDKs)")
    from costline.processor.ingest.normalize.span import normalize_span
    from costline.processor.pricing import Pricer

    make(tracer_provider, sdk_tracing).messages.create(model=model, max_tokens=100, messages=MESSAGES,
                                                       extra_headers=USAGE)
    sdk_span = spans.one()
    request = encode_spans([sdk_span])  # the OTLP the exporter sends
    scope_spans = request.resource_spans[0].scope_spans[0]
    call = normalize_span(scope_spans.spans[0], {}, scope_spans.scope.name)
    assert call is not None and call.provider == provider and call.model == model
    rates = Pricer([]).rates(call.provider, call.model, call.start_time_unix_nano)
    assert rates is not None, f"{provider} {model} unpriced"
    assert rates.model_id.startswith("aws/" if provider == "aws.bedrock" else "google/")
    assert rates.cost(call) == HAND[provider]
