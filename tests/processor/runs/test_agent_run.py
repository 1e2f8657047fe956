"""An agent run as a real app makes it — the openai SDK under Costline's instrumentation, talking to the fake provider
over HTTP, its spans sent by the OpenTelemetry SDK's OTLP/HTTP exporter to a running service in two exports — costs
exactly its calls in `costline runs --trace`."""

from __future__ import annotations

import json
from decimal import Decimal

from costline.cli import main
from costline.processor.config.settings import Address, Settings
from costline.processor.service import Service
from costline.testing.fake_provider import FakeProviderServer

CONFIG = """\
timezone: UTC
prices:
  - {provider: openai, model: gpt-4o, input_per_mtok: 2.00, cache_read_per_mtok: 1.00, output_per_mtok: 8.00}
  - {provider: openai, model: gpt-4o-2024-08-06, input_per_mtok: 2.00, cache_read_per_mtok: 1.00, output_per_mtok: 8.00}
"""
USAGES = ({"input": 2000, "cached": 500, "output": 100}, {"input": 800, "cached": 0, "output": 40},
          {"input": 3100, "cached": 3000, "output": 7})
"""Three calls of one agent run: uncached input at $2, cache reads at $1, output at $8 per million tokens."""
EXPECTED = sum(Decimal(u["input"] - u["cached"]) * 2 + Decimal(u["cached"]) + Decimal(u["output"]) * 8
               for u in USAGES) / 10**6


def run_agent(otlp_url: str, provider: FakeProviderServer) -> str:
    """One agent run (an `invoke_agent` span around three chat calls); the first two calls are exported before the
    third is made and the agent's span ends. Returns the run's trace id."""
    import openai
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from costline.instrumentation import CostlineInstrumentor

    tracer_provider = TracerProvider(resource=Resource.create(
        {"service.name": "research-agent", "costline.org": "acme", "costline.team": "search"}))
    tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_url)))
    instrumentor = CostlineInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider)
    try:
        client = openai.OpenAI(api_key="sk-agent-0001", base_url=provider.openai_base_url, max_retries=0)
        tracer = tracer_provider.get_tracer("research-agent")
        with tracer.start_as_current_span("invoke_agent researcher",
                                          attributes={"gen_ai.operation.name": "invoke_agent"}) as agent:
            for i, usage in enumerate(USAGES):
                if i == 2:
                    assert tracer_provider.force_flush()  # export 1: the first two calls
                client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "step"}],
                                               extra_headers={"x-fake-usage": json.dumps(usage)})
            trace_id = format(agent.get_span_context().trace_id, "032x")
        assert tracer_provider.force_flush()  # export 2: the third call and the agent's span
    finally:
        instrumentor.uninstrument()
        tracer_provider.shutdown()
    return trace_id


def test_an_agent_run_exported_twice_costs_exactly_its_calls(tmp_path, capsysbinary):
    (tmp_path / "costline.yaml").write_text(CONFIG)
    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    settings = Settings(config_path=tmp_path / "costline.yaml", db_url=db, otlp_http=Address("127.0.0.1", 0),
                        otlp_grpc=None, http=None)
    service = Service(settings).start()
    try:
        with FakeProviderServer() as provider:
            trace = run_agent(f"{service.otlp_http.url}/v1/traces", provider)
            other = run_agent(f"{service.otlp_http.url}/v1/traces", provider)  # another run: not in this one's cost
    finally:
        service.stop(1)
    assert trace != other

    assert main(["runs", "--db", db, "--config", str(tmp_path / "costline.yaml"), "--trace", trace.upper(),
                 "--format", "json"]) == 0
    document = json.loads(capsysbinary.readouterr().out)
    assert document["kind"] == "trace" and document["run_id"] == trace
    assert document["requests"] == 3 and document["unpriced_requests"] == 0
    assert document["input_tokens"] == sum(u["input"] - u["cached"] for u in USAGES)
    assert document["cache_read_tokens"] == sum(u["cached"] for u in USAGES)
    assert Decimal(document["cost_usd"]) == EXPECTED
    assert [(o["org"], o["team"]) for o in document["owners"]] == [("acme", "search")]

    # The table a person reads says the same; the top runs list both runs, each at its exact cost.
    assert main(["runs", "--db", db, "--trace", trace]) == 0
    table = capsysbinary.readouterr().out.decode()
    assert trace in table and f"{EXPECTED.normalize():f}" in table
    assert main(["runs", "--db", db, "--kind", "trace", "--format", "json"]) == 0
    runs = json.loads(capsysbinary.readouterr().out)["runs"]
    assert sorted(r["run_id"] for r in runs) == sorted([trace, other])
    assert {Decimal(r["cost_usd"]) for r in runs} == {EXPECTED}
