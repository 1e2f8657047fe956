"""The ledger on SQLite and on a real PostgreSQL server: exact sums, dedup, reprice, persistence."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest

from costline.processor.config.core import PriceOverride
from costline.processor.ledger import Ledger, LedgerUnavailable
from costline.processor.model import Entry, Owner, call_keys
from costline.processor.pricing import Pricer
from costline.processor.reports.reprice import reprice
from costline.processor.units import usd_to_pico
from tests.processor.clock import now_s
from tests.processor.conftest import make_call

SEARCH = Owner("acme", "search", "ranking", "alice", "alice-laptop", "", "", "prod")
OTHER = Owner("acme", "support", "", "", "", "", "", "prod")
NOV1 = datetime(2026, 11, 1, tzinfo=timezone.utc)
DEC1 = datetime(2026, 12, 1, tzinfo=timezone.utc)


def text_keys_table(metadata):
    """The identity keys' table as releases before 16-byte keys made it: text keys (`model.text_call_keys`)."""
    from sqlalchemy import BigInteger, Column, String, Table

    from costline.processor.ledger.schema import TEXT_KEYS

    return Table(TEXT_KEYS, metadata, Column("dedup_key", String(200), primary_key=True),
                 Column("billed_at", BigInteger, nullable=False))


def entry(n, owner=SEARCH, cost=Decimal("0.001"), source=None, **kw):
    call = make_call(n, **kw)
    call.source = source or call.source
    return Entry(call, owner, None if cost is None else usd_to_pico(cost), call_keys(call))


def test_record_sums_exactly_and_dedups_a_retried_batch(db_url):
    ledger = Ledger(db_url)
    batch = [entry(i, cost=Decimal("0.000000123456")) for i in range(10)] + [entry(100, OTHER)]
    assert len(ledger.record(batch, now=now_s())) == 11
    assert ledger.record(batch, now=now_s()) == []  # the exporter's retry of the same request
    rows = ledger.usage(NOV1, DEC1, ["team"])
    by_team = {r["team"]: r for r in rows}
    assert by_team["search"]["requests"] == 10
    assert by_team["search"]["cost_usd"] == Decimal("0.00000123456")
    assert by_team["search"]["input_tokens"] == 10_000
    assert by_team["support"]["cost_usd"] == Decimal("0.001")
    ledger.close()


def test_same_response_id_in_a_trace_is_billed_once_per_call(db_url):
    """Another source's span of the same response, in another batch: the same API call. Another span of the same
    source is another call (issue 17: the old expectation, billed once, was the bug)."""
    ledger = Ledger(db_url)
    first = entry(1, response_id="chatcmpl-1")
    second = entry(2, response_id="chatcmpl-1", source="openllmetry")  # another instrumentation's span
    sibling = entry(3, response_id="chatcmpl-1")  # the same instrumentation: a second call the server gave one id
    other_trace = entry(4, response_id="chatcmpl-1", trace=b"\x02" * 16)
    assert len(ledger.record([first], now=now_s())) == 1
    assert ledger.record([second], now=now_s()) == []
    assert len(ledger.record([sibling], now=now_s())) == 1
    assert len(ledger.record([other_trace], now=now_s())) == 1
    assert ledger.record([first, second, sibling, other_trace], now=now_s()) == []  # the retries
    ledger.close()


def test_unpriced_rows_keep_tokens_and_are_repriced_later(db_url):
    ledger = Ledger(db_url)
    ledger.record([entry(1, cost=None, model="acme-llama-70b", input_tokens=4000, output=600)], now=now_s())
    row = ledger.usage(NOV1, DEC1, ["model"])[0]
    assert (row["unpriced_requests"], row["cost_usd"], row["unpriced_input_tokens"]) == (1, Decimal(0), 4000)
    pricer = Pricer([PriceOverride(provider="openai", model="acme-llama-70b", input_per_mtok=Decimal("1"),
                                   output_per_mtok=Decimal("2"))])
    changed = reprice(ledger, pricer, NOV1)
    assert changed == 1
    row = ledger.usage(NOV1, DEC1, ["model"])[0]
    assert row["unpriced_requests"] == 0
    assert row["cost_usd"] == Decimal("0.0052")  # 4000 * 1 + 600 * 2 per million
    assert row["input_tokens"] == 4000  # totals untouched
    ledger.close()


