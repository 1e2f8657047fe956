"""One call, one bill (issues 17 and 22): whether a span is a call is the span's own business, one source's spans
with different span ids are different calls, and two sources' spans of one call bill once — in one export, across
exports, and across two processors sharing one ledger (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.processor.faults.ingesting import Ingest, start
from tests.processor.otlp import RECENT_NS, attributes, request_of

from opentelemetry.proto.trace.v1.trace_pb2 import Span

SECOND = 1_000_000_000
START = RECENT_NS - 3_600 * SECOND


@pytest.fixture
def two(tmp_path: Path, db_url: str) -> Iterator[tuple[Ingest, Ingest]]:  # noqa: F811
    """Two processors sharing one ledger."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = start(tmp_path / "a", db_url)
    try:
        second = start(tmp_path / "b", db_url)
        try:
            yield Ingest(first), Ingest(second)
        finally:
            second.stop(2)
    finally:
        first.stop(2)


def span(trace: bytes, values: dict, *, start: int, parent: bytes = b"", name: str = "chat") -> Span:
    return Span(trace_id=trace, span_id=os.urandom(8), parent_span_id=parent, name=name, start_time_unix_nano=start,
                end_time_unix_nano=start + 800_000_000, attributes=attributes(values))


def requests(ingest: Ingest, team: str) -> int:
    return sum(r["requests"] for r in ingest.usage() if r["team"] == team)


def chat(model: str, inp: int, out: int, team: str, **more) -> dict:
    return {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": model,
            "gen_ai.response.model": model, "gen_ai.usage.input_tokens": inp, "gen_ai.usage.output_tokens": out,
            "costline.team": team, **more}


AGGREGATES = {
    # pydantic-ai's agent run span (instrumentation version 3+): semconv `invoke_agent`, its calls' usage summed.
    "pydantic-ai": ("pydantic-ai", {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "support",
                                    "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o"}),
    # OpenLLMetry's workflow span around its calls (`traceloop.span.kind`).
    "openllmetry-workflow": ("opentelemetry.instrumentation.openai.v1", {
        "traceloop.span.kind": "workflow", "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o"}),
    # Vercel AI SDK's outer span: only `ai.generateText.doGenerate` is a call.
    "vercel-outer": ("ai", {"ai.operationId": "ai.generateText", "gen_ai.system": "openai.chat",
                            "gen_ai.request.model": "gpt-4o"}),
}


@pytest.mark.parametrize("framework", sorted(AGGREGATES))
def test_an_agent_run_exported_children_first_parent_later_bills_its_calls_once(two, framework: str) -> None:
    """Issue 22: two calls (1000+200 and 1500+300 tokens) exported one to each processor, then the run's span,
    carrying their summed usage, exported later to one processor and retried through the other: two calls."""
    first, second = two
    scope, values = AGGREGATES[framework]
    team = framework
    trace, run_id = os.urandom(16), os.urandom(8)
    calls = [span(trace, chat("gpt-4o", 1000, 200, team), start=START + SECOND, parent=run_id),
             span(trace, chat("gpt-4o", 1500, 300, team), start=START + 3 * SECOND, parent=run_id)]
    if framework == "vercel-outer":
        for c in calls:
            c.attributes.extend(attributes({"ai.operationId": "ai.generateText.doGenerate"}))
    run = span(trace, {**values, "gen_ai.usage.input_tokens": 2500, "gen_ai.usage.output_tokens": 500,
                       "costline.team": team}, start=START, name="invoke_agent support")
    run.span_id = run_id
    run.end_time_unix_nano = START + 5 * SECOND
    first.export(request_of([calls[0]], scope=scope))
    second.export(request_of([calls[1]], scope=scope))
    first.export(request_of([run], scope=scope))
    second.export(request_of([run], scope=scope))  # the exporter's retry, through the other processor
    assert requests(first, team) == 2
    first.export(request_of([run, *calls], scope=scope))  # all of it at once: the same
    assert requests(second, team) == 2


def test_five_spans_of_one_source_sharing_response_id_usage_and_second_bill_five(two) -> None:
    """Issue 17: five calls a server answered with one id, identical usage, started in the same second, one
    instrumentation: five calls — in one export, and in five exports to two processors; retries bill nothing."""
    first, second = two
    trace = os.urandom(16)
    same = chat("gpt-4o", 1000, 200, "five", **{"gen_ai.response.id": "chatcmpl-constant"})
    five = [span(trace, same, start=START + 10 * SECOND + i * 1000) for i in range(5)]
    first.export(request_of(five))
    assert requests(first, "five") == 5
    second.export(request_of(five))
    assert requests(first, "five") == 5

    trace = os.urandom(16)
    same = {**same, "costline.team": "five-apart"}
    five = [span(trace, same, start=START + 20 * SECOND + i * 1000) for i in range(5)]
    for i, s in enumerate(five):
        (first if i % 2 else second).export(request_of([s]))
    assert requests(first, "five-apart") == 5
    for i, s in enumerate(five):
        (second if i % 2 else first).export(request_of([s]))
    assert requests(first, "five-apart") == 5


