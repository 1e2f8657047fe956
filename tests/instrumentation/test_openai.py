"""The real openai SDK against its wire format: one span per call, exact tokens, errors unchanged."""

from __future__ import annotations

import json

import openai
import pytest
from opentelemetry.trace import SpanKind, StatusCode

from costline.fingerprint import fingerprint
from costline.testing.fake_provider import CHUNK_TEXTS

from .conftest import OPENAI_KEY, mock_http

MESSAGES = [{"role": "user", "content": "What did we spend?"}]
USAGE = {"x-fake-usage": json.dumps({"input": 1000, "cached": 400, "output": 50, "reasoning": 10})}


def test_chat_completion_span_has_contract_attributes(spans, openai_client):
    result = openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES, extra_headers=USAGE)
    assert result.choices[0].message.content == "".join(CHUNK_TEXTS)
    span = spans.one()
    assert span.name == "chat gpt-4o"
    assert span.kind == SpanKind.CLIENT
    assert span.instrumentation_scope.name == "costline.instrumentation"
    a = span.attributes
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.request.model"] == "gpt-4o"
    assert a["gen_ai.response.model"] == "gpt-4o-2024-08-06"
    assert a["gen_ai.response.id"] == "chatcmpl-fake123"
    assert a["gen_ai.usage.input_tokens"] == 1000
    assert a["gen_ai.usage.output_tokens"] == 50
    assert a["gen_ai.usage.cache_read.input_tokens"] == 400
    assert a["gen_ai.usage.reasoning.output_tokens"] == 10
    assert a["openai.response.service_tier"] == "default"
    assert a["server.address"] == "api.openai.com"
    assert "server.port" not in a  # the scheme's default (443), left out as the official instrumentation does
    assert a["costline.api_key.fingerprint"] == fingerprint(OPENAI_KEY)
    assert "gen_ai.request.stream" not in a
    assert "http.request.resend_count" not in a
    assert span.status.status_code == StatusCode.UNSET


@pytest.mark.parametrize("stream", [False, True])
def test_chat_cache_writes_are_recorded(spans, openai_client, stream):
    """Chat Completions report prompt-cache writes in `prompt_tokens_details.cache_write_tokens`, as the Responses
    API does in `input_tokens_details`: both reach the span, so the processor prices them at the write rate."""
    usage = {"x-fake-usage": json.dumps({"input": 1000, "cached": 300, "cache_write": 200, "output": 50})}
    result = openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES, extra_headers=usage,
                                                   stream=stream)
    if stream:
        list(result)
    a = spans.one().attributes
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.cache_read.input_tokens"],
            a["gen_ai.usage.cache_write.input_tokens"]) == (1000, 300, 200)


def test_zero_cache_and_reasoning_counts_are_left_out(spans, openai_client):
    # The provider reports 0 cached and 0 reasoning tokens: absent means zero, to the processor as to the official
    # instrumentation, and each attribute costs the span as much as Costline's own code does.
    zero = {"x-fake-usage": json.dumps({"input": 30, "cached": 0, "output": 5, "reasoning": 0})}
    openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES, extra_headers=zero)
    a = spans.one().attributes
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (30, 5)
    assert not {k for k in a if k.startswith("gen_ai.usage.") and k.count(".") > 2}


async def test_async_chat_completion(spans, async_openai_client):
    await async_openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, extra_headers=USAGE)
    a = spans.one().attributes
    assert a["gen_ai.response.model"] == "gpt-4o-mini-2024-07-18"
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (1000, 50)


def _wire_chunks(body: dict, headers: dict) -> list[dict]:
    """The chunks the provider sends for a request exactly as the application made it (no stream_options)."""
    from costline.testing.fake_provider import respond

    answer = respond("POST", "/v1/chat/completions", headers, json.dumps(body).encode())
    datas = [c.decode().split("data: ", 1)[1].strip() for c in answer.chunks]
    return [json.loads(d) for d in datas if d != "[DONE]"]