def test_survives_reopening(db_url):
    ledger = Ledger(db_url)
    ledger.record([entry(i) for i in range(3)], now=now_s())
    ledger.close()
    reopened = Ledger(db_url)
    assert reopened.usage(NOV1, DEC1, [])[0]["requests"] == 3
    assert reopened.record([entry(0)], now=now_s()) == []  # dedup keys survive too
    reopened.close()


def test_usage_groups_by_day_and_model_and_filters_time(db_url):
    ledger = Ledger(db_url)
    from tests.processor.conftest import at

    ledger.record([entry(1, start=at(2026, 11, 3)), entry(2, start=at(2026, 11, 4)), entry(3, start=at(2026, 10, 30))], now=now_s())
    rows = ledger.usage(NOV1, DEC1, ["day", "model"])
    assert sorted(r["day"] for r in rows) == ["2026-11-03", "2026-11-04"]
    ledger.close()


def test_values_too_long_or_with_nul_cannot_poison_a_batch(db_url):
    """PostgreSQL refuses NUL and VARCHAR overflow: such a batch would fail every retry if written as it came."""
    ledger = Ledger(db_url)
    poison = Owner("acme", "t" * 300 + "\x00", "", "", "", "", "", "")
    assert len(ledger.record([entry(1, poison), entry(2)], now=now_s())) == 2
    teams = {r["team"] for r in ledger.usage(NOV1, DEC1, ["team"])}
    assert teams == {"t" * 255, "search"}
    ledger.close()


def test_every_counter_column_lands_where_it_belongs(db_url):
    ledger = Ledger(db_url)
    call = make_call(1, input_tokens=11, output=22, cache_read=33, cache_write=44, error="rate_limit_error")
    call.reasoning_tokens = 5
    call.retries = 2
    call.cache_write_1h_tokens, call.input_audio_tokens, call.input_image_tokens, call.input_video_tokens = 4, 3, 2, 1
    call.output_audio_tokens, call.output_image_tokens, call.output_video_tokens = 6, 7, 8
    call.web_searches, call.code_executions = 9, 10
    call.reported_cost_usd = 7e-12  # agrees with the price
    call.end_time_unix_nano = call.start_time_unix_nano + 2_000_000_000
    unpriced = make_call(2, model="x", input_tokens=1, output=2, cache_read=3, cache_write=4)
    unpriced.retries = 1
    unpriced.cache_write_1h_tokens, unpriced.input_audio_tokens, unpriced.output_video_tokens = 2, 1, 1
    unpriced.web_searches = 3
    unpriced.reported_cost_usd = 0.5  # Costline cannot price it: a disagreement
    unpriced.end_time_unix_nano = unpriced.start_time_unix_nano + 345_000_000
    missing = make_call(3, input_tokens=0, output=0)
    missing.has_usage = False
    ledger.record([Entry(call, SEARCH, 7, call_keys(call)), Entry(unpriced, SEARCH, None, call_keys(unpriced)),
                   Entry(missing, SEARCH, 0, call_keys(missing))], now=now_s())
    [row] = ledger.usage(NOV1, DEC1, ["team"])
    assert {k: v for k, v in row.items() if k != "team"} == {
        "requests": 3, "errors": 1, "unpriced_requests": 1, "input_tokens": 12, "output_tokens": 24,
        "cache_read_tokens": 36, "cache_write_tokens": 48, "reasoning_tokens": 5, "unpriced_input_tokens": 1,
        "unpriced_output_tokens": 2, "unpriced_cache_read_tokens": 3, "unpriced_cache_write_tokens": 4,
        "cost_usd": Decimal("7E-12"), "retries": 3,
        "cache_write_1h_tokens": 6, "input_audio_tokens": 4, "input_image_tokens": 2, "input_video_tokens": 1,
        "output_audio_tokens": 6, "output_image_tokens": 7, "output_video_tokens": 9, "web_searches": 12,
        "code_executions": 10, "unpriced_cache_write_1h_tokens": 2, "unpriced_input_audio_tokens": 1,
        "unpriced_input_image_tokens": 0, "unpriced_input_video_tokens": 0, "unpriced_output_audio_tokens": 0,
        "unpriced_output_image_tokens": 0, "unpriced_output_video_tokens": 1, "unpriced_web_searches": 3,
        "unpriced_code_executions": 0, "usage_missing_requests": 1, "reported_cost_requests": 2,
        "reported_cost_usd": Decimal("0.500000000007"), "priced_cost_of_reported_usd": Decimal("7E-12"),
        "cost_disagreements": 1, "request_milliseconds": 2345,
    }
    ledger.close()