def two_scopes(*parts: tuple[str, list[Span]]):
    request = request_of(parts[0][1], scope=parts[0][0])
    for scope, spans in parts[1:]:
        request.resource_spans.extend(request_of(spans, scope=scope).resource_spans)
    return request


def test_a_call_described_by_two_sources_in_one_export_and_in_two_bills_once(two) -> None:
    """Two instrumentations on one SDK (Costline's span and OpenLLMetry's of the same response, one trace), with a
    server answering every call with one id: five calls, ten spans, five bills however they are exported."""
    first, second = two
    trace = os.urandom(16)
    same = chat("gpt-4o", 1000, 200, "pairs", **{"gen_ai.response.id": "chatcmpl-constant"})
    ours = [span(trace, same, start=START + 30 * SECOND + i * 1000) for i in range(5)]
    theirs = [span(trace, same, start=START + 30 * SECOND + i * 1000 + 2_000_000, parent=o.span_id) for i, o in
              enumerate(ours)]
    peer = "opentelemetry.instrumentation.openai.v1"
    first.export(two_scopes(("costline.instrumentation", ours[:2]), (peer, theirs[:2])))
    first.export(request_of(ours[2:]))
    for t in theirs[2:]:
        second.export(request_of([t], scope=peer))
    assert requests(first, "pairs") == 5


# --- OpenInference (anthropic) beside the anthropic SDK's own span: another trace, no response id ---------------

def openinference_anthropic(trace: bytes, start: int, prompt: int, completion: int, cache_read: int,
                            cache_write: int, team: str) -> Span:
    """A span as `openinference-instrumentation-anthropic` writes it for `messages.stream()` (its attribute names:
    `openinference.semconv.trace.SpanAttributes`): kind LLM, the model from the response, token counts with the
    prompt including the cache, no response id."""
    return span(trace, {
        "openinference.span.kind": "LLM", "llm.provider": "anthropic", "llm.system": "anthropic",
        "llm.model_name": "claude-sonnet-4-5-20250929",
        "llm.invocation_parameters": json.dumps({"model": "claude-sonnet-4-5", "max_tokens": 1024}),
        "llm.token_count.prompt": prompt, "llm.token_count.completion": completion,
        "llm.token_count.total": prompt + completion,
        "llm.token_count.prompt_details.cache_read": cache_read,
        "llm.token_count.prompt_details.cache_write": cache_write, "costline.team": team,
    }, start=start, name="MessagesStream")


def anthropic_sdk(trace: bytes, start: int, prompt: int, completion: int, cache_read: int, cache_write: int,
                  team: str) -> Span:
    """The anthropic SDK's own span of the same stream: semconv, input including the cache, a response id."""
    return span(trace, {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": "claude-sonnet-4-5", "gen_ai.response.model": "claude-sonnet-4-5-20250929",
        "gen_ai.response.id": "msg_" + os.urandom(8).hex(), "gen_ai.request.stream": True,
        "gen_ai.usage.input_tokens": prompt, "gen_ai.usage.output_tokens": completion,
        "gen_ai.usage.cache_read.input_tokens": cache_read, "gen_ai.usage.cache_creation.input_tokens": cache_write,
        "costline.team": team,
    }, start=start, name="chat claude-sonnet-4-5")


OI, SDK = "openinference.instrumentation.anthropic", "com.anthropic.sdk.python"


def stream_pair(at: int, team: str, tokens=(3000, 250, 1000, 500)):
    return (openinference_anthropic(os.urandom(16), at, *tokens, team),
            anthropic_sdk(os.urandom(16), at + 1_500_000, *tokens, team))


def test_openinference_and_the_anthropic_sdk_describing_one_stream_bill_once(two) -> None:
    """Issue 17: each `messages.stream()` call billed twice (two traces, no response id on OpenInference's span).
    Matched on service, provider, model, usage and start: once in one export, once in two exports either way round,
    once through two processors; two identical streams started together are still two."""
    first, second = two
    oi, sdk = stream_pair(START + 40 * SECOND, "one-export")
    first.export(two_scopes((OI, [oi]), (SDK, [sdk])))
    assert requests(first, "one-export") == 1

    oi, sdk = stream_pair(START + 50 * SECOND, "oi-first")
    first.export(request_of([oi], scope=OI))
    second.export(request_of([sdk], scope=SDK))
    assert requests(first, "oi-first") == 1

    oi, sdk = stream_pair(START + 60 * SECOND, "sdk-first")
    second.export(request_of([sdk], scope=SDK))
    first.export(request_of([oi], scope=OI))
    first.export(request_of([oi], scope=OI))  # a retry
    assert requests(first, "sdk-first") == 1

    pairs = [stream_pair(START + 70 * SECOND + i * 1000, "twins") for i in range(2)]
    for oi, _ in pairs:
        first.export(request_of([oi], scope=OI))
    second.export(request_of([sdk for _, sdk in pairs], scope=SDK))
    assert requests(first, "twins") == 2


