"""Record Logfire's `instrument_openai` and `instrument_anthropic` → tests/fixtures/spans/logfire/openai_anthropic.json.

    pip install 'logfire>=4' opentelemetry-sdk opentelemetry-exporter-otlp-proto-common
    PYTHONPATH=instrumentation/src:processor/src .venv/bin/python scripts/record-spans/python/logfire_llm.py

Workload against `costline.testing.fake_provider` on 127.0.0.1 (exact usage through `x-fake-usage`): openai chat,
stream, cached chat and embeddings; anthropic message reading and writing the cache, and its stream. Logfire sends
nothing anywhere (`send_to_logfire=False`); its spans reach this script's in-memory exporter through
`additional_span_processors`.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Recorder, usage_header, write_fixture  # noqa: E402


def workload(recorder: Recorder, server_url: str) -> None:
    import anthropic
    import logfire
    import openai
    from _harness import RESOURCE
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    logfire.configure(send_to_logfire=False, console=False, service_name=RESOURCE["service.name"],
                      environment=RESOURCE["deployment.environment.name"],
                      additional_span_processors=[SimpleSpanProcessor(recorder.exporter)])
    recorder.provider = logfire  # flushing is Logfire's: it owns the tracer provider
    oai = openai.OpenAI(base_url=server_url + "/v1", api_key="sk-record-0123456789", max_retries=0)
    ant = anthropic.Anthropic(base_url=server_url, api_key="sk-ant-record-0123456789", max_retries=0)
    logfire.instrument_openai(oai)
    logfire.instrument_anthropic(ant)
    messages = [{"role": "user", "content": "hello"}]
    claude = {"model": "claude-sonnet-4-5", "max_tokens": 100, "messages": messages,
              "extra_headers": usage_header(1450, 80, cached=1000, cache_write=200)}

    def chat() -> None:
        oai.chat.completions.create(model="gpt-4o", messages=messages, extra_headers=usage_header(1000, 50))

    def stream() -> None:
        for _ in oai.chat.completions.create(model="gpt-4o", messages=messages, stream=True,
                                             stream_options={"include_usage": True},
                                             extra_headers=usage_header(1200, 60)):
            pass

    def cached() -> None:
        oai.chat.completions.create(model="gpt-4o", messages=messages,
                                    extra_headers=usage_header(2000, 80, cached=1500))

    def embeddings() -> None:
        oai.embeddings.create(model="text-embedding-3-small", input=["a", "b"])

    def message() -> None:
        ant.messages.create(**claude)

    def message_stream() -> None:
        with ant.messages.stream(**claude) as events:
            for _ in events.text_stream:
                pass

    for step in (chat, stream, cached, embeddings, message, message_stream):
        recorder.step(step)


EXPECTED = [
    {"provider": "openai", "model": "gpt-4o-2024-08-06", "operation": "chat", "input_tokens": 1000,
     "output_tokens": 50},
    {"provider": "openai", "model": "gpt-4o-2024-08-06", "operation": "chat", "input_tokens": 1200,
     "output_tokens": 60, "note": "a stream: Logfire's request span without usage, and its log span with it"},
    {"provider": "openai", "model": "gpt-4o-2024-08-06", "operation": "chat", "input_tokens": 500,
     "cache_read_tokens": 1500, "output_tokens": 80},
    {"provider": "openai", "model": "text-embedding-3-small", "operation": "embeddings", "input_tokens": 16},
    {"provider": "anthropic", "model": "claude-sonnet-4-5", "operation": "chat", "input_tokens": 250,
     "cache_read_tokens": 1000, "cache_write_tokens": 200, "output_tokens": 80},
    {"provider": "anthropic", "model": "claude-sonnet-4-5", "operation": "chat", "input_tokens": 250,
     "cache_read_tokens": 1000, "cache_write_tokens": 200, "output_tokens": 80},
]


def main() -> None:
    from costline.testing.fake_provider import FakeProviderServer

    recorder = Recorder()
    with FakeProviderServer() as server:
        workload(recorder, server.url)
    write_fixture("logfire", "openai_anthropic", packages=["logfire", "openai", "anthropic"],
                  script="logfire_llm.py",
                  workload="openai chat, stream, cached chat, embeddings; anthropic cached message and stream; "
                           "against costline.testing.fake_provider",
                  requests=recorder.requests, expected=EXPECTED)


if __name__ == "__main__":
    main()
