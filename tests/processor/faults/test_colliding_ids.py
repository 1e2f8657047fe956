"""Distinct calls that reuse a response id (OpenAI-compatible servers: Ollama's `chatcmpl-<0..999>`, test doubles'
constants) are each billed; the same call described twice, and a retried batch, are still billed once — within a
batch, across batches, and across two processors sharing one PostgreSQL ledger.
"""

from __future__ import annotations

import os

import pytest

from costline.processor.ledger import Ledger
from costline.processor.model import Entry, Owner, call_keys
from tests.processor.clock import now_s
from tests.processor.conftest import POSTGRES_ADMIN, make_call
from tests.processor.otlp import RECENT_NS, llm_span, request_of

from .ingesting import Ingest

START = RECENT_NS - 3_600_000_000_000  # two hours ago at most: within the span window
SECOND = 1_000_000_000
TRACE = os.urandom(16)


def agent_step(i: int, *, response_id: str = "chatcmpl-constant", scope_span_id: bytes | None = None):
    """Call `i` of one agent trace: sequential, 3 s apart, identical usage (a loop over one prompt)."""
    span = llm_span(team="engineering", trace_id=TRACE, span_id=scope_span_id, start_ns=START + i * 3 * SECOND)
    for kv in span.attributes:
        if kv.key == "gen_ai.response.id":
            kv.value.string_value = response_id
    return span


def requests(ingest: Ingest) -> int:
    return sum(r["requests"] for r in ingest.usage() if r["team"] == "engineering")


def test_five_calls_with_one_response_id_in_one_batch(ingest: Ingest) -> None:
    batch = request_of([agent_step(i) for i in range(5)])
    ingest.export(batch)
    assert requests(ingest) == 5
    ingest.export(batch)  # the exporter's retry
    assert requests(ingest) == 5
    labels = dict(provider="openai", model="gpt-4o", operation="chat", org="acme", team="engineering")
    assert ingest.sample("costline_requests_total", outcome="success", **labels) == 5


def test_five_calls_with_one_response_id_in_five_batches(ingest: Ingest) -> None:
    steps = [agent_step(i) for i in range(5)]
    for step in steps:
        ingest.export(request_of([step]))
    assert requests(ingest) == 5
    for step in steps:  # each batch retried
        ingest.export(request_of([step]))
    assert requests(ingest) == 5


def peer_of(span, scope_span_id: bytes):
    """The same call as a second instrumentation describes it: another span id, started 2 ms later."""
    peer = type(span).FromString(span.SerializeToString())
    peer.span_id = scope_span_id
    peer.start_time_unix_nano += 2_000_000
    peer.end_time_unix_nano -= 1_000_000
    return peer


def two_scopes(ours, theirs):
    """One request, two instrumentations: Costline's span and OpenLLMetry's (another scope, another source)."""
    request = request_of([ours])
    request.resource_spans.extend(request_of([theirs], scope="opentelemetry.instrumentation.openai.v1").resource_spans)
    return request


def test_the_same_call_described_twice_is_billed_once(ingest: Ingest) -> None:
    ours = agent_step(0, response_id="chatcmpl-42")
    theirs = peer_of(ours, os.urandom(8))
    ingest.export(two_scopes(ours, theirs))  # one batch, two instrumentations
    later = agent_step(1, response_id="chatcmpl-7")
    ingest.export(request_of([later]))
    ingest.export(request_of([peer_of(later, os.urandom(8))], scope="opentelemetry.instrumentation.openai.v2"))
    assert requests(ingest) == 2


def test_a_batch_retried_through_another_processor_sharing_the_ledger(tmp_path) -> None:
    """Two processors on one PostgreSQL database: a batch committed by one and retried through the other (its
    answer was lost) is billed once, and its calls that share a response id twice over stay two."""
    import uuid

    from sqlalchemy import create_engine, text

    name = f"costline_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    first, second = Ledger(url), Ledger(url)
    try:
        owner = Owner("acme", "search", "", "", "", "", "", "")
        calls = [make_call(i, response_id="chatcmpl-constant", start=START + i * 5 * SECOND) for i in range(3)]
        batch = [Entry(c, owner, 100, call_keys(c)) for c in calls]
        assert len(first.record(batch, now=now_s())) == 3
        assert second.record(batch, now=now_s()) == []
        assert first.record(batch, now=now_s()) == []
    finally:
        first.close()
        second.close()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.mark.parametrize("gap_s", [3, 60])
def test_ledger_bills_later_calls_reusing_a_response_id(db_url: str, gap_s: int) -> None:
    ledger = Ledger(db_url)
    owner = Owner("acme", "search", "", "", "", "", "", "")
    try:
        for i in range(4):
            call = make_call(i, response_id="chatcmpl-constant", start=START + i * gap_s * SECOND)
            assert len(ledger.record([Entry(call, owner, 100, call_keys(call))], now=now_s())) == 1
    finally:
        ledger.close()


