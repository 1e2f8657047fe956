"""Every billable unit the SDKs report reaches the span (issue 17 item 3): audio, image and video tokens, 1-hour
cache writes, server-side web searches and code executions, and the service tier asked for and billed — through the
real openai and anthropic SDKs against the fake provider's exact wire format."""

from __future__ import annotations

import json

import anthropic
import pytest

from costline.instrumentation import CostlineInstrumentor, guard
from costline.testing.fake_provider import CHUNK_TEXTS

from .conftest import ANTHROPIC_KEY, mock_async_http, mock_http

try:
    from anthropic import _tracing as _anthropic_tracing
except ImportError:  # releases before the SDK's own tracing
    _anthropic_tracing = None
NEEDS_SDK_TABLE = pytest.mark.skipif(
    getattr(_anthropic_tracing, "SPAN_ATTRIBUTES", None) is None,
    reason="this anthropic release's own tracing has no attribute table (SPAN_ATTRIBUTES) for Costline's rows")
SDK_SPAN_OR_OURS = [pytest.param(True, id="sdk-span", marks=NEEDS_SDK_TABLE), pytest.param(False, id="costline-span")]

PROMPT = "What did the invoice for project Zephyr say?"
MESSAGES = [{"role": "user", "content": PROMPT}]
ANSWER = "".join(CHUNK_TEXTS)


def usage_header(**usage: int) -> dict[str, str]:
    return {"x-fake-usage": json.dumps(usage)}


def assert_no_content(span) -> None:
    """Nothing of the prompt or the answer is on the span: only counts, names and ids."""
    for value in span.attributes.values():
        text = str(value)
        assert PROMPT not in text and ANSWER not in text and "Costline counts" not in text


# --- openai ---------------------------------------------------------------------------------------------------------
AUDIO_CHAT = usage_header(input=1000, cached=0, output=300, audio_in=400, image_in=250, audio_out=200)


@pytest.mark.parametrize("stream", [False, True])
def test_chat_audio_and_image_tokens(spans, openai_client, stream):
    result = openai_client.chat.completions.create(model="gpt-4o-audio-preview", messages=MESSAGES,
                                                   extra_headers=AUDIO_CHAT, stream=stream)
    if stream:
        list(result)
    span = spans.one()
    a = span.attributes
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (1000, 300)
    assert a["gen_ai.usage.audio.input_tokens"] == 400
    assert a["gen_ai.usage.image.input_tokens"] == 250
    assert a["gen_ai.usage.audio.output_tokens"] == 200
    assert "gen_ai.usage.image.output_tokens" not in a  # chat reports no image output: nothing is invented
    assert_no_content(span)
    # A text-only call: the provider reports `audio_tokens: 0` / `image_tokens: 0`; zero is absence, no attribute.
    spans.exporter.clear()
    openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    a = spans.one().attributes
    assert not [k for k in a if k.startswith(("gen_ai.usage.audio", "gen_ai.usage.image", "costline.usage"))]


@pytest.mark.parametrize(("asked", "billed"), [("flex", "flex"), ("auto", "default"), ("priority", "priority")])
def test_chat_service_tier_asked_and_billed(spans, openai_client, asked, billed):
    openai_client.chat.completions.create(model="gpt-5", messages=MESSAGES, service_tier=asked)
    openai_client.chat.completions.create(model="gpt-5", messages=MESSAGES)
    with_tier, without = spans.all()
    assert with_tier.attributes["openai.request.service_tier"] == asked
    assert with_tier.attributes["openai.response.service_tier"] == billed
    assert "openai.request.service_tier" not in without.attributes  # none asked for, none recorded


def test_request_service_tier_is_on_the_span_from_its_start(spans, openai_client):
    # A sampler (or a span processor's on_start) sees the tier asked for: it is a start attribute.
    seen = []

    class Recorder:
        def on_start(self, span, parent_context=None):
            seen.append(dict(span.attributes))

        def on_end(self, span): ...
        def shutdown(self): ...
        def force_flush(self, timeout_millis=30000): return True

    spans.provider.add_span_processor(Recorder())
    openai_client.responses.create(model="gpt-5", input="hi", service_tier="flex")
    assert seen[-1]["openai.request.service_tier"] == "flex"


