"""Record LiteLLM's OpenTelemetry callback (`litellm.callbacks = ["otel"]`) → tests/fixtures/spans/litellm/sdk.json.

    pip install 'litellm>=1.110' opentelemetry-sdk opentelemetry-exporter-otlp-proto-common
    PYTHONPATH=instrumentation/src:processor/src .venv/bin/python scripts/record-spans/python/litellm_sdk.py

Workload, through the LiteLLM SDK against `costline.testing.fake_provider` served on 127.0.0.1 (exact usage through
`x-fake-usage`): an openai chat, an openai stream, an openai chat with a cache read, openai embeddings, and an
anthropic chat reading and writing the cache. LiteLLM is heavy (aiohttp, tokenizers, huggingface-hub...), so the
suite replays this recording and never installs it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Recorder, usage_header, write_fixture  # noqa: E402

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no download of LiteLLM's price list


def main() -> None:
    from opentelemetry import trace

    from costline.testing.fake_provider import FakeProviderServer

    recorder = Recorder()
    trace.set_tracer_provider(recorder.provider)  # LiteLLM's callback adds itself to the global SDK provider
    import litellm

    litellm.callbacks = ["otel"]
    messages = [{"role": "user", "content": "hello"}]
    with FakeProviderServer() as server:
        openai_args = {"api_base": server.openai_base_url, "api_key": "sk-record-0123456789"}

        def chat() -> None:
            litellm.completion(model="openai/gpt-4o", messages=messages, extra_headers=usage_header(1000, 50),
                               **openai_args)

        def stream() -> None:
            for _ in litellm.completion(model="openai/gpt-4o", messages=messages, stream=True,
                                        stream_options={"include_usage": True},
                                        extra_headers=usage_header(1200, 60), **openai_args):
                pass

        def cached() -> None:
            litellm.completion(model="openai/gpt-4o", messages=messages,
                               extra_headers=usage_header(2000, 80, cached=1500), **openai_args)

        def embeddings() -> None:
            litellm.embedding(model="openai/text-embedding-3-small", input=["a", "b"], **openai_args)

        def anthropic_cached() -> None:
            litellm.completion(model="anthropic/claude-sonnet-4-5", messages=messages, max_tokens=100,
                               api_base=server.anthropic_base_url, api_key="sk-ant-record-0123456789",
                               extra_headers=usage_header(1450, 80, cached=1000, cache_write=200))

        for step in (chat, stream, cached, embeddings, anthropic_cached):
            # LiteLLM ends its spans in its logging worker, after the call has returned.
            recorder.step(step, until=lambda spans: any(s.name == "litellm_request" for s in spans))
    write_fixture(
        "litellm", "sdk", packages=["litellm"], script="litellm_sdk.py",
        workload="openai chat, stream, cached chat, embeddings; anthropic cached chat; against "
                 "costline.testing.fake_provider",
        requests=recorder.requests,
        expected=[
            {"provider": "openai", "model": "gpt-4o-2024-08-06", "operation": "chat",
             "input_tokens": 1000, "output_tokens": 50},
            {"provider": "openai", "model": "gpt-4o", "operation": "chat", "input_tokens": 1200, "output_tokens": 60,
             "note": "LiteLLM names the requested model on streams"},
            {"provider": "openai", "model": "gpt-4o-2024-08-06", "operation": "chat",
             "input_tokens": 500, "cache_read_tokens": 1500, "output_tokens": 80},
            {"provider": "openai", "model": "text-embedding-3-small", "operation": "embeddings", "input_tokens": 16},
            {"provider": "anthropic", "model": "claude-sonnet-4-5", "operation": "chat",
             "input_tokens": 250, "cache_read_tokens": 1000, "cache_write_tokens": 200, "output_tokens": 80},
        ],
    )


if __name__ == "__main__":
    main()