def test_a_call_is_remembered_under_two_keys_and_met_from_the_windows_beside_it(db_url: str) -> None:
    """Two identity rows per response claim (its start's window and the next: what two processors billing copies of
    it at once both write, so that the database sees them collide), beside its span key and marks; its copies from
    other sources that start less than a second away (either side, across a window boundary) find it, later calls
    do not."""
    from sqlalchemy import func, select

    from costline.processor.ledger.schema import call_keys as keys_table

    ledger = Ledger(db_url)
    owner = Owner("acme", "search", "", "", "", "", "", "")
    try:
        first = make_call(1, response_id="chatcmpl-1", start=START + SECOND // 2)
        assert len(ledger.record([Entry(first, owner, 100, call_keys(first))], now=now_s())) == 1
        with ledger.engine.connect() as conn:
            written = {k for (k,) in conn.execute(select(keys_table.c.dedup_key))}
        assert {k for k in call_keys(first)[:2]} <= written  # the claim under both windows
        for n, offset in ((2, -9 * SECOND // 10), (3, 9 * SECOND // 10)):  # the window before, the window after
            copy = make_call(n, response_id="chatcmpl-1", start=first.start_time_unix_nano + offset)
            copy.source = "openllmetry" if n == 2 else "openinference"  # another instrumentation's span of it
            assert ledger.record([Entry(copy, owner, 100, call_keys(copy))], now=now_s()) == []
        later = make_call(4, response_id="chatcmpl-1", start=first.start_time_unix_nano + 2 * SECOND)
        later.source = "openllmetry"
        assert len(ledger.record([Entry(later, owner, 100, call_keys(later))], now=now_s())) == 1
    finally:
        ledger.close()


def test_calls_remembered_under_two_keys_by_an_earlier_release_are_still_met(db_url: str) -> None:
    """Ledgers written before one key per call hold each response under its start's window and the next (as text
    keys, before 16-byte keys): a retry, and a copy starting in the window before, find them."""
    import time

    from sqlalchemy import MetaData, create_engine, insert

    from costline.processor.model import text_call_keys
    from tests.processor.ledger.test_ledger import text_keys_table

    old = MetaData()
    table = text_keys_table(old)
    engine = create_engine(db_url)
    old.create_all(engine)
    first = make_call(1, response_id="chatcmpl-9", start=START + SECOND // 2)
    prefix, window = text_call_keys(first)[0].rsplit(":", 1)
    with engine.begin() as conn:
        conn.execute(insert(table), [{"dedup_key": f"{prefix}:{int(window) + w}", "billed_at": int(time.time())}
                                     for w in (0, 1)])
    engine.dispose()
    ledger = Ledger(db_url)
    owner = Owner("acme", "search", "", "", "", "", "", "")
    try:
        copy = make_call(2, response_id="chatcmpl-9", start=START - SECOND // 2)
        for call in (first, copy):
            assert ledger.record([Entry(call, owner, 100, call_keys(call))], now=now_s()) == []
    finally:
        ledger.close()


def test_two_spans_of_one_call_billed_at_once_through_two_processors(db_url: str) -> None:
    """Two instrumentations' spans of each call (one trace, response id and usage; starts straddling a second) sent
    at the same moment to two processors sharing the ledger: each call is billed once. Another connection holds the
    ledger's rows table until both processors have looked their keys up and found nothing, so that both
    transactions are in flight together: only the database's unique index on the keys can settle it."""
    import sqlite3
    import threading
    import time

    import psycopg
    from sqlalchemy import make_url

    calls = 200
    first, second = Ledger(db_url, timeout_s=30), Ledger(db_url, timeout_s=30)
    owner = Owner("acme", "search", "", "", "", "", "", "")
    ours, theirs = [], []
    for i in range(calls):
        boundary = START + (10 + 3 * i) * SECOND  # its spans start 0.1 ms before and after a second begins
        for batch, offset in ((ours, -100_000), (theirs, 100_000)):
            call = make_call(len(batch) * 2 + (batch is theirs), response_id=f"chatcmpl-{i}", start=boundary + offset)
            call.source = "openllmetry" if batch is theirs else "costline"  # two instrumentations, one call
            batch.append(Entry(call, owner, 100, call_keys(call)))
    billed: dict[str, int] = {}

    def bill(name: str, ledger: Ledger, batch: list[Entry]) -> None:
        billed[name] = len(ledger.record(batch, now=now_s()))

    threads = [threading.Thread(target=bill, args=("first", first, ours)),
               threading.Thread(target=bill, args=("second", second, theirs))]
    try:
        if db_url.startswith("sqlite"):
            holder = sqlite3.connect(make_url(db_url).database, isolation_level=None)
            holder.execute("BEGIN IMMEDIATE")  # the write lock: both look up, then wait to write
            for thread in threads:
                thread.start()
            time.sleep(1.0)  # each lookup takes milliseconds
            holder.execute("ROLLBACK")
            holder.close()
        else:
            dsn = make_url(db_url).set(drivername="postgresql").render_as_string(hide_password=False)
            with psycopg.connect(dsn) as holder:
                holder.execute("LOCK TABLE costline_usage_hourly IN EXCLUSIVE MODE")  # reads go on, writes wait
                for thread in threads:
                    thread.start()
                with psycopg.connect(dsn, autocommit=True) as watcher:
                    for _ in range(300):  # until both writers wait for a lock (this one's, or each other's)
                        waiting = watcher.execute(
                            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                            "AND wait_event_type = 'Lock'").fetchone()[0]
                        if waiting >= 2:
                            break
                        time.sleep(0.05)
                    assert waiting >= 2, "the two writers never met"
                holder.rollback()
        for thread in threads:
            thread.join(60)
        assert sum(billed.values()) == calls, billed
        [row] = first.usage(datetime_of(START), datetime_of(START + 10**6 * SECOND), ["team"])
        assert row["requests"] == calls
        # Each call billed, and no key of a call the other processor billed left behind: its neighbours are free.
        later = [make_call(9000 + i, response_id=f"chatcmpl-{i}", start=START + (12 + 3 * i) * SECOND + 200_000)
                 for i in range(calls)]
        assert len(second.record([Entry(c, owner, 100, call_keys(c)) for c in later], now=now_s())) == calls
    finally:
        first.close()
        second.close()


def datetime_of(unix_ns: int):
    from datetime import datetime, timezone

    return datetime.fromtimestamp(unix_ns // SECOND, tz=timezone.utc)