def test_stream_gets_exact_usage_without_changing_what_the_app_sees(spans, openai_client):
    stream = openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True, extra_headers=USAGE)
    seen = [chunk.to_dict() for chunk in stream]
    a = spans.one().attributes
    assert a["gen_ai.request.stream"] is True
    assert a["gen_ai.usage.input_tokens"] == 1000
    assert a["gen_ai.usage.cache_read.input_tokens"] == 400
    assert a["gen_ai.usage.output_tokens"] == 50
    assert a["gen_ai.response.time_to_first_chunk"] > 0
    # Costline asked for usage; the usage-only chunk is hidden and the rest is what the app would see without it
    # (the provider then adds `"usage": null` to each chunk, which the SDK models identically to an absent field).
    expected = _wire_chunks({"model": "gpt-4o", "messages": MESSAGES, "stream": True}, USAGE)
    assert [{k: v for k, v in c.items() if k != "usage"} for c in seen] == expected
    assert all(chunk["choices"] for chunk in seen)


def test_stream_that_asked_for_usage_keeps_its_usage_chunk(spans, openai_client):
    stream = openai_client.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, stream=True, stream_options={"include_usage": True}, extra_headers=USAGE
    )
    chunks = list(stream)
    assert chunks[-1].choices == [] and chunks[-1].usage.prompt_tokens == 1000
    assert spans.one().attributes["gen_ai.usage.input_tokens"] == 1000


def test_stream_closed_early_ends_span_once(spans, openai_client):
    stream = openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    first = next(iter(stream))
    assert first.choices[0].delta.content == CHUNK_TEXTS[0]
    assert spans.all() == []  # still open while the app reads
    stream.close()
    stream.close()
    span = spans.one()
    assert span.attributes["gen_ai.response.model"] == "gpt-4o-2024-08-06"
    assert "gen_ai.response.time_to_first_chunk" in span.attributes


def test_stream_as_context_manager(spans, openai_client):
    with openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True) as stream:
        for _ in stream:
            break
    assert len(spans.all()) == 1


def test_stream_dropped_unclosed_still_ends_span(spans, openai_client):
    import gc

    stream = openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    next(iter(stream))
    del stream
    gc.collect()
    assert len(spans.all()) == 1


def test_exception_mid_stream_is_recorded_and_reraised(spans, openai_client):
    stream = openai_client.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, stream=True, extra_headers={"x-fake-scenario": "midstream-error"}
    )
    with pytest.raises(openai.APIError) as info:
        for _ in stream:
            pass
    span = spans.one()
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes["error.type"] == "server_error"
    assert "upstream overloaded" in str(info.value)


async def test_async_stream(spans, async_openai_client):
    stream = await async_openai_client.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, stream=True, extra_headers=USAGE
    )
    chunks = [c async for c in stream]
    assert len(chunks) == len(CHUNK_TEXTS) + 1  # content chunks + finish chunk, no usage chunk
    a = spans.one().attributes
    assert a["gen_ai.usage.output_tokens"] == 50 and a["gen_ai.request.stream"] is True


async def test_async_stream_closed_early(spans, async_openai_client):
    stream = await async_openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    async for _ in stream:
        break
    await stream.close()
    assert len(spans.all()) == 1


def test_chat_stream_helper(spans, openai_client):
    with openai_client.chat.completions.stream(model="gpt-4o", messages=MESSAGES, extra_headers=USAGE) as stream:
        for _ in stream:
            pass
        final = stream.get_final_completion()
    assert final.choices[0].message.content == "".join(CHUNK_TEXTS)
    assert spans.one().attributes["gen_ai.usage.input_tokens"] == 1000


def test_parse(spans, openai_client):
    openai_client.chat.completions.parse(model="gpt-4o", messages=MESSAGES, extra_headers=USAGE)
    assert spans.one().attributes["gen_ai.usage.output_tokens"] == 50


def test_with_raw_response(spans, openai_client):
    raw = openai_client.chat.completions.with_raw_response.create(model="gpt-4o", messages=MESSAGES, extra_headers=USAGE)
    assert raw.parse().usage.prompt_tokens == 1000
    assert spans.one().attributes["gen_ai.usage.input_tokens"] == 1000