def test_reprice_of_a_tiered_model_does_not_push_summed_calls_over_the_cliff(db_url):
    ledger = Ledger(db_url)
    calls = [entry(i, cost=None, model="claude-sonnet-4-5", provider="anthropic", input_tokens=150_000, output=0)
             for i in range(2)]  # 300k input in the row, but each call is below the 200k cliff
    ledger.record(calls, now=now_s())
    pricer = Pricer([])
    assert reprice(ledger, pricer, NOV1) == 1
    row = ledger.usage(NOV1, DEC1, ["model"])[0]
    assert row["cost_usd"] == 2 * pricer.rates("anthropic", "claude-sonnet-4-5", calls[0].call.start_time_unix_nano
                                               ).cost(calls[0].call) == Decimal("0.9")  # 300k at $3/MTok
    ledger.close()


def test_usage_folds_hours_into_local_days_in_any_group_order(db_url):
    from zoneinfo import ZoneInfo

    from tests.processor.conftest import at

    ledger = Ledger(db_url)
    ledger.record([entry(1, start=at(2026, 11, 3, 14)), entry(2, start=at(2026, 11, 3, 16)),
                   entry(3, OTHER, start=at(2026, 11, 3, 16))], now=now_s())
    rows = ledger.usage(NOV1, DEC1, ["team", "day"], tz=ZoneInfo("Asia/Tokyo"))  # UTC+9: 16:00 is the 4th
    assert [(r["team"], r["day"], r["requests"]) for r in rows] == [
        ("search", "2026-11-03", 1), ("search", "2026-11-04", 1), ("support", "2026-11-04", 1)]
    ledger.close()


def test_a_ledger_made_before_the_retries_column_gets_it_and_keeps_its_rows(db_url):
    """The schema before `retries` (the first release's): the ledger adds the column on open, rows count 0."""
    from sqlalchemy import (
        BigInteger,
        Column,
        Integer,
        MetaData,
        String,
        Table,
        UniqueConstraint,
        create_engine,
        inspect,
    )

    from costline.processor.ledger.schema import (
        ADDED_COUNTERS,
        CALL_COLUMNS,
        COUNTERS,
        DIMENSIONS,
        OWNER_FIELDS,
        usage_hourly,
    )

    old = MetaData()
    Table(usage_hourly.name, old, Column("id", Integer, primary_key=True, autoincrement=True),
          Column("hour", BigInteger, nullable=False),
          *(Column(name, String(255), nullable=False, default="") for name in OWNER_FIELDS + CALL_COLUMNS),
          *(Column(name, BigInteger, nullable=False, default=0) for name in COUNTERS if name not in ADDED_COUNTERS),
          UniqueConstraint(*DIMENSIONS))
    text_keys_table(old)
    engine = create_engine(db_url)
    old.create_all(engine)
    assert "retries" not in {c["name"] for c in inspect(engine).get_columns(usage_hourly.name)}
    with engine.begin() as conn:
        conn.execute(old.tables[usage_hourly.name].insert().values(
            hour=int(NOV1.timestamp()) + 86400, org="acme", team="search", requests=4, cost_pico_usd=10**12))
    engine.dispose()

    ledger = Ledger(db_url)
    first = make_call(1)
    first.retries = 2
    first.end_time_unix_nano = first.start_time_unix_nano + 1_500_000_000
    assert len(ledger.record([Entry(first, SEARCH, 0, call_keys(first))], now=now_s())) == 1
    [row] = ledger.usage(NOV1, DEC1, ["team"])
    assert (row["requests"], row["retries"], row["request_milliseconds"], row["cost_usd"]) == (5, 2, 1500, Decimal(1))
    ledger.close()
    Ledger(db_url).close()  # opening an up-to-date ledger changes nothing


