"""Costline alongside a peer instrumentation in the same process (OpenLLMetry, run in a subprocess: it patches
the SDK globally and does not fully undo it)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import json, os
    import httpx2, openai
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.instrumentation.openai import OpenAIInstrumentor
    from costline import owner
    from costline.instrumentation import CostlineInstrumentor
    from costline.testing.fake_provider import mock_transport_handler

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    CostlineInstrumentor().instrument(tracer_provider=provider)
    OpenAIInstrumentor().instrument(tracer_provider=provider)
    client = openai.OpenAI(api_key="sk-peer", http_client=httpx2.Client(transport=httpx2.MockTransport(mock_transport_handler)))
    with owner(team="search"):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "PROMPT-CANARY"}])
    print(json.dumps([{"scope": s.instrumentation_scope.name, "attrs": dict(s.attributes)} for s in exporter.get_finished_spans()]))
    """
)


def run(env_extra: dict[str, str]) -> list[dict]:
    import os

    env = {k: v for k, v in os.environ.items() if k != "TRACELOOP_TRACE_CONTENT"}
    env.update(env_extra)
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_peer_span_is_stamped_with_owner_and_records_no_content():
    spans = run({})
    scopes = sorted(s["scope"] for s in spans)
    assert scopes == ["costline.instrumentation", "opentelemetry.instrumentation.openai.v1"]
    peer = next(s for s in spans if s["scope"] != "costline.instrumentation")
    assert peer["attrs"]["costline.team"] == "search"
    # The peer's span starts outside the SDK call, before the key is known: only Costline's span carries the
    # fingerprint, and the processor bills the pair once (same gen_ai.response.id).
    ours = next(s for s in spans if s["scope"] == "costline.instrumentation")
    assert ours["attrs"]["costline.api_key.fingerprint"] == peer_fingerprint()
    assert ours["attrs"]["gen_ai.response.id"] == peer["attrs"]["gen_ai.response.id"]
    assert "PROMPT-CANARY" not in json.dumps(peer)


def peer_fingerprint() -> str:
    from costline.fingerprint import fingerprint

    return fingerprint("sk-peer")


def test_explicit_user_choice_is_left_alone():
    spans = run({"TRACELOOP_TRACE_CONTENT": "true"})
    peer = next(s for s in spans if s["scope"] != "costline.instrumentation")
    assert "PROMPT-CANARY" in json.dumps(peer)  # the application asked for content: not Costline's to override
