"""Ownership: code > incoming baggage > resource; inherited by threads, tasks and other instrumentations' spans."""

from __future__ import annotations

import asyncio
import contextvars
import threading

import openai
import pytest
from opentelemetry import baggage, context
from opentelemetry.baggage.propagation import W3CBaggagePropagator

from costline import owner

from .conftest import OPENAI_KEY, mock_async_http, mock_http

MESSAGES = [{"role": "user", "content": "hi"}]


def call(client=None):
    client = client or openai.OpenAI(api_key=OPENAI_KEY, http_client=mock_http())
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES)


def owners(span):
    return {k: v for k, v in span.attributes.items() if k.startswith("costline.") and "fingerprint" not in k}


def test_owner_context_manager_and_nesting(spans):
    with owner(org="acme", team="search", project="ranking"):
        with owner(team="search-infra", feature="rerank"):
            call()
        call()
    call()
    inner, outer, none = spans.all()
    assert owners(inner) == {"costline.org": "acme", "costline.team": "search-infra", "costline.project": "ranking",
                             "costline.feature": "rerank"}
    assert owners(outer) == {"costline.org": "acme", "costline.team": "search", "costline.project": "ranking"}
    assert owners(none) == {}


def test_owner_puts_keys_into_w3c_baggage_for_downstream_services():
    carrier: dict[str, str] = {}
    with owner(team="search", user="alice"):
        W3CBaggagePropagator().inject(carrier)
    assert "costline.team=search" in carrier["baggage"]
    assert "costline.user=alice" in carrier["baggage"]


def test_code_beats_incoming_baggage(spans):
    incoming = W3CBaggagePropagator().extract({"baggage": "costline.team=from-upstream,costline.org=acme"})
    token = context.attach(incoming)
    try:
        call()
        with owner(team="from-code"):
            call()
    finally:
        context.detach(token)
    upstream, code = spans.all()
    assert owners(upstream) == {"costline.team": "from-upstream", "costline.org": "acme"}
    assert owners(code) == {"costline.team": "from-code", "costline.org": "acme"}


def test_decorator_sync_and_async(spans):
    @owner(team="support", feature="auto-reply")
    def sync_handler():
        call()

    @owner(team="billing")
    async def async_handler():
        client = openai.AsyncOpenAI(api_key=OPENAI_KEY, http_client=mock_async_http())
        await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)

    sync_handler()
    asyncio.run(async_handler())
    call()  # outside: nothing leaks
    a, b, c = spans.all()
    assert owners(a) == {"costline.team": "support", "costline.feature": "auto-reply"}
    assert owners(b) == {"costline.team": "billing"}
    assert owners(c) == {}


def test_baggage_follows_an_asyncio_task(spans):
    async def main():
        client = openai.AsyncOpenAI(api_key=OPENAI_KEY, http_client=mock_async_http())
        with owner(team="search"):
            task = asyncio.create_task(client.chat.completions.create(model="gpt-4o", messages=MESSAGES))
        await task

    asyncio.run(main())
    assert owners(spans.one()) == {"costline.team": "search"}


def test_baggage_follows_a_thread_started_with_the_context(spans):
    # Plain threads start with an empty context; the standard way (and what opentelemetry-instrumentation-threading
    # does automatically) is to run the target in a copy of the starting thread's context.
    with owner(team="batch", project="nightly"):
        ctx = contextvars.copy_context()
    worker = threading.Thread(target=ctx.run, args=(call,))
    worker.start()
    worker.join()
    assert owners(spans.one()) == {"costline.team": "batch", "costline.project": "nightly"}


def test_baggage_crosses_a_thread_as_a_downstream_service_would(spans):
    carrier: dict[str, str] = {}
    with owner(team="search", customer="initech"):
        W3CBaggagePropagator().inject(carrier)

    def downstream_service(headers):
        token = context.attach(W3CBaggagePropagator().extract(headers))
        try:
            call()
        finally:
            context.detach(token)

    worker = threading.Thread(target=downstream_service, args=(carrier,))
    worker.start()
    worker.join()
    assert owners(spans.one()) == {"costline.team": "search", "costline.customer": "initech"}


def test_foreign_genai_spans_are_stamped_and_others_left_alone(spans, tracer_provider):
    tracer = tracer_provider.get_tracer("opentelemetry.instrumentation.genai.openai")
    other = tracer_provider.get_tracer("my.app")
    with owner(team="search"):
        with tracer.start_as_current_span("chat gpt-4o", attributes={"gen_ai.operation.name": "chat"}):
            pass
        with other.start_as_current_span("GET /users"):
            pass
    genai, plain = spans.all()
    assert genai.attributes["costline.team"] == "search"
    assert "costline.team" not in plain.attributes


def test_owner_rejects_bad_values():
    with pytest.raises(ValueError, match="team must be a non-empty string"):
        owner(team="")
    with pytest.raises(TypeError):
        owner(squad="x")  # type: ignore[call-arg]


def test_import_costline_owner_is_cheap():
    import subprocess
    import sys

    code = (
        "import sys; from costline import owner; "
        "heavy = [m for m in ('opentelemetry.sdk', 'wrapt', 'openai', 'anthropic', 'costline.instrumentation', "
        "'opentelemetry.instrumentation') if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_baggage_values_only_from_costline_keys(spans):
    ctx = baggage.set_baggage("session", "secret-session-id")
    token = context.attach(ctx)
    try:
        call()
    finally:
        context.detach(token)
    assert "session" not in spans.one().attributes