def test_responses_create_and_stream(spans, openai_client):
    openai_client.responses.create(model="o4-mini", input="hi", extra_headers=USAGE)
    events = list(openai_client.responses.create(model="o4-mini", input="hi", stream=True, extra_headers=USAGE))
    assert events[-1].type == "response.completed"
    plain, streamed = spans.all()
    for span in (plain, streamed):
        a = span.attributes
        assert span.name == "chat o4-mini"
        assert a["gen_ai.response.id"] == "resp_fake123"
        assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.cache_read.input_tokens"]) == (1000, 400)
        assert (a["gen_ai.usage.output_tokens"], a["gen_ai.usage.reasoning.output_tokens"]) == (50, 10)
    assert streamed.attributes["gen_ai.response.time_to_first_chunk"] > 0


def test_responses_stream_helper(spans, openai_client):
    with openai_client.responses.stream(model="gpt-4o", input="hi", extra_headers=USAGE) as stream:
        for _ in stream:
            pass
    assert spans.one().attributes["gen_ai.usage.input_tokens"] == 1000


def test_embeddings(spans, openai_client):
    openai_client.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
    span = spans.one()
    assert span.name == "embeddings text-embedding-3-small"
    assert span.attributes["gen_ai.operation.name"] == "embeddings"
    assert span.attributes["gen_ai.usage.input_tokens"] == 16


def test_legacy_completions_sync_and_stream(spans, openai_client):
    openai_client.completions.create(model="gpt-3.5-turbo-instruct", prompt="x", extra_headers=USAGE)
    chunks = list(openai_client.completions.create(model="gpt-3.5-turbo-instruct", prompt="x", stream=True,
                                                   extra_headers=USAGE))
    assert len(chunks) == len(CHUNK_TEXTS)  # usage chunk hidden
    for span in spans.all():
        assert span.attributes["gen_ai.operation.name"] == "text_completion"
        assert span.attributes["gen_ai.usage.input_tokens"] == 1000


def test_retry_after_429_is_counted(spans, openai_client):
    openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES, extra_headers={"x-fake-scenario": "429-once"})
    span = spans.one()
    assert span.attributes["http.request.resend_count"] == 1
    assert span.status.status_code == StatusCode.UNSET


def test_every_retry_is_counted_on_the_calls_own_span(spans):
    # Two retries of one call: the count accumulates on the call's span, not on a parent span of the application's.
    from opentelemetry import trace

    client = openai.OpenAI(api_key=OPENAI_KEY, http_client=mock_http(), max_retries=2)
    tracer = trace.get_tracer("app", tracer_provider=spans.provider)
    with tracer.start_as_current_span("handle request"), pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES, extra_headers={"x-fake-scenario": "500"})
    by_name = {s.name: s for s in spans.all()}
    assert by_name["chat gpt-4o"].attributes["http.request.resend_count"] == 2
    assert "http.request.resend_count" not in by_name["handle request"].attributes


def test_api_error_reaches_caller_unchanged(spans):
    client = openai.OpenAI(api_key=OPENAI_KEY, http_client=mock_http(), max_retries=1)
    raised = []

    def handler(request):
        from costline.testing.fake_provider import mock_transport_handler

        return mock_transport_handler(request)

    client = openai.OpenAI(api_key=OPENAI_KEY, http_client=mock_http(handler), max_retries=1)
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES, extra_headers={"x-fake-scenario": "500"})
    raised.append(info.value)
    span = spans.one()
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes["error.type"] == "api_error"
    assert span.attributes["http.request.resend_count"] == 1
    # the same exception object as without instrumentation: its class and body untouched
    assert type(raised[0]) is openai.InternalServerError
    assert raised[0].body["type"] == "api_error"


def test_connection_error_type(spans):
    def broken(request):
        raise OSError("network down")

    import httpx2

    def handler(request):
        raise httpx2.ConnectError("refused", request=request)

    client = openai.OpenAI(api_key=OPENAI_KEY, http_client=mock_http(handler), max_retries=0)
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert spans.one().attributes["error.type"] == "openai.APIConnectionError"


