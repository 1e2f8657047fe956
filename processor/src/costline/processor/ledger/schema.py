"""Ledger tables. Costs are integer pico-dollars (1e-12 USD): exact on SQLite, whose NUMERIC is a float."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, MetaData, String, Table, UniqueConstraint

from costline.processor.model import MAX_LABEL_LENGTH

metadata = MetaData()

OWNER_COLUMNS = ("org", "team", "project", "user", "key", "feature", "cost_center", "environment")
CALL_COLUMNS = ("provider", "model", "operation", "service")
DIMENSIONS = ("hour", *OWNER_COLUMNS, *CALL_COLUMNS)
"""The identity of a ledger row: one hour × owner × model × operation."""

COUNTERS = (
    "requests",
    "errors",
    "unpriced_requests",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "unpriced_input_tokens",
    "unpriced_output_tokens",
    "unpriced_cache_read_tokens",
    "unpriced_cache_write_tokens",
    "cost_pico_usd",
    "retries",
)
"""Summed columns. `input_tokens` are uncached input; `unpriced_*` are the tokens of calls not yet priced (a
subset of the totals), kept so that `reprice` can bill them once a price exists; `retries` the SDKs' retries.

A column added here after a release must be in `ADDED_COUNTERS` too, so that ledgers made before it get it."""

ADDED_COUNTERS = ("retries",)
"""Counters added after the first schema: `Ledger` adds them to an existing table (`ALTER TABLE ... ADD COLUMN`,
default 0) when it opens one that lacks them. `create_all` only creates missing tables, never missing columns."""

usage_hourly = Table(
    "costline_usage_hourly",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("hour", BigInteger, nullable=False),  # unix seconds of the UTC hour's start
    *(Column(name, String(MAX_LABEL_LENGTH), nullable=False, default="") for name in OWNER_COLUMNS + CALL_COLUMNS),
    *(Column(name, BigInteger, nullable=False, default=0) for name in COUNTERS),
    UniqueConstraint(*DIMENSIONS, name="uq_costline_usage_hourly_row"),
)
Index("ix_costline_usage_hourly_hour", usage_hourly.c.hour)

billed_spans = Table(
    "costline_billed_spans",
    metadata,
    # The identity keys of every billed call (`normalize.identity.call_keys`: its response within its trace, or its
    # span, or its content): a retried export, or a second span for the same API call, finds its key here and is
    # not billed again.
    Column("dedup_key", String(200), primary_key=True),
    Column("billed_at", BigInteger, nullable=False),  # unix seconds, for retention
)
Index("ix_costline_billed_spans_billed_at", billed_spans.c.billed_at)
