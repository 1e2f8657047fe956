"""Sampling-safe cost (issue 22 item 6): every LLM call reaches the processor whatever the app's trace sampler
decides. A call whose span the sampler drops is recorded on Costline's billing path (`costline.sampled_out`), a
sampled one goes through the app's pipeline as before: each call is exported exactly once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import anthropic
import openai
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, TraceIdRatioBased

from costline.instrumentation import CostlineInstrumentor, guard
from costline.testing.fake_provider import FakeProviderServer, mock_transport_handler
from tests.otlp_sink import OTLPSink
from tests.processor.served import serve, stop

from .conftest import ANTHROPIC_KEY, OPENAI_KEY, mock_async_http, mock_http

MESSAGES = [{"role": "user", "content": "hi"}]
USAGE = {"x-fake-usage": json.dumps({"input": 1000, "cached": 200, "output": 50})}


class Setup:
    """An app provider with `sampler` and Costline instrumented into it, with an in-memory billing exporter."""

    def __init__(self, sampler, **instrument) -> None:
        self.app = InMemorySpanExporter()
        self.billing = InMemorySpanExporter()
        self.provider = TracerProvider(sampler=sampler)
        self.provider.add_span_processor(SimpleSpanProcessor(self.app))
        self.instrumentor = CostlineInstrumentor()
        self.instrumentor.instrument(tracer_provider=self.provider, billing_exporter=self.billing, **instrument)

    def done(self) -> tuple[list, list]:
        """(the app's exported spans, the billing path's), once the billing path has exported what it holds."""
        self.instrumentor.uninstrument()
        return list(self.app.get_finished_spans()), list(self.billing.get_finished_spans())


@pytest.fixture
def setups():
    made: list[Setup] = []

    def make(sampler, **instrument) -> Setup:
        made.append(Setup(sampler, **instrument))
        return made[-1]

    yield make
    for setup in made:
        setup.instrumentor.uninstrument()


def test_every_dropped_call_is_billed_on_the_billing_path(setups):
    setup = setups(ALWAYS_OFF)
    client = openai.OpenAI(api_key=OPENAI_KEY, http_client=mock_http())
    tracer = setup.provider.get_tracer("app")
    with tracer.start_as_current_span("handle request") as parent:  # dropped too: the trace is the app's
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES, extra_headers=USAGE)
        list(client.chat.completions.create(model="gpt-4o", messages=MESSAGES, extra_headers=USAGE, stream=True))
        client.responses.create(model="gpt-5", input="hi", extra_headers=USAGE)
        client.embeddings.create(model="text-embedding-3-small", input=["a"])
        anthropic.Anthropic(api_key=ANTHROPIC_KEY, http_client=mock_http(), open_telemetry=False).messages.create(
            model="claude-sonnet-4-5", max_tokens=10, messages=MESSAGES, extra_headers=USAGE)
    app, billed = setup.done()
    assert app == []
    assert len(billed) == 5
    for span in billed:
        a = span.attributes
        assert span.instrumentation_scope.name == "costline.instrumentation"
        assert a["costline.sampled_out"] is True
        # the app's trace: its trace id and parent, though nothing of it was recorded
        assert span.context.trace_id == parent.get_span_context().trace_id
        assert span.parent.span_id == parent.get_span_context().span_id
    chat, stream, responses, embeddings, claude = billed
    assert (chat.attributes["gen_ai.usage.input_tokens"], chat.attributes["gen_ai.usage.output_tokens"]) == (1000, 50)
    assert stream.attributes["gen_ai.usage.cache_read.input_tokens"] == 200  # the stream was still asked for usage
    assert responses.attributes["gen_ai.response.id"] == "resp_fake123"
    assert embeddings.attributes["gen_ai.operation.name"] == "embeddings"
    assert claude.attributes["gen_ai.provider.name"] == "anthropic"
    # the resource is the app's: service name and resource owner keys reach the processor
    assert billed[0].resource.attributes == setup.provider.resource.attributes


def test_sampled_calls_use_only_the_apps_pipeline_and_the_switch_turns_it_off(setups, monkeypatch):
    client = openai.OpenAI(api_key=OPENAI_KEY, http_client=mock_http())
    setup = setups(ALWAYS_ON)
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    app, billed = setup.done()
    assert len(app) == 1 and billed == []
    setup = setups(ALWAYS_OFF)  # on by default
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert len(setup.done()[1]) == 1
    monkeypatch.setenv("COSTLINE_SAMPLING_SAFE", "false")  # off: dropped calls are lost, as without Costline's path
    setup = setups(ALWAYS_OFF)
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert setup.done() == ([], [])


def test_each_call_exported_once_under_a_ratio_sampler(setups):
    setup = setups(TraceIdRatioBased(0.5))
    client = openai.OpenAI(api_key=OPENAI_KEY, http_client=mock_http())
    for _ in range(40):  # each a root span of its own trace: about half sampled
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES, extra_headers=USAGE)
    app, billed = setup.done()
    assert len(app) + len(billed) == 40
    assert app and billed  # 2**-39 that either is empty by chance
    assert not any("costline.sampled_out" in span.attributes for span in app)
    assert {s.context.span_id for s in app}.isdisjoint({s.context.span_id for s in billed})


def test_the_apps_decision_stays_current_while_the_sdk_runs(setups):
    """What the SDK and the HTTP client do (their own spans, the traceparent they send) follows the app's sampler,
    not the billing path's: the dropped span is the current one during the request."""
    seen = []

    def handler(request):
        current = trace.get_current_span()
        seen.append((current.is_recording(), current.get_span_context().trace_flags.sampled))
        return mock_transport_handler(request)

    setup = setups(ALWAYS_OFF)
    openai.OpenAI(api_key=OPENAI_KEY, http_client=mock_http(handler)).chat.completions.create(
        model="gpt-4o", messages=MESSAGES)
    _, billed = setup.done()
    assert seen == [(False, False)]
    assert len(billed) == 1