@pytest.mark.parametrize("stream", [False, True])
def test_responses_web_searches_and_cache_writes(spans, openai_client, stream):
    usage = usage_header(input=2000, cached=500, cache_write=300, output=120, web_searches=3)
    result = openai_client.responses.create(model="gpt-5", input=PROMPT, tools=[{"type": "web_search"}],
                                            extra_headers=usage, stream=stream)
    if stream:
        list(result)
    span = spans.one()
    a = span.attributes
    assert a["costline.usage.web_search.requests"] == 3
    assert (a["gen_ai.usage.cache_read.input_tokens"], a["gen_ai.usage.cache_write.input_tokens"]) == (500, 300)
    assert_no_content(span)
    spans.exporter.clear()
    openai_client.responses.create(model="gpt-5", input="hi")  # no search ran: no count
    assert "costline.usage.web_search.requests" not in spans.one().attributes


@pytest.mark.parametrize("stream", [False, True])
def test_transcription_audio_tokens(spans, openai_client, stream):
    usage = usage_header(input=900, output=60, audio_in=850)
    result = openai_client.audio.transcriptions.create(model="gpt-4o-transcribe", file=("call.wav", b"RIFF...."),
                                                       extra_headers=usage, stream=stream)
    if stream:
        events = list(result)
        assert events[-1].type == "transcript.text.done"
    else:
        assert result.text == ANSWER
    span = spans.one()
    a = span.attributes
    assert span.name == "generate_content gpt-4o-transcribe"
    assert a["gen_ai.operation.name"] == "generate_content"
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (900, 60)
    assert a["gen_ai.usage.audio.input_tokens"] == 850
    assert_no_content(span)


async def test_async_transcription(spans, async_openai_client):
    await async_openai_client.audio.transcriptions.create(
        model="gpt-4o-mini-transcribe", file=("call.wav", b"RIFF"), extra_headers=usage_header(input=50, audio_in=40))
    assert spans.one().attributes["gen_ai.usage.audio.input_tokens"] == 40


def test_whisper_duration_usage_records_no_tokens(spans, openai_client):
    # whisper-1 is billed by the minute and reports seconds, not tokens: no token count is made up.
    openai_client.audio.transcriptions.create(model="whisper-1", file=("call.wav", b"RIFF"))
    a = spans.one().attributes
    assert a["gen_ai.request.model"] == "whisper-1"
    assert not [k for k in a if k.startswith("gen_ai.usage.")]


def test_image_generation_tokens_with_output_split(spans, openai_client):
    usage = usage_header(input=520, output=4200, image_in=500, image_out=4160)
    openai_client.images.generate(model="gpt-image-1", prompt=PROMPT, extra_headers=usage)
    span = spans.one()
    a = span.attributes
    assert span.name == "generate_content gpt-image-1"
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (520, 4200)
    assert (a["gen_ai.usage.image.input_tokens"], a["gen_ai.usage.image.output_tokens"]) == (500, 4160)
    assert_no_content(span)


def test_image_generation_without_output_split_counts_all_output_as_image(spans, openai_client):
    openai_client.images.generate(model="gpt-image-1", prompt="a cat", extra_headers=usage_header(input=20, output=4160))
    a = spans.one().attributes
    assert a["gen_ai.usage.image.output_tokens"] == 4160
    assert "gen_ai.usage.image.input_tokens" not in a  # 0 image tokens in a text prompt


def test_image_edit_with_raw_response(spans, openai_client):
    usage = usage_header(input=700, output=1000, image_in=650, image_out=1000)
    raw = openai_client.images.with_raw_response.edit(model="gpt-image-1", image=("in.png", b"\x89PNG"),
                                                      prompt="add a hat", extra_headers=usage)
    assert raw.parse().usage.input_tokens == 700
    a = spans.one().attributes
    assert (a["gen_ai.usage.image.input_tokens"], a["gen_ai.usage.image.output_tokens"]) == (650, 1000)


# --- anthropic --------------------------------------------------------------------------------------------------------
ANTHROPIC_UNITS = usage_header(input=3000, cached=1000, cache_write=1200, cache_write_1h=800, output=90,
                               web_searches=2, code_executions=1)


def assert_anthropic_units(a) -> None:
    assert a["gen_ai.usage.input_tokens"] == 3000
    assert a["gen_ai.usage.cache_write.input_tokens"] == 1200  # every write, 5-minute and 1-hour
    assert a["costline.usage.cache_write_1h.input_tokens"] == 800
    assert a["costline.usage.web_search.requests"] == 2
    assert a["costline.usage.code_execution.requests"] == 1


def anthropic_client(tracer_provider, sdk_tracing: bool, **kw):
    option = {"tracer_provider": tracer_provider} if sdk_tracing else False
    return anthropic.Anthropic(api_key=ANTHROPIC_KEY, http_client=mock_http(), open_telemetry=option, **kw)


