"""Business outcomes (`costline.outcome(name)` in the app): read from their spans, counted in the ledger's database.

An outcome span carries `costline.outcome.name`, `costline.outcome.count` and owner keys (span first, then the
resource, as for LLM calls; the owner is resolved through the same hierarchy). Outcomes are counted per hour × owner
× name in `costline_outcomes_hourly`, each span once: its trace and span id are remembered in
`costline_counted_outcomes` in the same transaction, so an exporter's retry counts nothing twice. The rows sit beside
the ledger's own tables (same database, same engine) but in a schema of their own, written and read only here.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from opentelemetry.proto.trace.v1.trace_pb2 import Span
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

from costline import attributes as A
from costline.processor.ledger import LedgerUnavailable
from costline.processor.ledger.engine import create_tables, dialect_insert
from costline.processor.ledger.schema import OWNER_COLUMNS
from costline.processor.model import MAX_LABEL_LENGTH
from costline.processor.normalize.values import as_plain
from costline.processor.ownership import Owner
from costline.processor.units import S_PER_HOUR, floor_hour_s, hour_start_s

metadata = MetaData()
OUTCOME_DIMENSIONS = ("hour", *OWNER_COLUMNS, "name")

outcomes_hourly = Table(
    "costline_outcomes_hourly",
    metadata,
    Column("hour", BigInteger, nullable=False),  # unix seconds of the UTC hour's start
    *(Column(name, String(MAX_LABEL_LENGTH), nullable=False, default="") for name in (*OWNER_COLUMNS, "name")),
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

OUTCOME_GROUP_BY = (*OWNER_COLUMNS, "name")


@dataclass(slots=True)
class Outcome:
    name: str
    count: int
    owner: dict[str, str] = field(default_factory=dict)
    environment: str | None = None
    start_time_unix_nano: int = 0
    key: str = ""
    """Trace id and span id, hex: the span's identity for deduplication."""


def read_outcome(span: Span, resource: Any) -> Outcome | None:
    """The outcome a span reports, or None when it is not an outcome span (or its name or count is unusable)."""
    if not span.name.startswith(A.OUTCOME_SPAN_PREFIX):
        return None
    values = {kv.key: as_plain(kv.value) for kv in span.attributes}
    name, count = values.get(A.COSTLINE_OUTCOME_NAME), values.get(A.COSTLINE_OUTCOME_COUNT)
    if not isinstance(name, str) or not name or len(name) > MAX_LABEL_LENGTH or not name.isprintable():
        return None
    if type(count) is not int or not 1 <= count <= A.MAX_OUTCOME_COUNT:
        return None
    span_owner = {k: v for k in A.OWNER_KEYS if isinstance(v := values.get(k), str) and v}
    owner = {**getattr(resource, "owner", {}), **span_owner}
    key = (span.trace_id + span.span_id).hex() if span.trace_id and span.span_id else ""
    return Outcome(name, count, owner, getattr(resource, "environment", None), span.start_time_unix_nano, key)


class OutcomeStore:
    """Writes and reads outcome counts in the ledger's database."""

    def __init__(self, engine: Any, transaction: Callable[[], AbstractContextManager[Any]] | None = None) -> None:
        self.engine = engine
        self._transaction = transaction
        """The ledger writer's bounded transaction (its write lock, the ledger timeout, the deadline on the wire),
        so that counting outcomes, which an export does before billing its calls, cannot hang on a stalled server
        either. None (readers, tests): a plain transaction under a lock of its own."""
        try:
            create_tables(metadata, engine)
        except SQLAlchemyError as err:
            raise LedgerUnavailable(f"cannot create the outcome tables: {err}") from err
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

    def record(self, outcomes: Sequence[tuple[Outcome, Owner]], *, retention_hours: int = 72,
               now: int | None = None) -> list[tuple[Outcome, Owner]]:
        """Count the outcomes not counted before, in one transaction; returns those."""
        if not outcomes:
            return []
        now = int(time.time()) if now is None else now
        insert = dialect_insert(self.engine)
        keys = sorted({o.key for o, _ in outcomes if o.key})
        try:
            with self._begin() as conn:
                seen: set[str] = set()
                for i in range(0, len(keys), 5000):
                    chunk = keys[i : i + 5000]
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
                    start = outcome.start_time_unix_nano or time.time_ns()
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
                if time.monotonic() - self._last_retention > 600:
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
        query = (select(*columns, cast(func.sum(outcomes_hourly.c["count"]), BigInteger))
                 .where(outcomes_hourly.c.hour >= floor_hour_s(begin))
                 .where(outcomes_hourly.c.hour < int(end.timestamp())))
        if columns:
            query = query.group_by(*columns).order_by(*columns)
        try:
            with self.engine.connect() as conn:
                return [{**dict(zip(group_by, row[:-1], strict=True)), "count": int(row[-1] or 0)}
                        for row in conn.execute(query) if row[-1] is not None]
        except SQLAlchemyError as err:
            raise LedgerUnavailable(f"ledger read failed: {err}") from err


class OutcomeCounter:
    """`costline_outcomes_total{org, team, feature, name}` since start, for Prometheus: rate() of it against the cost
    counters gives cost per outcome. Label sets beyond `limit` are counted under `__overflow__`."""

    LABELS = ("org", "team", "feature", "name")

    def __init__(self, limit: int = 1000) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, ...]] = Counter()
        self.limit = limit

    def add(self, counted: Iterable[tuple[Outcome, Owner]]) -> None:
        with self._lock:
            for outcome, owner in counted:
                labels = (owner.org, owner.team, owner.feature, outcome.name)
                if labels not in self._counts and len(self._counts) >= self.limit:
                    labels = ("__overflow__",) * len(self.LABELS)
                self._counts[labels] += outcome.count

    def snapshot(self) -> Mapping[tuple[str, ...], int]:
        with self._lock:
            return dict(self._counts)

    def collect(self) -> Iterable[Any]:
        from prometheus_client.core import CounterMetricFamily

        family = CounterMetricFamily("costline_outcomes", "Business outcomes reported by costline.outcome(), by "
                                     "owner, feature and outcome name", labels=self.LABELS)
        for labels, count in sorted(self.snapshot().items()):
            family.add_metric(labels, count)
        yield family