def test_an_unreachable_ledger_names_its_url_without_the_password():
    with pytest.raises(LedgerUnavailable) as caught:
        Ledger("postgresql+psycopg://costline:s3cret-pw@127.0.0.1:1/ledger?connect_timeout=2")
    message = str(caught.value)
    assert "s3cret-pw" not in message
    assert "postgresql+psycopg://costline:***@127.0.0.1:1/ledger" in message


@pytest.mark.parametrize("url", ["postgresql://postgres@127.0.0.1:5432/test", "postgres://postgres@127.0.0.1/test"])
def test_a_bare_postgresql_url_uses_the_psycopg_driver_the_extra_installs(url):
    from costline.processor.ledger.engine import open_engine

    engine = open_engine(url)  # lazy: no connection is made
    assert (engine.dialect.name, engine.dialect.driver) == ("postgresql", "psycopg")
    engine.dispose()


def test_owner_fields_are_the_ledger_owner_columns_in_order():
    # The ledger unpacks an `Owner` by position into its owner columns (`_aggregate`): a reordered or added field
    # would write values into the wrong columns without any other error.
    from costline.processor.ledger.schema import OWNER_FIELDS

    assert Owner._fields == OWNER_FIELDS


def test_a_ledger_without_the_customer_column_is_migrated_in_place_keeping_its_rows(db_url):
    from sqlalchemy import BigInteger, Column, Index, Integer, MetaData, String, Table, UniqueConstraint, create_engine

    from costline.processor.ledger.schema import (
        ADDED_DIMENSIONS,
        CALL_COLUMNS,
        COUNTERS,
        OWNER_FIELDS,
        usage_hourly,
    )

    # The schema as released before the customer dimension: unique over the dimensions it had.
    owners = [c for c in OWNER_FIELDS if c not in ADDED_DIMENSIONS]
    old = MetaData()
    table = Table(usage_hourly.name, old, Column("id", Integer, primary_key=True, autoincrement=True),
                  Column("hour", BigInteger, nullable=False),
                  *(Column(name, String(255), nullable=False, default="") for name in owners + list(CALL_COLUMNS)),
                  *(Column(name, BigInteger, nullable=False, default=0) for name in COUNTERS),
                  UniqueConstraint("hour", *owners, *CALL_COLUMNS, name="uq_costline_usage_hourly_row"))
    Index("ix_costline_usage_hourly_hour", table.c.hour)
    text_keys_table(old)
    engine = create_engine(db_url)
    old.create_all(engine)
    call = make_call(1)
    row = {"hour": call.start_time_unix_nano // 10**9 // 3600 * 3600, "org": "acme", "team": "search",
           "project": "ranking", "user": "alice", "key": "alice-laptop", "environment": "prod", "provider": "openai",
           "model": call.model, "operation": "chat", "requests": 4, "cost_pico_usd": 10**12}
    with engine.begin() as conn:
        conn.execute(table.insert().values(**row))
        conn.execute(table.insert().values(**{**row, "team": "support", "requests": 1}))
    engine.dispose()

    ledger = Ledger(db_url)
    tenant = make_call(2, customer="initech")
    ledger.record([Entry(call, SEARCH, 0, call_keys(call)),  # the same row as the old one: it adds to it
                   Entry(tenant, SEARCH._replace(customer="initech"), 7, call_keys(tenant))], now=now_s())  # a row of its own
    rows = {(r["team"], r["customer"]): (r["requests"], r["cost_usd"])
            for r in ledger.usage(NOV1, DEC1, ["team", "customer"])}
    assert rows == {("search", ""): (5, Decimal(1)), ("support", ""): (1, Decimal(1)),
                    ("search", "initech"): (1, Decimal("0.000000000007"))}
    assert ledger.record([Entry(tenant, SEARCH._replace(customer="initech"), 7, call_keys(tenant))], now=now_s()) == []
    ledger.close()
    Ledger(db_url).close()  # opening an up-to-date ledger changes nothing
    assert len(Ledger(db_url).usage(NOV1, DEC1, ["team", "customer"])) == 3


