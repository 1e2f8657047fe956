"""Ledger tables, derived from the model: owner columns from `model.OWNER_DIMENSIONS`, counters from `model.Counts`.

Costs are integer pico-dollars (`units`): exact on SQLite, whose NUMERIC is a float.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    UniqueConstraint,
)

from costline.processor.model import (
    CALL_DIMENSIONS,
    COUNT_COLUMNS,
    GROUP_BY,
    KEY_BYTES,
    MAX_LABEL_LENGTH,
    OWNER_FIELDS,
    TIME_GROUPS,
)

metadata = MetaData()

CALL_COLUMNS = CALL_DIMENSIONS
DIMENSIONS = ("hour", *OWNER_FIELDS, *CALL_COLUMNS)
"""The identity of a ledger row (its unique constraint): one hour × owner × model × operation × service."""
COUNTERS = COUNT_COLUMNS
"""Summed columns, one per `model.Counts` slot. `input_tokens` are uncached input; `unpriced_*` are the tokens of
calls not yet priced (a subset of the totals), kept so that a reprice can bill them once a price exists.

A column added after a release must be in `ADDED_COUNTERS` or `ADDED_DIMENSIONS` too, so that ledgers made before it
get it (`engine.migrate`)."""
__all__ = ["GROUP_BY", "TIME_GROUPS"]  # re-exported: what `LedgerReader.usage` accepts

ADDED_COUNTERS = COUNTERS[COUNTERS.index("retries"):]
"""Counters added after the first schema: added to an existing table (`ALTER TABLE ... ADD COLUMN`, default 0)."""
ADDED_DIMENSIONS = ("customer", "service_tier", "processing")
"""Owner and call columns added after the first schema: added with default '' (what the rows already there had: no such
owner), and the unique constraint over `DIMENSIONS` is rebuilt to include them."""

UNIQUE_ROW = "uq_costline_usage_hourly_row"
HOUR_INDEX = "ix_costline_usage_hourly_hour"

usage_hourly = Table(
    "costline_usage_hourly",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("hour", BigInteger, nullable=False),  # unix seconds of the UTC hour's start (`units.hour_start_s`)
    *(Column(name, String(MAX_LABEL_LENGTH), nullable=False, default="", server_default="")
      for name in OWNER_FIELDS + CALL_COLUMNS),
    *(Column(name, BigInteger, nullable=False, default=0, server_default="0") for name in COUNTERS),
    UniqueConstraint(*DIMENSIONS, name=UNIQUE_ROW),
)
Index(HOUR_INDEX, usage_hourly.c.hour)

call_keys = Table(
    "costline_call_keys",
    metadata,
    # The identity keys of every billed call (`model.call_keys`: its start second, then a digest of its response
    # within its trace, or of its span, or of its content; 16 bytes): a retried export, or a second span for the same
    # API call, finds its key here and is not billed again. Short fixed-size keys in the primary key's B-tree itself
    # (SQLite `WITHOUT ROWID`: no second B-tree from a rowid to the key).
    Column("dedup_key", LargeBinary(KEY_BYTES), primary_key=True),
    Column("billed_at", BigInteger, nullable=False),  # unix seconds, for retention
    sqlite_with_rowid=False,
)
Index("ix_costline_call_keys_billed_at", call_keys.c.billed_at)

TEXT_KEYS = "costline_billed_spans"
"""The table of text identity keys (`model.text_call_keys`) that releases before `call_keys` wrote: not created any
more; an upgraded ledger keeps it, and looks keys up in it, until the newest of them is older than the retention
(`writer.LedgerWriter`), then drops it."""

cost_changes = Table(
    "costline_cost_changes",
    metadata,
    # The audit trail of re-rating (`costline reprice --all`): one row per ledger row whose cost a re-rate changed,
    # written in the transaction that changed it. A ledger row is not deleted, so `row_id` keeps pointing at it.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("row_id", Integer, nullable=False),  # costline_usage_hourly.id
    Column("hour", BigInteger, nullable=False),  # the row's hour, so the trail reads without a join
    Column("provider", String(MAX_LABEL_LENGTH), nullable=False),
    Column("model", String(MAX_LABEL_LENGTH), nullable=False),
    Column("old_cost_pico_usd", BigInteger, nullable=False),
    Column("new_cost_pico_usd", BigInteger, nullable=False),
    Column("changed_at", BigInteger, nullable=False),  # unix seconds
    Column("price_source", String(2 * MAX_LABEL_LENGTH), nullable=False),  # e.g. `override from 2026-11-15 gpt-4o`
)
Index("ix_costline_cost_changes_row_id", cost_changes.c.row_id)

RUN_OWNER = OWNER_FIELDS[:4]
"""The owner columns of a run's row — org, team, project, user, the owner schema's first four (so the writer takes
them from an `Owner` with one slice): a run whose calls belong to several owners has a row per owner, so a team (and
its token) sees exactly its part."""
if RUN_OWNER != ("org", "team", "project", "user"):  # pragma: no cover - the owner schema was reordered
    raise ImportError(f"costline_runs keys runs by org, team, project and user; the owner schema starts {RUN_OWNER}")
RUN_COUNTERS = ("requests", "errors", "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
                "reasoning_tokens", "cost_pico_usd", "unpriced_requests", "usage_missing_requests")
"""Summed per run: the `model.Counts` slots of the same names."""
RUN_KEY = ("kind", "run_id", *RUN_OWNER)
RUN_ROW = ("hour", *RUN_KEY)
"""A row of `costline_runs`: one hour of one run's calls of one owner."""

runs = Table(
    "costline_runs",
    metadata,
    # Cost per agent run (trace), conversation and session: one row per hour × run × owner, upserted in the
    # transaction that bills the run's calls (`ledger.runs`). The ids are never metric labels.
    #
    # The hour comes first in the key, and on SQLite the table is that key's B-tree (`WITHOUT ROWID`): a batch's new
    # rows land together at the recent end, a few pages to write, as the identity keys do; keyed by the run id first
    # (random for traces), each new run dirtied a page of its own once the table was large (docs/performance.md,
    # "Cost per run"). A period is a range of that key, and so is the retention's delete; one run is found by
    # seeking its id in each hour present (`runs.run_rows`). No secondary index: each one is another B-tree a new
    # run writes.
    Column("hour", BigInteger, nullable=False),  # unix seconds of the UTC hour its calls started in
    Column("kind", String(16), nullable=False),
    Column("run_id", String(MAX_LABEL_LENGTH), nullable=False),
    *(Column(name, String(MAX_LABEL_LENGTH), nullable=False, default="", server_default="") for name in RUN_OWNER),
    Column("first_seen", BigInteger, nullable=False),  # unix seconds: the earliest start of these calls
    Column("last_seen", BigInteger, nullable=False),  # unix seconds: the latest end of these calls
    *(Column(name, BigInteger, nullable=False, default=0, server_default="0") for name in RUN_COUNTERS),
    PrimaryKeyConstraint(*RUN_ROW, name="pk_costline_runs"),
    sqlite_with_rowid=False,
)
