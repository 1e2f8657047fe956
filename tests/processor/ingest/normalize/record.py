"""Record the spans a real instrumentation emits for real SDK calls, as OTLP protobuf.

Run as a script, one instrumentation setup per process (peers patch the SDKs globally and do not fully undo it):

    python record.py SETUP  ->  prints one JSON line {scenario: base64 ExportTraceServiceRequest}

SETUP is a `+`-joined list of instrumentations: costline, otel-genai, openllmetry, openinference. Every setup also
records anthropic calls through a client with the anthropic SDK's built-in tracing on (`anthropic_sdk*`).
The SDKs talk to `costline.testing.fake_provider` through `httpx2.MockTransport`: no socket, exact usage.
"""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Callable

OPENAI_KEY = "sk-record-0123456789"
ANTHROPIC_KEY = "sk-ant-record-0123456789"

# Usage the fake provider reports (semconv totals: "input" includes cached and cache_write).
CHAT_USAGE = {"input": 1000, "cached": 400, "cache_write": 0, "output": 50, "reasoning": 10}
RESPONSES_USAGE = {"input": 2000, "cached": 500, "cache_write": 0, "output": 300, "reasoning": 100}
ANTHROPIC_USAGE = {"input": 1450, "cached": 1000, "cache_write": 200, "output": 80, "reasoning": 0}


def _usage(usage: dict[str, int]) -> dict[str, str]:
    return {"x-fake-usage": json.dumps(usage)}


PROVIDER = None  # the TracerProvider, set by main() before scenarios() builds the clients


def scenarios(setup: set[str]) -> dict[str, Callable[[], object]]:
    import anthropic
    import httpx2
    import openai

    from costline.testing.fake_provider import mock_transport_handler

    def http() -> httpx2.Client:
        return httpx2.Client(transport=httpx2.MockTransport(mock_transport_handler))

    oai = openai.OpenAI(api_key=OPENAI_KEY, http_client=http(), max_retries=0)
    messages = [{"role": "user", "content": "hello"}]

    def chat() -> None:
        oai.chat.completions.create(model="gpt-4o", messages=messages, extra_headers=_usage(CHAT_USAGE))

    def chat_stream() -> None:
        stream = oai.chat.completions.create(model="gpt-4o", messages=messages, stream=True,
                                             stream_options={"include_usage": True}, extra_headers=_usage(CHAT_USAGE))
        for _ in stream:
            pass

    def responses() -> None:
        oai.responses.create(model="o3", input="hello", extra_headers=_usage(RESPONSES_USAGE))

    def embeddings() -> None:
        oai.embeddings.create(model="text-embedding-3-small", input=["a", "b"])

    def chat_error() -> None:
        try:
            oai.chat.completions.create(model="gpt-4o", messages=messages, extra_headers={"x-fake-scenario": "500"})
        except openai.APIStatusError:
            pass

    found: dict[str, Callable[[], object]] = {
        "chat": chat, "chat_stream": chat_stream, "responses": responses, "embeddings": embeddings,
        "chat_error": chat_error,
    }

    def anthropic_calls(client: anthropic.Anthropic) -> tuple[Callable[[], object], Callable[[], object]]:
        def create() -> None:
            client.messages.create(model="claude-sonnet-4-5", max_tokens=100, messages=messages,
                                   extra_headers=_usage(ANTHROPIC_USAGE))

        def stream() -> None:
            with client.messages.stream(model="claude-sonnet-4-5", max_tokens=100, messages=messages,
                                        extra_headers=_usage(ANTHROPIC_USAGE)) as events:
                for _ in events.text_stream:
                    pass

        return create, stream

    # The anthropic SDK's own tracing is per client: `anthropic_sdk*` use a client with it on (any setup; with
    # Costline, Costline stamps that span instead of making its own), `anthropic*` one with it off (Costline's span).
    traced = anthropic.Anthropic(api_key=ANTHROPIC_KEY, http_client=http(), max_retries=0,
                                 open_telemetry={"tracer_provider": PROVIDER})
    found["anthropic_sdk"], found["anthropic_sdk_stream"] = anthropic_calls(traced)
    if "costline" in setup:
        plain = anthropic.Anthropic(api_key=ANTHROPIC_KEY, http_client=http(), max_retries=0, open_telemetry=False)
        found["anthropic"], found["anthropic_stream"] = anthropic_calls(plain)
    return found


def main(setup_arg: str) -> None:
    global PROVIDER
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    setup = set(setup_arg.split("+"))
    exporter = InMemorySpanExporter()
    PROVIDER = TracerProvider(resource=Resource.create({"service.name": "recorder",
                                                         "deployment.environment.name": "test",
                                                         "costline.org": "acme"}))
    PROVIDER.add_span_processor(SimpleSpanProcessor(exporter))
    if "costline" in setup:
        from costline.instrumentation import CostlineInstrumentor

        CostlineInstrumentor().instrument(tracer_provider=PROVIDER)
    if "otel-genai" in setup:
        from opentelemetry.instrumentation.genai.openai import OpenAIInstrumentor

        OpenAIInstrumentor().instrument(tracer_provider=PROVIDER)
    if "openllmetry" in setup:
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor as OpenLLMetry

        OpenLLMetry().instrument(tracer_provider=PROVIDER)
    if "openinference" in setup:
        from openinference.instrumentation.openai import OpenAIInstrumentor as OpenInference

        OpenInference().instrument(tracer_provider=PROVIDER)

    from costline import owner

    out: dict[str, str] = {}
    for name, run in scenarios(setup).items():
        exporter.clear()
        with owner(team="search"):
            run()
        spans = exporter.get_finished_spans()
        out[name] = base64.b64encode(encode_spans(spans).SerializeToString()).decode()
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])