def test_customer_is_an_owner_dimension_from_span_to_usage(db_url):
    from costline.processor.config.core import CostlineConfig
    from costline.processor.ownership import Hierarchy

    call = make_call(1, customer="initech")
    owner, _ = Hierarchy(CostlineConfig()).resolve(call.owner, None, None)
    assert owner.customer == "initech"
    ledger = Ledger(db_url)
    ledger.record([Entry(call, owner, 5, call_keys(call))], now=now_s())
    assert [(r["customer"], r["cost_usd"]) for r in ledger.usage(NOV1, DEC1, ["customer"])] == [
        ("initech", Decimal("0.000000000005"))]
    ledger.close()


def test_a_reprice_leaves_a_row_alone_if_calls_were_billed_into_it_after_it_was_read(db_url):
    # Read, price, write back are three steps: an unpriced call billed into the row in between must stay unpriced
    # (and be priced by the next reprice), not be marked priced without its cost.
    ledger = Ledger(db_url)
    ledger.record([entry(1, cost=None, model="acme-llama-70b")], now=now_s())
    [read] = ledger.reader.unpriced_rows(NOV1)
    ledger.record([entry(2, cost=None, model="acme-llama-70b")], now=now_s())
    unpriced = {c: read[c] for c in ("unpriced_requests", "unpriced_input_tokens", "unpriced_output_tokens",
                                     "unpriced_cache_read_tokens", "unpriced_cache_write_tokens")}
    assert ledger.writer.price_rows([(read["id"], unpriced, 123)]) == 0
    pricer = Pricer([PriceOverride(provider="openai", model="acme-llama-70b", input_per_mtok=Decimal("1"),
                                   output_per_mtok=Decimal("2"))])
    assert reprice(ledger, pricer, NOV1) == 1
    [row] = ledger.usage(NOV1, DEC1, ["model"])
    assert (row["unpriced_requests"], row["cost_usd"]) == (0, Decimal("0.002400000000"))  # 2 × (1000 × 1 + 100 × 2)
    ledger.close()