def test_different_usage_or_a_later_start_is_another_call(two) -> None:
    first, second = two
    oi, _ = stream_pair(START + 80 * SECOND, "apart")
    _, sdk = stream_pair(START + 83 * SECOND, "apart")  # three seconds later: another call
    other, _ = stream_pair(START + 80 * SECOND, "apart", tokens=(3001, 250, 1000, 500))
    first.export(request_of([oi, other], scope=OI))
    second.export(request_of([sdk], scope=SDK))
    assert requests(first, "apart") == 3


def test_one_sources_calls_with_and_without_a_response_id_are_not_paired(two) -> None:
    """The usage family pairs spans of two sources only: one instrumentation's call without an id and its call
    with one, identical usage, the same second, are two calls in whichever order and processor they arrive."""
    first, second = two
    at = START + 90 * SECOND
    without = chat("gpt-4o", 1000, 200, "own")
    with_id = {**without, "gen_ai.response.id": "chatcmpl-1"}
    first.export(request_of([span(os.urandom(16), without, start=at)]))
    second.export(request_of([span(os.urandom(16), with_id, start=at + 1000)]))
    first.export(request_of([span(os.urandom(16), without, start=at + 2000)]))
    assert requests(first, "own") == 3


# --- the usage family is switched on by the first span of a source recording no response id ----------------------

def call_key_rows(db_url: str) -> tuple[int, bool]:
    """The rows in the ledger's identity keys, and whether the usage family's flag is among them."""
    from sqlalchemy import create_engine, text

    from costline.processor.model import USAGE_FAMILY_ON

    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            keys = [bytes(k) for (k,) in conn.execute(text("SELECT dedup_key FROM costline_call_keys"))]
    finally:
        engine.dispose()
    return len(keys), USAGE_FAMILY_ON in keys


def test_the_usage_family_is_written_only_once_a_source_without_response_ids_is_seen(two, db_url: str) -> None:
    """A ledger whose sources all record response ids writes no usage-family keys (a call with an id: its span key,
    its response family's two claims and its mark). The first span without one sets the ledger's flag; from then on
    every processor sharing the ledger writes and looks the usage family up (the other one finds the flag with its
    batch's keys), and a stream described by OpenInference and the SDK bills once in either order. A call whose SDK
    span was billed before the flag was set and whose OpenInference span comes after bills twice (docs/sources.md,
    "Two spans, one call": the transition)."""
    first, second = two
    at = START + 100 * SECOND
    before = [stream_pair(at + i * SECOND, "before-flag") for i in range(3)]
    first.export(request_of([sdk for _, sdk in before], scope=SDK))
    assert requests(first, "before-flag") == 3
    assert call_key_rows(db_url) == (3 * 4, False)

    oi, _ = before[0]  # the transition: its SDK span wrote no usage claim
    first.export(request_of([oi], scope=OI))
    assert call_key_rows(db_url)[1]
    assert requests(first, "before-flag") == 4

    oi, sdk = stream_pair(at + 10 * SECOND, "flag-set")
    first.export(request_of([oi], scope=OI))
    second.export(request_of([sdk], scope=SDK))  # its writer has not seen the flag yet: found with its keys
    assert requests(first, "flag-set") == 1

    for i, (p, q) in enumerate(((first, second), (second, first))):
        oi, sdk = stream_pair(at + (20 + 10 * i) * SECOND, f"sdk-first-{i}")
        p.export(request_of([sdk], scope=SDK))
        q.export(request_of([oi], scope=OI))
        q.export(request_of([oi], scope=OI))  # a retry
        assert requests(first, f"sdk-first-{i}") == 1


def test_only_a_source_that_records_no_response_id_turns_the_usage_family_on(tmp_path):
    """Costline's own embeddings spans have no response id either: they are not paired by usage and leave the
    ledger's usage family off (its lookups and writes cost every call); an OpenInference span turns it on."""
    from datetime import datetime, timezone

    from sqlalchemy import select

    from costline.processor.config.core import parse_config
    from costline.processor.ledger import Ledger
    from costline.processor.ledger.schema import call_keys
    from costline.processor.model import USAGE_FAMILY_ON
    from costline.processor.service import assemble_pipeline
    from tests.processor.conftest import make_call

    ledger = Ledger(f"sqlite:///{tmp_path / 'l.db'}")
    pipeline = assemble_pipeline(parse_config({}), ledger, clock=lambda: datetime.now(timezone.utc))

    def flag() -> bool:
        with ledger.engine.connect() as conn:
            return conn.execute(select(call_keys.c.dedup_key).where(call_keys.c.dedup_key == USAGE_FAMILY_ON)).first() \
                is not None

    embeddings = make_call(1, model="text-embedding-3-small")
    embeddings.source = "costline"
    pipeline.ingest_calls([embeddings])
    assert not flag()
    oi = make_call(2, model="gpt-4o-mini")
    oi.source, oi.pairs_by_usage = "openinference", True
    pipeline.ingest_calls([oi])
    assert flag()
    pipeline.close()