def test_azure_provider_and_model_from_response(spans):
    client = openai.AzureOpenAI(
        api_key=OPENAI_KEY, api_version="2024-10-21", azure_endpoint="https://acme.openai.azure.com",
        azure_deployment="prod-gpt4o", http_client=mock_http(),
    )
    client.chat.completions.create(model="prod-gpt4o", messages=MESSAGES, extra_headers=USAGE)
    a = spans.one().attributes
    assert a["gen_ai.provider.name"] == "azure.ai.openai"
    assert a["gen_ai.request.model"] == "prod-gpt4o"  # the deployment name, as sent
    assert a["gen_ai.response.model"] == "prod-gpt4o"  # the fake echoes it; real Azure returns the model
    assert a["server.address"] == "acme.openai.azure.com"


@pytest.mark.parametrize(
    ("base_url", "provider"),
    [
        ("https://openrouter.ai/api/v1", "openrouter"),
        ("https://api.groq.com/openai/v1", "groq"),
        ("https://api.together.xyz/v1", "together_ai"),
        ("https://api.deepseek.com/v1", "deepseek"),
        ("https://api.mistral.ai/v1", "mistral_ai"),
        ("http://localhost:11434/v1", "ollama"),
        ("http://vllm.internal:8000/v1", "vllm"),
        ("https://llm.corp.example/v1", "openai"),
    ],
)
def test_openai_compatible_provider_from_host(spans, base_url, provider):
    client = openai.OpenAI(api_key=OPENAI_KEY, base_url=base_url, http_client=mock_http())
    client.chat.completions.create(model="some-model", messages=MESSAGES)
    a = spans.one().attributes
    assert a["gen_ai.provider.name"] == provider
    assert a["server.address"] == base_url.split("//", 1)[1].split("/", 1)[0].split(":")[0]


def test_client_attributes_follow_a_reassigned_key_and_base_url(spans):
    # Provider, address, port and fingerprint are cached per client: changing the client must not leave them stale.
    client = openai.OpenAI(api_key=OPENAI_KEY, http_client=mock_http())
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    client.api_key = "sk-rotated-key"
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    client.base_url = "http://localhost:11434/v1"
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    copy = client.with_options(api_key="sk-copy-key")
    copy.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    seen = [
        (a["costline.api_key.fingerprint"], a["gen_ai.provider.name"], a["server.address"], a.get("server.port"))
        for a in (s.attributes for s in spans.all())
    ]
    assert seen == [
        (fingerprint(OPENAI_KEY), "openai", "api.openai.com", None),
        (fingerprint("sk-rotated-key"), "openai", "api.openai.com", None),
        (fingerprint("sk-rotated-key"), "ollama", "localhost", 11434),
        (fingerprint("sk-copy-key"), "ollama", "localhost", 11434),
    ]


def test_non_llm_endpoints_make_no_span(spans):
    import httpx2

    def handler(request):
        return httpx2.Response(200, json={"object": "list", "data": []})

    client = openai.OpenAI(api_key=OPENAI_KEY, http_client=mock_http(handler))
    client.models.list()
    assert spans.all() == []


def test_uninstrument_restores_every_method(tracer_provider):
    import anthropic._base_client as abc
    import openai._base_client as obc

    from costline.instrumentation import CostlineInstrumentor

    originals = {
        (mod.__name__, cls, name): getattr(getattr(mod, cls), name)
        for mod in (obc, abc)
        for cls in ("SyncAPIClient", "AsyncAPIClient")
        for name in ("request", "_sleep_for_retry")
        if hasattr(getattr(mod, cls), name)
    }
    instrumentor = CostlineInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider)
    patched = [k for k, v in originals.items() if getattr(getattr(__import__(k[0], fromlist=["x"]), k[1]), k[2]) is not v]
    assert len(patched) == 8
    instrumentor.uninstrument()
    for (mod, cls, name), original in originals.items():
        assert getattr(getattr(__import__(mod, fromlist=["x"]), cls), name) is original
    client = openai.OpenAI(api_key=OPENAI_KEY, http_client=mock_http())
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert tracer_provider._test_exporter.get_finished_spans() == ()