def test_identity_keys_are_16_bytes_starting_with_the_start_second():
    from costline.processor.model import KEY_BYTES

    keys = call_keys(make_call(1, response_id="chatcmpl-1", start=at_second(100) + 10**9 // 2))
    second = int(NOV1.timestamp()) + 100
    assert {len(k) for k in keys} == {KEY_BYTES}
    # The response's claim under its own second and the one after (one digest: keys written together sort
    # together), then its span key.
    assert [int.from_bytes(k[:4], "big") for k in keys] == [second, second + 1, second]
    assert len({k[4:] for k in keys[:2]}) == 1
    span = call_keys(make_call(3, start=at_second(100)))
    assert [len(k) for k in span] == [KEY_BYTES] and span[0][:4] == keys[0][:4]
    no_ids = make_call(4, trace=b"")
    no_ids.span_id = b""
    assert [len(k) for k in call_keys(no_ids)] == [KEY_BYTES]  # its content's
    no_ids.start_time_unix_nano = 0
    assert call_keys(no_ids) == ()


def at_second(s):
    return int(NOV1.timestamp() + s) * 10**9


def test_a_retry_straddling_the_upgrade_to_16_byte_keys_is_billed_once(db_url):
    """A ledger of the release before 16-byte keys holds text keys (`model.text_call_keys`; a response under its
    start's window only): a call billed there and retried after the upgrade is met, until the newest text key is
    older than the retention; then the table of text keys is dropped."""
    from sqlalchemy import MetaData, create_engine, inspect

    from costline.processor.ledger.schema import TEXT_KEYS
    from costline.processor.model import text_call_keys

    response = make_call(1, response_id="chatcmpl-1", start=at_second(10))
    span = make_call(2)
    content = make_call(3, trace=b"")
    content.span_id = b""
    copy = make_call(4, response_id="chatcmpl-1", start=at_second(10) - 10**9 // 2)  # another span, the window before
    billed_at = 1_800_000_000
    old = MetaData()
    table = text_keys_table(old)
    engine = create_engine(db_url)
    old.create_all(engine)
    with engine.begin() as conn:
        conn.execute(table.insert(), [{"dedup_key": text_call_keys(c)[0], "billed_at": billed_at}
                                      for c in (response, span, content)])
    engine.dispose()

    ledger = Ledger(db_url)
    hours = 72
    for call in (response, span, content, copy):
        assert ledger.record([Entry(call, SEARCH, 1, call_keys(call))], retention_hours=hours, now=billed_at + 60) == []
    assert len(ledger.record([entry(5)], retention_hours=hours, now=billed_at + 60)) == 1

    # A processor of the earlier release sharing the ledger wrote a text key since: the table stays while it may be
    # retried.
    later = make_call(6)
    with ledger.engine.begin() as conn:
        conn.execute(table.insert().values(dedup_key=text_call_keys(later)[0], billed_at=billed_at + 3600))
    past_first = billed_at + hours * 3600 + 1
    assert ledger.record([Entry(later, SEARCH, 1, call_keys(later))], retention_hours=hours, now=past_first) == []
    assert inspect(ledger.engine).has_table(TEXT_KEYS)

    past_all = billed_at + 3600 + hours * 3600 + 1
    assert len(ledger.record([entry(7)], retention_hours=hours, now=past_all)) == 1
    assert not inspect(ledger.engine).has_table(TEXT_KEYS)
    # Past the retention a retry is billed again, as it always was; nothing looks for text keys any more.
    assert len(ledger.record([Entry(span, SEARCH, 1, call_keys(span))], retention_hours=hours, now=past_all)) == 1
    ledger.close()
    reopened = Ledger(db_url)
    assert len(reopened.record([entry(8)], retention_hours=hours, now=past_all)) == 1
    reopened.close()


def test_the_sqlite_write_ahead_log_stays_bounded_while_readers_follow_every_commit(tmp_path):
    """A reader that reads after each commit and is still reading when the next one lands (as the budgets' thread,
    woken by every commit, does) kept SQLite's automatic checkpoint from ever emptying the log, and the file only
    grew (2.3 GB after a million spans). Past its limit (lowered here) the writer checkpoints and truncates it after
    a commit, waiting the milliseconds the reader takes."""
    import sqlite3
    import threading
    import time
    from pathlib import Path

    path = tmp_path / "ledger.db"
    ledger = Ledger(f"sqlite:///{path}")
    ledger.writer.wal_limit_bytes = 256 * 1024
    wal = Path(f"{path}-wal")
    committed, stop = threading.Event(), threading.Event()

    def read() -> None:
        reader = sqlite3.connect(path, isolation_level=None)
        while not stop.is_set():
            if not committed.wait(0.1):
                continue
            committed.clear()
            reader.execute("BEGIN")
            reader.execute("SELECT count(*), sum(cost_pico_usd) FROM costline_usage_hourly").fetchone()
            time.sleep(0.005)  # still reading while the next batch commits
            reader.execute("COMMIT")
        reader.close()

    thread = threading.Thread(target=read)
    thread.start()
    largest = 0
    try:
        for batch in range(150):
            entries = [entry(batch * 100 + i, team=f"team-{i % 20}", start=at_second(batch * 3600 + i))
                       for i in range(100)]
            assert len(ledger.record(entries, now=now_s())) == 100
            committed.set()
            largest = max(largest, wal.stat().st_size)
    finally:
        stop.set()
        thread.join()
    assert largest < 3 * 256 * 1024, largest  # the limit, plus a batch or two before a checkpoint gets through
    assert sum(r["requests"] for r in ledger.usage(NOV1, datetime(2027, 1, 1, tzinfo=timezone.utc), ["team"])) \
        == 15_000
    ledger.close()
