"""Record `openinference-instrumentation-anthropic` beside the anthropic SDK's own spans →
tests/fixtures/spans/openinference/anthropic_with_sdk.json.

    pip install 'openinference-instrumentation-anthropic>=3.1' 'anthropic>=2' opentelemetry-sdk \
        opentelemetry-exporter-otlp-proto-common
    PYTHONPATH=instrumentation/src:processor/src .venv/bin/python scripts/record-spans/python/openinference_anthropic.py

Workload, through an anthropic client whose own tracing is on (`open_telemetry={"tracer_provider": ...}`) with
OpenInference's instrumentor on the same provider, against `costline.testing.fake_provider` on 127.0.0.1: a message,
a message reading and writing the cache, a `messages.stream()` and a `messages.create(stream=True)`. Every call has
two spans, one per instrumentation; with `messages.stream()` they are in different traces and OpenInference records
no response id. Matching the two is the dedupe's concern: `expected` says each call once.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Recorder, usage_header, write_fixture  # noqa: E402

MODEL = "claude-sonnet-4-5"


def workload(recorder: Recorder, base_url: str) -> None:
    import anthropic
    from openinference.instrumentation.anthropic import AnthropicInstrumentor

    AnthropicInstrumentor().instrument(tracer_provider=recorder.provider)
    client = anthropic.Anthropic(base_url=base_url, api_key="sk-ant-record-0123456789", max_retries=0,
                                 open_telemetry={"tracer_provider": recorder.provider})
    messages = [{"role": "user", "content": "hello"}]

    def message() -> None:
        client.messages.create(model=MODEL, max_tokens=100, messages=messages, extra_headers=usage_header(1000, 50))

    def cached() -> None:
        client.messages.create(model=MODEL, max_tokens=100, messages=messages,
                               extra_headers=usage_header(1450, 80, cached=1000, cache_write=200))

    def helper_stream() -> None:
        with client.messages.stream(model=MODEL, max_tokens=100, messages=messages,
                                    extra_headers=usage_header(1200, 60, cached=900)) as events:
            for _ in events.text_stream:
                pass

    def raw_stream() -> None:
        for _ in client.messages.create(model=MODEL, max_tokens=100, messages=messages, stream=True,
                                        extra_headers=usage_header(700, 30, cache_write=300)):
            pass

    try:
        for step in (message, cached, helper_stream, raw_stream):
            recorder.step(step)
    finally:
        AnthropicInstrumentor().uninstrument()


EXPECTED = [
    {"provider": "anthropic", "model": MODEL, "operation": "chat", "input_tokens": 1000, "output_tokens": 50},
    {"provider": "anthropic", "model": MODEL, "operation": "chat", "input_tokens": 250, "cache_read_tokens": 1000,
     "cache_write_tokens": 200, "output_tokens": 80},
    {"provider": "anthropic", "model": MODEL, "operation": "chat", "input_tokens": 300, "cache_read_tokens": 900,
     "output_tokens": 60},
    {"provider": "anthropic", "model": MODEL, "operation": "chat", "input_tokens": 400, "cache_write_tokens": 300,
     "output_tokens": 30},
]


def main() -> None:
    from costline.testing.fake_provider import FakeProviderServer

    recorder = Recorder()
    with FakeProviderServer() as server:
        workload(recorder, server.anthropic_base_url)
    write_fixture("openinference", "anthropic_with_sdk",
                  packages=["openinference-instrumentation-anthropic", "anthropic"],
                  script="openinference_anthropic.py",
                  workload="message, cached message, messages.stream(), messages.create(stream=True); each with "
                           "the anthropic SDK's own span and OpenInference's; against costline.testing.fake_provider",
                  requests=recorder.requests, expected=EXPECTED,
                  known_failure="messages.stream(): the SDK's span and OpenInference's are in different traces and "
                                "OpenInference records no response id, so the call is billed twice until the two "
                                "are matched on provider, model, usage and overlapping time (issue 17)")


if __name__ == "__main__":
    main()