def test_a_retry_is_counted_on_the_billing_span(setups):
    setup = setups(ALWAYS_OFF)
    openai.OpenAI(api_key=OPENAI_KEY, http_client=mock_http(), max_retries=2).chat.completions.create(
        model="gpt-4o", messages=MESSAGES, extra_headers={"x-fake-scenario": "429-once"})
    _, billed = setup.done()
    assert billed[0].attributes["http.request.resend_count"] == 1


@pytest.mark.parametrize("how", ["create", "stream"])
def test_a_dropped_anthropic_sdk_span_is_billed_from_the_response(setups, how):
    def call(setup):
        client = anthropic.Anthropic(api_key=ANTHROPIC_KEY, http_client=mock_http(),
                                     open_telemetry={"tracer_provider": setup.provider})  # the SDK makes the span
        kw = dict(model="claude-sonnet-4-5", max_tokens=10, messages=MESSAGES, extra_headers=USAGE)
        if how == "create":
            client.messages.create(**kw)
        else:
            with client.messages.stream(**kw) as stream:
                stream.until_done()
        return setup.done()

    app, billed = call(setups(ALWAYS_OFF))
    assert app == []
    (span,) = billed
    a = span.attributes
    assert a["costline.sampled_out"] is True and a["gen_ai.provider.name"] == "anthropic"
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.cache_read.input_tokens"]) == (1000, 200)
    assert a["gen_ai.usage.output_tokens"] == 50
    assert span.end_time >= span.start_time
    # Sampled, the SDK's own span is the call's only span: nothing on the billing path.
    app, billed = call(setups(ALWAYS_ON))
    assert [s.instrumentation_scope.name for s in app] == ["com.anthropic.sdk.python"] and billed == []


async def test_async_dropped_calls_both_paths(setups):
    setup = setups(ALWAYS_OFF)
    await openai.AsyncOpenAI(api_key=OPENAI_KEY, http_client=mock_async_http()).chat.completions.create(
        model="gpt-4o", messages=MESSAGES, extra_headers=USAGE)
    await anthropic.AsyncAnthropic(api_key=ANTHROPIC_KEY, http_client=mock_async_http(),
                                   open_telemetry={"tracer_provider": setup.provider}).messages.create(
        model="claude-sonnet-4-5", max_tokens=10, messages=MESSAGES, extra_headers=USAGE)
    app, billed = setup.done()
    assert app == [] and len(billed) == 2
    assert all(s.attributes["gen_ai.usage.output_tokens"] == 50 for s in billed)


