"""Record Langfuse's OpenAI drop-in (`from langfuse.openai import openai`, SDK v3+) → tests/fixtures/spans/langfuse/openai.json.

    pip install 'langfuse>=3' opentelemetry-sdk opentelemetry-exporter-otlp-proto-common
    PYTHONPATH=instrumentation/src:processor/src .venv/bin/python scripts/record-spans/python/langfuse_openai.py

Workload, through the openai SDK patched by `langfuse.openai` against `costline.testing.fake_provider` on 127.0.0.1
(exact usage through `x-fake-usage`): a chat, a stream, a chat with a cache read, a Responses call with cache and
reasoning, and embeddings. Langfuse's client is given this script's tracer provider and an in-memory exporter of its
own, so nothing is sent to a Langfuse server.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Recorder, usage_header, write_fixture  # noqa: E402


def workload(recorder: Recorder, base_url: str) -> None:
    """The five calls, each its own export (shared with the live test)."""
    from langfuse import Langfuse
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    langfuse = Langfuse(public_key="pk-lf-record", secret_key="sk-lf-record", base_url="http://127.0.0.1:9",
                        tracer_provider=recorder.provider, span_exporter=InMemorySpanExporter())
    from langfuse.openai import openai

    client = openai.OpenAI(base_url=base_url, api_key="sk-record-0123456789", max_retries=0)
    messages = [{"role": "user", "content": "hello"}]

    def chat() -> None:
        client.chat.completions.create(model="gpt-4o", messages=messages, extra_headers=usage_header(1000, 50))

    def stream() -> None:
        for _ in client.chat.completions.create(model="gpt-4o", messages=messages, stream=True,
                                                stream_options={"include_usage": True},
                                                extra_headers=usage_header(1200, 60)):
            pass

    def cached() -> None:
        client.chat.completions.create(model="gpt-4o", messages=messages,
                                       extra_headers=usage_header(2000, 80, cached=1500, reasoning=0))

    def responses() -> None:
        client.responses.create(model="o3", input="hello",
                                extra_headers=usage_header(2000, 300, cached=500, reasoning=100))

    def embeddings() -> None:
        client.embeddings.create(model="text-embedding-3-small", input=["a", "b"])

    for step in (chat, stream, cached, responses, embeddings):
        recorder.step(step)
    langfuse.flush()


EXPECTED = [
    {"provider": "openai", "model": "gpt-4o-2024-08-06", "operation": "chat", "input_tokens": 1000,
     "output_tokens": 50, "note": "Langfuse's spans name no provider: its drop-in's, openai"},
    {"provider": "openai", "model": "gpt-4o-2024-08-06", "operation": "chat", "input_tokens": 1200,
     "output_tokens": 60},
    {"provider": "openai", "model": "gpt-4o-2024-08-06", "operation": "chat", "input_tokens": 500,
     "cache_read_tokens": 1500, "output_tokens": 80},
    {"provider": "openai", "model": "o3", "operation": "chat", "input_tokens": 1500, "cache_read_tokens": 500,
     "output_tokens": 300, "reasoning_tokens": 100},
    {"provider": "openai", "model": "text-embedding-3-small", "operation": "embeddings", "input_tokens": 16},
]


def main() -> None:
    from costline.testing.fake_provider import FakeProviderServer

    recorder = Recorder()
    with FakeProviderServer() as server:
        workload(recorder, server.openai_base_url)
    write_fixture("langfuse", "openai", packages=["langfuse", "openai"], script="langfuse_openai.py",
                  workload="chat, stream, cached chat, Responses, embeddings through langfuse.openai against "
                           "costline.testing.fake_provider",
                  requests=recorder.requests, expected=EXPECTED)


if __name__ == "__main__":
    main()
