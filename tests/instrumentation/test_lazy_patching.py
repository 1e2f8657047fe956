"""A library is patched when the application imports it, not imported by `instrument()`: an app using only openai
does not load anthropic (seconds of start-up, thousands of pydantic models) because both SDKs are installed.

Each case runs in a fresh interpreter, the only place where "not imported yet" is true."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SETUP = """
import sys
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from costline.instrumentation import CostlineInstrumentor

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
instrumentor = CostlineInstrumentor()
"""


def run(body: str) -> None:
    result = subprocess.run([sys.executable, "-c", SETUP + textwrap.dedent(body)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr


def test_instrument_imports_neither_sdk_and_a_later_import_is_patched_and_traced() -> None:
    run("""
        instrumentor.instrument(tracer_provider=provider)
        assert "openai" not in sys.modules and "anthropic" not in sys.modules

        import anthropic, httpx2
        from costline.testing.fake_provider import mock_transport_handler
        assert "openai" not in sys.modules
        client = anthropic.Anthropic(api_key="sk-ant-test", max_retries=0,
                                     http_client=httpx2.Client(transport=httpx2.MockTransport(mock_transport_handler)))
        client.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
        (span,) = exporter.get_finished_spans()
        assert span.attributes["gen_ai.provider.name"] == "anthropic"
        assert span.attributes["gen_ai.usage.output_tokens"] > 0

        instrumentor.uninstrument()
        import anthropic._base_client as base
        assert not hasattr(base.SyncAPIClient.request, "__wrapped__")
    """)


def test_uninstrument_before_the_import_leaves_the_library_alone() -> None:
    run("""
        instrumentor.instrument(tracer_provider=provider)
        instrumentor.uninstrument()
        import openai._base_client as base
        assert not hasattr(base.SyncAPIClient.request, "__wrapped__")
        instrumentor.instrument(tracer_provider=provider)  # and again: patched once, not twice
        assert hasattr(base.SyncAPIClient.request, "__wrapped__")
        assert not hasattr(base.SyncAPIClient.request.__wrapped__, "__wrapped__")
    """)
