from __future__ import annotations

import httpx2
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from costline.instrumentation import CostlineInstrumentor
from costline.testing.fake_provider import FakeProviderServer, mock_transport_handler
from tests.processor.served import serving  # noqa: F401 - a fixture (a real `costline serve`, stopped after the test)

OPENAI_KEY = "sk-test-0123456789abcdef"
ANTHROPIC_KEY = "sk-ant-test-0123456789abcdef"


class Spans:
    def __init__(self, exporter: InMemorySpanExporter) -> None:
        self.exporter = exporter

    def all(self):
        return list(self.exporter.get_finished_spans())

    def one(self):
        spans = self.all()
        assert len(spans) == 1, [s.name for s in spans]
        return spans[0]


@pytest.fixture
def tracer_provider():
    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    provider._test_exporter = exporter  # type: ignore[attr-defined]
    return provider


@pytest.fixture
def instrumented(tracer_provider):
    instrumentor = CostlineInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider)
    spans = Spans(tracer_provider._test_exporter)
    spans.provider = tracer_provider
    yield spans
    instrumentor.uninstrument()


@pytest.fixture
def spans(instrumented):
    return instrumented


def mock_http(handler=mock_transport_handler) -> httpx2.Client:
    return httpx2.Client(transport=httpx2.MockTransport(handler))


def mock_async_http(handler=mock_transport_handler) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(transport=httpx2.MockTransport(handler))


@pytest.fixture
def openai_client():
    import openai

    return openai.OpenAI(api_key=OPENAI_KEY, http_client=mock_http(), max_retries=2)


@pytest.fixture
def async_openai_client():
    import openai

    return openai.AsyncOpenAI(api_key=OPENAI_KEY, http_client=mock_async_http(), max_retries=2)


@pytest.fixture
def fake_server():
    with FakeProviderServer() as server:
        yield server
