"""End to end: an app run under `opentelemetry-instrument` exports Costline spans with the real OTLP/HTTP exporter."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from costline.fingerprint import fingerprint
from costline.testing.fake_provider import CHUNK_TEXTS, FakeProviderServer
from tests.otlp_sink import OTLPSink

APP = Path(__file__).parent / "apps" / "llm_app.py"
OPENAI_KEY = "sk-proj-E2E-SECRET-KEY-do-not-leak-1234567890"
ANTHROPIC_KEY = "sk-ant-api03-E2E-SECRET-KEY-do-not-leak-0987654321"


@pytest.fixture(scope="module")
def exported():
    bin_dir = Path(sys.executable).parent
    with FakeProviderServer() as provider, OTLPSink() as sink:
        env = {
            **os.environ,
            "OPENAI_API_KEY": OPENAI_KEY,
            "OPENAI_BASE_URL": provider.openai_base_url,
            "ANTHROPIC_API_KEY": ANTHROPIC_KEY,
            "ANTHROPIC_BASE_URL": provider.anthropic_base_url,
            "OTEL_SERVICE_NAME": "e2e-app",
            "OTEL_RESOURCE_ATTRIBUTES": "costline.org=acme,costline.team=platform,deployment.environment.name=test",
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_LOGS_EXPORTER": "none",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_EXPORTER_OTLP_ENDPOINT": sink.endpoint,
            # The peer instrumentations installed for benchmarks also register `openai`: keep only Costline.
            "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "openai,openai_v2,anthropic",
            "PYTHONPATH": "",
        }
        result = subprocess.run(
            [str(bin_dir / "opentelemetry-instrument"), sys.executable, str(APP)],
            env=env, capture_output=True, text=True, timeout=120,
        )
        assert result.returncode == 0, result.stderr
        assert "app done" in result.stdout
        yield sink


def by_model(exported):
    return {attrs.get("gen_ai.request.model"): (resource, scope, attrs, span) for resource, scope, attrs, span in exported.spans()}


def test_one_span_per_call_with_exact_tokens(exported):
    spans = exported.spans()
    assert len(spans) == 4, [(s[1], s[3].name) for s in spans]
    models = by_model(exported)
    _, scope, chat, span = models["gpt-4o"]
    assert scope == "costline.instrumentation" and span.name == "chat gpt-4o"
    assert (chat["gen_ai.usage.input_tokens"], chat["gen_ai.usage.cache_read.input_tokens"]) == (2000, 500)
    assert chat["gen_ai.usage.output_tokens"] == 100
    assert chat["gen_ai.response.model"] == "gpt-4o-2024-08-06"
    assert chat["costline.api_key.fingerprint"] == fingerprint(OPENAI_KEY)

    _, _, stream, _ = models["gpt-4o-mini"]
    assert stream["gen_ai.request.stream"] is True
    assert stream["gen_ai.usage.input_tokens"] == 120  # exact: Costline asked for the usage chunk
    assert stream["gen_ai.response.time_to_first_chunk"] > 0

    _, scope, claude, _ = models["claude-haiku-4-5"]
    assert scope == "com.anthropic.sdk.python"  # the SDK's own span, enriched — not a second one
    assert claude["gen_ai.usage.input_tokens"] == 1450
    assert claude["costline.api_key.fingerprint"] == fingerprint(ANTHROPIC_KEY)

    _, _, embed, _ = models["text-embedding-3-small"]
    assert embed["gen_ai.operation.name"] == "embeddings"


def test_owners_code_over_resource(exported):
    models = by_model(exported)
    resource, _, plain, _ = models["gpt-4o"]
    assert resource["costline.team"] == "platform" and resource["costline.org"] == "acme"
    assert "costline.team" not in plain  # no code owner: the processor falls back to the resource
    for model in ("gpt-4o-mini", "claude-haiku-4-5"):
        attrs = models[model][2]
        assert (attrs["costline.team"], attrs["costline.project"]) == ("search", "ranking")
    assert models["text-embedding-3-small"][2]["costline.team"] == "billing"  # through asyncio.run


def test_no_content_and_no_key_in_any_exported_byte(exported):
    blob = b"".join(exported.bodies)
    assert blob, "nothing exported"
    for secret in (OPENAI_KEY, ANTHROPIC_KEY, "E2E-SECRET", "PROMPT-CANARY", "".join(CHUNK_TEXTS), "counts every token"):
        assert secret.encode() not in blob, secret
