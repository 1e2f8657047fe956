"""Ledger tables, derived from the model: owner columns from `model.OWNER_DIMENSIONS`, counters from `model.Counts`.

Costs are integer pico-dollars (`units`): exact on SQLite, whose NUMERIC is a float.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, MetaData, String, Table, UniqueConstraint

from costline.processor.model import (
    CALL_DIMENSIONS,
    COUNT_COLUMNS,
    GROUP_BY,
    MAX_LABEL_LENGTH,
    OWNER_FIELDS,
    TIME_GROUPS,
)

metadata = MetaData()

OWNER_COLUMNS = OWNER_FIELDS
CALL_COLUMNS = CALL_DIMENSIONS
DIMENSIONS = ("hour", *OWNER_COLUMNS, *CALL_COLUMNS)
"""The identity of a ledger row (its unique constraint): one hour × owner × model × operation × service."""
COUNTERS = COUNT_COLUMNS
"""Summed columns, one per `model.Counts` slot. `input_tokens` are uncached input; `unpriced_*` are the tokens of
calls not yet priced (a subset of the totals), kept so that a reprice can bill them once a price exists.

A column added after a release must be in `ADDED_COUNTERS` or `ADDED_DIMENSIONS` too, so that ledgers made before it
get it (`engine.migrate`)."""
__all__ = ["GROUP_BY", "TIME_GROUPS"]  # re-exported: what `LedgerReader.usage` accepts

ADDED_COUNTERS = ("retries",)
"""Counters added after the first schema: added to an existing table (`ALTER TABLE ... ADD COLUMN`, default 0)."""
ADDED_DIMENSIONS = ("customer",)
"""Owner columns added after the first schema: added with default '' (what the rows already there had: no such
owner), and the unique constraint over `DIMENSIONS` is rebuilt to include them."""

UNIQUE_ROW = "uq_costline_usage_hourly_row"
HOUR_INDEX = "ix_costline_usage_hourly_hour"

usage_hourly = Table(
    "costline_usage_hourly",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("hour", BigInteger, nullable=False),  # unix seconds of the UTC hour's start (`units.hour_start_s`)
    *(Column(name, String(MAX_LABEL_LENGTH), nullable=False, default="", server_default="")
      for name in OWNER_COLUMNS + CALL_COLUMNS),
    *(Column(name, BigInteger, nullable=False, default=0, server_default="0") for name in COUNTERS),
    UniqueConstraint(*DIMENSIONS, name=UNIQUE_ROW),
)
Index(HOUR_INDEX, usage_hourly.c.hour)

billed_spans = Table(
    "costline_billed_spans",
    metadata,
    # The identity keys of every billed call (`model.call_keys`: its response within its trace, or its span, or its
    # content): a retried export, or a second span for the same API call, finds its key here and is not billed again.
    Column("dedup_key", String(200), primary_key=True),
    Column("billed_at", BigInteger, nullable=False),  # unix seconds, for retention
)
Index("ix_costline_billed_spans_billed_at", billed_spans.c.billed_at)