@pytest.mark.parametrize("sdk_tracing", SDK_SPAN_OR_OURS)
@pytest.mark.parametrize("how", ["create", "stream-create", "stream-helper"])
def test_anthropic_cache_lifetimes_and_server_tools(spans, tracer_provider, sdk_tracing, how):
    c = anthropic_client(tracer_provider, sdk_tracing)
    kw = dict(model="claude-sonnet-4-5", max_tokens=100, messages=MESSAGES, extra_headers=ANTHROPIC_UNITS)
    if how == "create":
        c.messages.create(**kw)
    elif how == "stream-create":
        # message_start has the cache split; the server tool use arrives only in message_delta
        list(c.messages.create(stream=True, **kw))
    else:
        with c.messages.stream(**kw) as stream:
            assert "".join(stream.text_stream) == ANSWER
    span = spans.one()
    assert_anthropic_units(span.attributes)
    assert span.attributes["anthropic.response.service_tier"] == "standard"
    assert_no_content(span)


@pytest.mark.parametrize("sdk_tracing", SDK_SPAN_OR_OURS)
async def test_anthropic_async_units(spans, tracer_provider, sdk_tracing):
    option = {"tracer_provider": tracer_provider} if sdk_tracing else False
    c = anthropic.AsyncAnthropic(api_key=ANTHROPIC_KEY, http_client=mock_async_http(), open_telemetry=option)
    kw = dict(model="claude-sonnet-4-5", max_tokens=100, messages=MESSAGES, extra_headers=ANTHROPIC_UNITS)
    await c.messages.create(**kw)
    async with c.messages.stream(**kw) as stream:
        async for _ in stream:
            pass
    assert len(spans.all()) == 2
    for span in spans.all():
        assert_anthropic_units(span.attributes)


@pytest.mark.parametrize("sdk_tracing", [True, False], ids=["sdk-span", "costline-span"])
def test_anthropic_priority_tier_and_5_minute_writes(spans, tracer_provider, sdk_tracing):
    anthropic_client(tracer_provider, sdk_tracing).messages.create(
        model="claude-sonnet-4-5", max_tokens=100, messages=MESSAGES, service_tier="auto",
        extra_headers={"x-fake-service-tier": "priority", **usage_header(input=500, cache_write=300, output=10)})
    a = spans.one().attributes
    assert a["anthropic.response.service_tier"] == "priority"
    assert a["gen_ai.usage.cache_write.input_tokens"] == 300
    # All 5-minute writes: no 1-hour count (the SDK's own span writes the zero its table reads, Costline's omits it).
    assert not [k for k in a if k.startswith("costline.usage.") and a[k]]


@NEEDS_SDK_TABLE
def test_uninstrument_takes_costlines_rows_out_of_the_sdks_table(tracer_provider):
    from anthropic import _tracing

    rows = _tracing.SPAN_ATTRIBUTES["anthropic.messages.create"]["response"]
    before = dict(rows)
    instrumentor = CostlineInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider)
    assert "costline.usage.web_search.requests" in rows
    instrumentor.uninstrument()
    assert dict(rows) == before


def test_malformed_server_tool_usage_never_reaches_the_call(spans, tracer_provider):
    """A provider (or proxy) answering nonsense in the usage fields: the call returns, the span keeps what is valid,
    nothing is raised or counted as Costline's error."""
    import httpx2

    def handler(request):
        body = {"id": "msg_x", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
                "content": [{"type": "text", "text": "ok"}], "stop_reason": "end_turn", "stop_sequence": None,
                "usage": {"input_tokens": 10, "output_tokens": 2, "cache_creation": {"ephemeral_1h_input_tokens": "x"},
                          "server_tool_use": {"web_search_requests": 2, "code_execution_requests": True,
                                              "web_fetch_requests": -3}}}
        return httpx2.Response(200, json=body)

    before = guard.internal_errors()
    c = anthropic.Anthropic(api_key=ANTHROPIC_KEY, http_client=mock_http(handler), open_telemetry=False)
    assert c.messages.create(model="claude-sonnet-4-5", max_tokens=5, messages=MESSAGES).content[0].text == "ok"
    a = spans.one().attributes
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (10, 2)
    assert [k for k in a if k.startswith("costline.usage.")] == ["costline.usage.web_search.requests"]
    assert a["costline.usage.web_search.requests"] == 2
    assert guard.internal_errors() == before


def test_bug_reading_media_usage_is_swallowed(spans, openai_client, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("bug inside Costline")

    monkeypatch.setattr("costline.instrumentation.openai.usage.record_media_usage", boom)
    before = guard.internal_errors()
    result = openai_client.images.generate(model="gpt-image-1", prompt="a cat")
    assert result.data[0].b64_json
    assert guard.internal_errors() == before + 1
    assert len(spans.all()) == 1