def test_without_an_sdk_nothing_is_sent(monkeypatch):
    """No OpenTelemetry SDK set up (the global proxy provider): every span is non-recording, yet no sampler dropped
    anything and nothing of the app is exported; the billing path stays unmade and sends nothing."""
    proxy = trace.ProxyTracerProvider()
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: proxy)  # whatever another test set globally
    exporter = InMemorySpanExporter()
    instrumentor = CostlineInstrumentor()
    instrumentor.instrument(tracer_provider=proxy, billing_exporter=exporter)
    try:
        openai.OpenAI(api_key=OPENAI_KEY, http_client=mock_http()).chat.completions.create(model="gpt-4o",
                                                                                            messages=MESSAGES)
    finally:
        instrumentor.uninstrument()
    assert exporter.get_finished_spans() == ()


def test_a_billing_path_that_cannot_be_made_never_reaches_the_call(setups, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("no exporter for you")

    monkeypatch.setattr("costline.instrumentation.sampling.BillingPath._make", broken)
    before = guard.internal_errors()
    setup = setups(ALWAYS_OFF)
    client = openai.OpenAI(api_key=OPENAI_KEY, http_client=mock_http())
    for _ in range(3):
        assert client.chat.completions.create(model="gpt-4o", messages=MESSAGES).id == "chatcmpl-fake123"
    assert setup.done() == ([], [])
    assert guard.internal_errors() == before + 1  # tried once, not on every call


# --- end to end: a sampled app under opentelemetry-instrument, billed by a real `costline serve` -----------------------
APP = Path(__file__).parent / "apps" / "sampled_app.py"
CALLS = 10
# Per call 1000 input and 100 output tokens. gpt-4o at the served config's negotiated $2 / $8 per MTok; claude-haiku-4-5
# at genai-prices 0.2.5's list price, $1 / $5 per MTok.
GPT_4O = (Decimal(1000) * 2 + Decimal(100) * 8) / 10**6
HAIKU = (Decimal(1000) * 1 + Decimal(100) * 5) / 10**6


def test_a_10_percent_sampled_app_is_billed_for_every_call(tmp_path, serving):
    pytest.importorskip("costline.processor", reason="bills through a real `costline serve` (not beside the oldest SDKs)")
    with OTLPSink() as downstream:
        served = serve(tmp_path, f"sqlite:///{tmp_path / 'l.db'}",
                       extra_env={"COSTLINE_FORWARD_OTLP": downstream.endpoint})
        serving.append(served)
        with FakeProviderServer() as provider:
            env = {
                **os.environ,
                "SAMPLED_APP_CALLS": str(CALLS),
                "OPENAI_API_KEY": "sk-sampled-app", "OPENAI_BASE_URL": provider.openai_base_url,
                "ANTHROPIC_API_KEY": "sk-ant-sampled-app", "ANTHROPIC_BASE_URL": provider.anthropic_base_url,
                "OTEL_SERVICE_NAME": "sampled-app",
                "OTEL_RESOURCE_ATTRIBUTES": "costline.org=acme,costline.team=engineering",
                "OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1",
                "OTEL_TRACES_EXPORTER": "otlp", "OTEL_METRICS_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                "OTEL_EXPORTER_OTLP_ENDPOINT": served.otlp_url.removesuffix("/v1/traces"),
                # The peer instrumentations installed for benchmarks also register `openai`: keep only Costline.
                "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "openai,openai_v2,anthropic",
            }
            result = subprocess.run([str(Path(sys.executable).parent / "opentelemetry-instrument"), sys.executable,
                                     str(APP)], env=env, capture_output=True, text=True, timeout=120)
            assert result.returncode == 0, result.stderr
            assert "app done" in result.stdout
        rows = {row["model"]: row for row in served.usage(group_by="model")}
        assert stop(served) == 0, served.log.read_text()
    # (the fake provider answers with gpt-4o's dated snapshot, as OpenAI does: the override covers it)
    assert {model: row["requests"] for model, row in rows.items()} == {"gpt-4o-2024-08-06": CALLS,
                                                                       "claude-haiku-4-5": CALLS}, rows
    assert Decimal(rows["gpt-4o-2024-08-06"]["cost_usd"]) == CALLS * GPT_4O
    assert Decimal(rows["claude-haiku-4-5"]["cost_usd"]) == CALLS * HAIKU
    # Downstream keeps the app's sampling: only the sampled calls' spans were forwarded (about 10 % of 20).
    forwarded = [attrs for _, _, attrs, _ in downstream.spans() if "gen_ai.operation.name" in attrs]
    assert len(forwarded) < 2 * CALLS
    assert not any("costline.sampled_out" in attrs for attrs in forwarded)
