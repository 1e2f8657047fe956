"""Business outcomes counted in the ledger's database (read from their spans by `ingest.outcomes`).

Outcomes are counted per hour × owner × name in `costline_outcomes_hourly`, each span once: its trace and span id are
remembered in `costline_counted_outcomes` in the same transaction, so an exporter's retry counts nothing twice. The
write goes through the ledger writer's bounded transaction when the pipeline counts (`LedgerWriter.transaction`).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    cast,
    delete,
    func,
    select,
)
from sqlalchemy.exc import SQLAlchemyError

from costline.processor.ledger.engine import LedgerUnavailable, dialect_insert
from costline.processor.ledger.store import DEFAULT_RETENTION_HOURS, KEYS_PER_LOOKUP, RETENTION_CHECK_S, Store
from costline.processor.model import MAX_LABEL_LENGTH, OWNER_FIELDS, Outcome, Owner
from costline.processor.units import NS_PER_S, S_PER_HOUR, floor_hour_s, hour_start_s

metadata = MetaData()
OUTCOME_DIMENSIONS = ("hour", *OWNER_FIELDS, "name")

outcomes_hourly = Table(
    "costline_outcomes_hourly",
    metadata,
    Column("hour", BigInteger, nullable=False),  # unix seconds of the UTC hour's start
    *(Column(name, String(MAX_LABEL_LENGTH), nullable=False, default="") for name in (*OWNER_FIELDS, "name")),
    Column("count", BigInteger, nullable=False, default=0),
    UniqueConstraint(*OUTCOME_DIMENSIONS, name="uq_costline_outcomes_hourly_row"),
)
Index("ix_costline_outcomes_hourly_hour", outcomes_hourly.c.hour)

counted_outcomes = Table(
    "costline_counted_outcomes",
    metadata,
    Column("dedup_key", String(80), primary_key=True),  # trace id + span id of the outcome span, hex
    Column("counted_at", BigInteger, nullable=False),  # unix seconds, for retention
)

OUTCOME_GROUP_BY = (*OWNER_FIELDS, "name")


class OutcomeStore(Store):
    """Writes and reads outcome counts in the ledger's database."""

    metadata = metadata
    holds = "outcome"

    def __init__(self, engine: Any, transaction: Callable[[], AbstractContextManager[Any]] | None = None) -> None:
        super().__init__(engine)
        self._transaction = transaction
        """The ledger writer's bounded transaction (its write lock, the ledger timeout, the deadline on the wire),
        so that counting outcomes, which an export does before billing its calls, cannot hang on a stalled server
        either. None (readers, tests): a plain transaction under a lock of its own."""
        self._lock = threading.Lock()
        self._last_retention = 0.0

    @contextmanager
    def _begin(self) -> Iterator[Any]:
        if self._transaction is not None:
            with self._transaction() as conn:
                yield conn
        else:
            with self._lock, self.engine.begin() as conn:
                yield conn

    def record(self, outcomes: Sequence[tuple[Outcome, Owner]], *, retention_hours: int = DEFAULT_RETENTION_HOURS,
               now: int) -> list[tuple[Outcome, Owner]]:
        """Count the outcomes not counted before, in one transaction; returns those. `now` (unix seconds, the
        caller's clock) stamps their keys for retention and is the hour of an outcome without a start time."""
        if not outcomes:
            return []
        insert = dialect_insert(self.engine)
        keys = sorted({o.key for o, _ in outcomes if o.key})
        try:
            with self._begin() as conn:
                seen: set[str] = set()
                for i in range(0, len(keys), KEYS_PER_LOOKUP):
                    chunk = keys[i : i + KEYS_PER_LOOKUP]
                    seen.update(k for (k,) in conn.execute(
                        select(counted_outcomes.c.dedup_key).where(counted_outcomes.c.dedup_key.in_(chunk))))
                fresh = []
                for outcome, owner in outcomes:
                    if outcome.key and outcome.key in seen:
                        continue
                    seen.add(outcome.key)
                    fresh.append((outcome, owner))
                rows: Counter[tuple] = Counter()
                for outcome, owner in fresh:
                    start = outcome.start_time_unix_nano or now * NS_PER_S
                    rows[(hour_start_s(start), *owner, outcome.name[:MAX_LABEL_LENGTH])] += outcome.count
                for ident, count in sorted(rows.items()):
                    statement = insert(outcomes_hourly).values(
                        {**dict(zip(OUTCOME_DIMENSIONS, ident, strict=True)), "count": count})
                    conn.execute(statement.on_conflict_do_update(
                        index_elements=list(OUTCOME_DIMENSIONS),
                        set_={"count": outcomes_hourly.c["count"] + statement.excluded["count"]}))
                new_keys = [{"dedup_key": o.key, "counted_at": now} for o, _ in fresh if o.key]
                if new_keys:
                    conn.execute(counted_outcomes.insert(), new_keys)
                if time.monotonic() - self._last_retention > RETENTION_CHECK_S:
                    self._last_retention = time.monotonic()
                    conn.execute(delete(counted_outcomes).where(
                        counted_outcomes.c.counted_at < now - retention_hours * S_PER_HOUR))
        except SQLAlchemyError as err:
            raise LedgerUnavailable(f"outcome write failed: {type(err).__name__}: {err}") from err
        return fresh

    def outcomes(self, start: datetime, end: datetime, group_by: Sequence[str]) -> list[dict[str, Any]]:
        """Outcome counts between `start` (inclusive, hour granularity) and `end` (exclusive), summed per group:
        dicts of the group columns and `count`."""
        unknown = [g for g in group_by if g not in OUTCOME_GROUP_BY]
        if unknown:
            raise ValueError(f"group_by: unknown {', '.join(unknown)}; allowed: {', '.join(OUTCOME_GROUP_BY)}")
        columns = [outcomes_hourly.c[g] for g in group_by]
        begin = int(start.timestamp())
        query = (select(*columns, cast(func.sum(outcomes_hourly.c["count"]), BigInteger).label("count"))
                 .where(outcomes_hourly.c.hour >= floor_hour_s(begin))
                 .where(outcomes_hourly.c.hour < int(end.timestamp())))
        if columns:
            query = query.group_by(*columns).order_by(*columns)
        return [{**{g: row[g] for g in group_by}, "count": int(row["count"])}
                for row in self._read(query) if row["count"] is not None]
