"""The exact ledger: hourly rows per owner × model × operation, in SQLite (WAL) or PostgreSQL via SQLAlchemy.

Finance's numbers come from here, never from Prometheus. One ingest request is one transaction: already-billed
spans are dropped (an exporter's retry, or a second span for the same call), the rest is aggregated in memory and
upserted, and their dedup keys are written — then it commits, and only then does the receiver acknowledge.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import BigInteger, cast, create_engine, delete, desc, event, func, inspect, select, update
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import SQLAlchemyError

from costline.processor.ledger.schema import (
    ADDED_COUNTERS,
    CALL_COLUMNS,
    COUNTERS,
    DIMENSIONS,
    OWNER_COLUMNS,
    billed_spans,
    metadata,
    usage_hourly,
)
from costline.processor.model import LLMCall
from costline.processor.normalize.identity import call_keys
from costline.processor.ownership import Owner
from costline.processor.pricing.rates import Rates
from costline.processor.settings import DEFAULT_LEDGER_TIMEOUT_S

PICO = Decimal(10) ** 12
NS_PER_HOUR = 3_600_000_000_000
_KEYS_PER_LOOKUP = 5000
"""Bound parameters per dedup-key lookup: under SQLite's and PostgreSQL's limits, and a batch is usually one."""
GROUP_BY_COLUMNS = (*OWNER_COLUMNS, *CALL_COLUMNS, "hour", "day", "month")


class LedgerUnavailable(Exception):
    """The ledger could not commit: the receivers answer 503 / UNAVAILABLE so that exporters retry."""


@dataclass(slots=True)
class Entry:
    """One priced, attributed call on its way into the ledger."""

    call: LLMCall
    owner: Owner
    cost_pico: int | None
    """Pico-dollars (1e-12 USD); None when the model could not be priced (never $0)."""
    keys: tuple[str, ...]
    conflict: bool = False
    """The declared owner disagreed with the registered key's owner (the key won)."""

    @property
    def cost(self) -> Decimal | None:
        """USD, exact; None when unpriced."""
        return None if self.cost_pico is None else from_pico(self.cost_pico)


def dedup_keys(call: LLMCall) -> tuple[str, ...]:
    """The keys under which a billed call is remembered, written in the same transaction as its cost: the call's
    identity as `normalize.identity.call_keys` defines it (response within its trace for calls that agree on usage
    and start time, else the span, else its content). Possibly none, for a span without ids or times."""
    return call_keys(call)


def to_pico(cost: Decimal) -> int:
    return int((cost * PICO).to_integral_value(rounding=ROUND_HALF_EVEN))


def from_pico(pico: int) -> Decimal:
    return Decimal(pico) / PICO


def _quote(column: str) -> str:
    return f'"{column}"'  # `user` and `key` are reserved words in PostgreSQL


def _engine(url: str, timeout_s: float = DEFAULT_LEDGER_TIMEOUT_S) -> Engine:
    """The engine, with every wait on the database bounded by `timeout_s`.

    A locked table or a held write lock must not hold an exporter's request (and every request queued behind it)
    for as long as the lock lasts: past the bound the write fails, the receiver answers 503 + Retry-After, and the
    exporter retries later. On SQLite that is the busy timeout; on PostgreSQL `lock_timeout` (a statement waiting
    for a lock longer than that is cancelled), the connection timeout and the pool's checkout wait.
    """
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": timeout_s, "check_same_thread": False},
                               pool_timeout=timeout_s)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")  # readers (API, budgets) never block the writer
            cursor.execute("PRAGMA synchronous=FULL")  # an acknowledged batch survives a crash of the machine too
            cursor.close()

        return engine
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        # A bare postgresql:// means psycopg2 to SQLAlchemy 2.0; the `postgres` extra installs psycopg 3.
        parsed = parsed.set(drivername="postgresql+psycopg")
    connect_args: dict[str, Any] = {}
    if parsed.get_backend_name() == "postgresql":
        # Server settings as libpq connection options, so they hold from the session's first statement and survive
        # the pool's rollback on return; appended to `options` the URL may already carry (a search_path, say).
        # statement_timeout is left alone: a usage report over a large ledger may rightly run longer than an
        # ingest should wait, and what hangs ingest is waiting for a lock.
        setting = f"-c lock_timeout={max(1, round(timeout_s * 1000))}"
        options = parsed.query.get("options")
        connect_args["options"] = f"{options} {setting}" if options else setting
        if "connect_timeout" not in parsed.query:
            connect_args["connect_timeout"] = max(1, math.ceil(timeout_s))  # whole seconds in libpq
    return create_engine(parsed, pool_pre_ping=True, pool_size=5, max_overflow=5, pool_timeout=timeout_s,
                         connect_args=connect_args)


def _insert(engine: Engine):
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif engine.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:  # pragma: no cover - guarded in Ledger.__init__
        raise ValueError(engine.dialect.name)
    return insert


def redact_url(db_url: str) -> str:
    """The ledger URL without its password, for logs and error messages."""
    try:
        return make_url(db_url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable URL>"


class Ledger:
    """Thread-safe: one writer at a time (SQLite allows no more), readers in parallel."""

    def __init__(self, url: str, *, timeout_s: float = DEFAULT_LEDGER_TIMEOUT_S) -> None:
        """`timeout_s` bounds every wait on the database (locks, connecting): see `_engine`."""
        try:
            self.engine = _engine(url, timeout_s)
            if self.engine.dialect.name not in ("sqlite", "postgresql"):
                raise ValueError(f"unsupported database {self.engine.dialect.name!r}: use sqlite:/// or "
                                 "postgresql+psycopg://")
            metadata.create_all(self.engine)
            _add_missing_counters(self.engine)
        except SQLAlchemyError as err:
            raise LedgerUnavailable(f"cannot open the ledger at {redact_url(url)}: {err}") from err
        self._write_lock = threading.Lock()
        # The statements of every batch, as driver-level SQL: executemany on plain tuples skips SQLAlchemy's
        # per-row parameter processing, the largest cost of a write. The syntax is common to SQLite and PostgreSQL.
        mark = self._mark = "?" if self.engine.dialect.paramstyle == "qmark" else "%s"
        columns = (*DIMENSIONS, *COUNTERS)
        table = usage_hourly.name
        self._upsert_sql = (
            f"INSERT INTO {table} ({', '.join(_quote(c) for c in columns)}) "
            f"VALUES ({', '.join(mark for _ in columns)}) "
            f"ON CONFLICT ({', '.join(_quote(c) for c in DIMENSIONS)}) DO UPDATE SET "
            + ", ".join(f"{_quote(c)} = {table}.{_quote(c)} + excluded.{_quote(c)}" for c in COUNTERS)
        )
        self._billed_sql = f"INSERT INTO {billed_spans.name} (dedup_key, billed_at) VALUES ({mark}, {mark})"
        self._lookup_cache: dict[int, str] = {}
        self._last_retention = 0.0
        self.tz = ZoneInfo("UTC")
        """Time zone of `day`/`month` grouping (the pipeline sets the configured one)."""
        self.rates_for: Any = None
        """`(provider, model, hour_unix_seconds) -> Rates | None`, for `reprice` (the pipeline sets it)."""

    # --- writing ------------------------------------------------------------------------------------------------
    def record(self, entries: Sequence[Entry], *, retention_hours: int = 72, now: int | None = None) -> list[Entry]:
        """Write `entries` in one transaction; returns those that were new (billed neither before nor earlier in
        this batch). `now` (unix seconds) stamps the dedup keys for retention.

        Three statements per batch whatever its size (look up its keys, upsert its hourly rows, insert its keys),
        all as driver-level SQL: SQLAlchemy's per-statement compilation (an `IN` of a thousand bound parameters
        is expanded anew on every call) cost more than SQLite's work for them.
        """
        if not entries:
            return []
        now = int(time.time()) if now is None else now
        try:
            with self._write_lock, self.engine.begin() as conn:
                seen = self._billed_among(conn, {k for e in entries for k in e.keys})
                fresh = _first_sightings(entries, seen)
                if fresh:
                    # Rows and keys in sorted order: processors sharing one PostgreSQL ledger then take row locks
                    # in the same order, so two concurrent batches touching the same hours wait instead of
                    # deadlocking (a deadlock is safe — 503, the exporter retries — but wasted work).
                    conn.exec_driver_sql(self._upsert_sql, sorted(_aggregate(fresh)))
                    keys = sorted((k, now) for e in fresh for k in e.keys)
                    if keys:  # a batch of spans without any identity (see `dedup_keys`) has none to remember
                        conn.exec_driver_sql(self._billed_sql, keys)
                if time.monotonic() - self._last_retention > 600:
                    self._last_retention = time.monotonic()
                    conn.execute(delete(billed_spans).where(billed_spans.c.billed_at < now - retention_hours * 3600))
        except SQLAlchemyError as err:
            raise LedgerUnavailable(f"ledger write failed: {type(err).__name__}: {err}") from err
        return fresh

    def _billed_among(self, conn: Connection, keys: Collection[str]) -> set[str]:
        """Those of `keys` already in the ledger."""
        seen: set[str] = set()
        for chunk in _chunks(list(keys), _KEYS_PER_LOOKUP):
            seen.update(key for (key,) in conn.exec_driver_sql(self._lookup_sql(len(chunk)), tuple(chunk)))
        return seen

    def _lookup_sql(self, count: int) -> str:
        # Cached per placeholder count: batches come in a handful of sizes (the exporter's batch size, and the
        # remainders), so this holds a few strings.
        sql = self._lookup_cache.get(count)
        if sql is None:
            if len(self._lookup_cache) > 64:
                self._lookup_cache.clear()
            sql = self._lookup_cache[count] = (
                f"SELECT dedup_key FROM {billed_spans.name} WHERE dedup_key IN ({', '.join([self._mark] * count)})")
        return sql

    # --- reading ------------------------------------------------------------------------------------------------
    def usage(self, start: datetime, end: datetime, group_by: Sequence[str], *, tz: ZoneInfo | None = None,
              limit: int | None = None, offset: int = 0) -> list[dict[str, Any]]:
        """Exact totals between `start` (inclusive) and `end` (exclusive, hour granularity), grouped by columns.

        `hour`, `day` and `month` group by time (in `tz`, default UTC). Rows are sorted by cost, highest first,
        then by the group values (a total order, so pages taken with `offset`/`limit` neither overlap nor skip
        while the ledger is unchanged).
        """
        unknown = [g for g in group_by if g not in GROUP_BY_COLUMNS]
        if unknown:
            raise ValueError(f"group_by: unknown {', '.join(unknown)}; allowed: {', '.join(GROUP_BY_COLUMNS)}")
        tz = tz or self.tz
        time_groups = [g for g in group_by if g in ("hour", "day", "month")]
        sql_groups = [usage_hourly.c[g] for g in group_by if g not in ("hour", "day", "month")]
        if time_groups:
            sql_groups.append(usage_hourly.c.hour)
        # Integer sums from both backends (PostgreSQL's SUM(bigint) is NUMERIC), so rows need no conversion.
        sums = [cast(func.sum(usage_hourly.c[name]), BigInteger).label(name) for name in COUNTERS]
        query = (select(*sql_groups, *sums)
                 .where(usage_hourly.c.hour >= int(start.timestamp()) - int(start.timestamp()) % 3600)
                 .where(usage_hourly.c.hour < int(end.timestamp())))
        if sql_groups:
            query = query.group_by(*sql_groups)
            if not time_groups:  # the final order, from the database: cost, highest first, then the groups
                query = query.order_by(desc(sums[COUNTERS.index("cost_pico_usd")]), *sql_groups)
                if limit is not None or offset:  # one page, cut by the database
                    query = query.limit(limit).offset(offset)
        try:
            with self.engine.connect() as conn:
                raw = conn.execute(query).all()
        except SQLAlchemyError as err:
            raise LedgerUnavailable(f"ledger read failed: {err}") from err
        n_sql = len(sql_groups)
        if time_groups:
            # SQL grouped by hour too; fold hours into the requested local hour/day/month here, where the zone is.
            labels: dict[int, dict[str, str]] = {}
            folded: dict[tuple, list[int]] = {}
            for row in raw:
                if row[n_sql] is None:
                    continue
                hour = row[n_sql - 1]
                names = labels.get(hour)
                if names is None:
                    local = datetime.fromtimestamp(hour, tz=timezone.utc).astimezone(tz)
                    names = labels[hour] = {"hour": local.strftime("%Y-%m-%dT%H:00%z"),
                                            "day": local.strftime("%Y-%m-%d"), "month": local.strftime("%Y-%m")}
                columns = iter(row[: n_sql - 1])
                key = tuple(names[g] if g in names else next(columns) for g in group_by)
                acc = folded.get(key)
                if acc is None:
                    folded[key] = [int(v or 0) for v in row[n_sql:]]
                else:
                    for i, v in enumerate(row[n_sql:]):
                        acc[i] += int(v or 0)
            grouped = folded.items()
        else:
            names = (*group_by, *COUNTERS)
            rows = [dict(zip(names, row, strict=True)) for row in raw if row[n_sql] is not None]
            for out in rows:
                out["cost_usd"] = from_pico(out.pop("cost_pico_usd"))
            return rows
        cost_index = COUNTERS.index("cost_pico_usd")
        token_names = [(i, name) for i, name in enumerate(COUNTERS) if i != cost_index]
        rows = []
        for key, sums in grouped:
            out: dict[str, Any] = dict(zip(group_by, key, strict=True))
            for i, name in token_names:
                out[name] = sums[i]
            out["cost_usd"] = from_pico(sums[cost_index])
            out["_pico"] = sums[cost_index]
            rows.append(out)
        rows.sort(key=lambda r: (-r["_pico"], [str(r[g]) for g in group_by]))
        # Time groups are folded here, so their page is cut here too.
        rows = rows[offset:] if limit is None else rows[offset : offset + limit]
        for r in rows:
            del r["_pico"]
        return rows

    def spend_since(self, since: datetime, scopes: Mapping[tuple[str, ...], Collection[str]]
                    ) -> dict[tuple[str, ...], dict[tuple[str, ...], int]]:
        """Cost in pico-dollars since `since`, per scope: `{("org", "team"): {"engineering", ...}}` sums by
        (org, team) the rows whose team is one of those names. Only owners that have budgets are read, so a
        flood of unknown owner values in the ledger cannot slow budgets (or scrapes) down."""
        start = int(since.timestamp())
        out: dict[tuple[str, ...], dict[tuple[str, ...], int]] = {}
        try:
            with self.engine.connect() as conn:
                for columns, names in scopes.items():
                    cols = [usage_hourly.c[c] for c in columns]
                    totals = out[columns] = {}
                    for chunk in _chunks(sorted(names), 5000):
                        query = (select(*cols, func.sum(usage_hourly.c.cost_pico_usd))
                                 .where(usage_hourly.c.hour >= start - start % 3600)
                                 .where(cols[-1].in_(chunk)).group_by(*cols))
                        for *values, cost in conn.execute(query):
                            totals[tuple(values)] = int(cost or 0)
        except SQLAlchemyError as err:
            raise LedgerUnavailable(f"ledger read failed: {err}") from err
        return out

    def totals_since(self, since: datetime, group_by: Sequence[str], counters: Sequence[str]
                     ) -> dict[tuple[str, ...], tuple[int, ...]]:
        """`counters` (names in `schema.COUNTERS`) summed by the `group_by` columns over the rows from `since`'s
        hour on: `{(values...): (sums...)}`, integers from both backends. For the ledger-backed period gauges."""
        unknown = [c for c in (*group_by, *counters) if c not in (*OWNER_COLUMNS, *CALL_COLUMNS, *COUNTERS)]
        if unknown:
            raise ValueError(f"totals_since: unknown column(s) {', '.join(unknown)}")
        start = int(since.timestamp())
        columns = [usage_hourly.c[c] for c in group_by]
        query = (select(*columns, *(cast(func.sum(usage_hourly.c[c]), BigInteger) for c in counters))
                 .where(usage_hourly.c.hour >= start - start % 3600).group_by(*columns))
        try:
            with self.engine.connect() as conn:
                return {tuple(row[: len(columns)]): tuple(int(v or 0) for v in row[len(columns):])
                        for row in conn.execute(query)}
        except SQLAlchemyError as err:
            raise LedgerUnavailable(f"ledger read failed: {err}") from err

    def reprice(self, since: datetime, rates_for: Any = None) -> int:
        """Price the unpriced tokens of rows since `since` whose model now has a price; returns rows changed.

        `rates_for(provider, model, hour_unix_seconds)` returns `Rates` or None.
        """
        rates_for = rates_for or self.rates_for
        if rates_for is None:
            raise ValueError("reprice needs prices: open the ledger through the pipeline")
        start = int(since.timestamp())
        changed = 0
        try:
            with self._write_lock, self.engine.begin() as conn:
                rows = conn.execute(select(usage_hourly).where(usage_hourly.c.hour >= start - start % 3600)
                                    .where(usage_hourly.c.unpriced_requests > 0)).mappings().all()
                for row in rows:
                    rates = rates_for(row["provider"], row["model"], row["hour"])
                    if rates is None:
                        continue
                    if rates.tiered:
                        # The row sums many calls, so its total input says nothing about any one call's tier:
                        # bill the base tier rather than push every call over the long-context cliff.
                        rates = Rates(rates.source, rates.model_id, rates.flat)
                    tokens = LLMCall(
                        provider=row["provider"], request_model=row["model"], response_model=None,
                        operation=row["operation"], input_tokens=row["unpriced_input_tokens"],
                        output_tokens=row["unpriced_output_tokens"],
                        cache_read_tokens=row["unpriced_cache_read_tokens"],
                        cache_write_tokens=row["unpriced_cache_write_tokens"],
                    )
                    conn.execute(update(usage_hourly).where(usage_hourly.c.id == row["id"]).values(
                        cost_pico_usd=usage_hourly.c.cost_pico_usd + rates.cost_pico(tokens),
                        unpriced_requests=0, unpriced_input_tokens=0, unpriced_output_tokens=0,
                        unpriced_cache_read_tokens=0, unpriced_cache_write_tokens=0,
                    ))
                    changed += 1
        except SQLAlchemyError as err:
            raise LedgerUnavailable(f"reprice failed: {err}") from err
        return changed

    def ping(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(select(1))
            return True
        except SQLAlchemyError:
            return False

    def close(self) -> None:
        self.engine.dispose()


_DIMENSION_WIDTH = usage_hourly.c.org.type.length


def _dimension(value: str) -> str:
    """A value PostgreSQL accepts in a VARCHAR(255) (no NUL, not too long): a poison value would fail every retry
    of its batch, for ever."""
    if len(value) <= _DIMENSION_WIDTH and "\x00" not in value:
        return value
    return value.replace("\x00", "")[:_DIMENSION_WIDTH]


def _add_missing_counters(engine: Engine) -> None:
    """Bring a ledger made by an earlier schema up to date: add the counter columns it lacks (see
    `schema.ADDED_COUNTERS`), with default 0, which is what the rows it already has counted."""
    present = {column["name"] for column in inspect(engine).get_columns(usage_hourly.name)}
    missing = [name for name in ADDED_COUNTERS if name not in present]
    for name in missing:
        try:
            with engine.begin() as conn:
                conn.exec_driver_sql(
                    f"ALTER TABLE {usage_hourly.name} ADD COLUMN {_quote(name)} BIGINT NOT NULL DEFAULT 0")
        except SQLAlchemyError:
            # Another process opening the same ledger may have added it first; anything else is still an error.
            if name not in {c["name"] for c in inspect(engine).get_columns(usage_hourly.name)}:
                raise


def _first_sightings(entries: Iterable[Entry], seen: set[str]) -> list[Entry]:
    """The entries none of whose keys is in `seen`, adding theirs as they pass: a key already billed (an exporter's
    retry), or met earlier in this batch (the same span twice, or two spans of one call), bills nothing. An entry
    without keys is always fresh."""
    fresh: list[Entry] = []
    for e in entries:
        keys = e.keys
        if len(keys) == 1:  # the usual shape (see `dedup_keys`), tested without building a generator
            if keys[0] in seen:
                continue
        elif any(k in seen for k in keys):
            continue
        fresh.append(e)
        seen.update(keys)
    return fresh


def _aggregate(entries: Iterable[Entry]) -> list[tuple]:
    """One row per hour × owner × model × operation: DIMENSIONS then COUNTERS, as tuples for executemany."""
    rows: dict[tuple, list[int]] = {}
    now_ns = 0
    for e in entries:
        call = e.call
        start = call.start_time_unix_nano
        if not start:
            now_ns = now_ns or time.time_ns()
            start = now_ns
        # `Owner` is a named tuple in OWNER_COLUMNS order: unpacked in C.
        ident = (start // NS_PER_HOUR * 3600, *e.owner, call.provider,
                 call.model or "", call.operation, call.service_name or "")
        row = rows.get(ident)
        if row is None:
            row = rows[ident] = [0] * len(COUNTERS)
        # Indices follow schema.COUNTERS.
        row[0] += 1
        if call.error_type is not None:
            row[1] += 1
        row[3] += call.input_tokens
        row[4] += call.output_tokens
        row[5] += call.cache_read_tokens
        row[6] += call.cache_write_tokens
        row[7] += call.reasoning_tokens
        if e.cost_pico is None:
            row[2] += 1
            row[8] += call.input_tokens
            row[9] += call.output_tokens
            row[10] += call.cache_read_tokens
            row[11] += call.cache_write_tokens
        else:
            row[12] += e.cost_pico
        row[13] += call.retries
    out = []
    for ident, counters in rows.items():
        values = ident[1:]
        # Fast path in C for the usual row; only a row with a bad value pays for fixing each value. Two rows that
        # become equal once fixed are fine: executemany runs the upsert once per row, the second one adds.
        if max(map(len, values)) > _DIMENSION_WIDTH or "\x00" in "".join(values):
            ident = (ident[0], *(_dimension(v) for v in values))
        out.append((*ident, *counters))
    return out


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def period_starts(now: datetime, tz: ZoneInfo) -> dict[str, datetime]:
    """Start of the current calendar month and day in `tz`, as aware datetimes."""
    local = now.astimezone(tz)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return {"monthly": day.replace(day=1), "daily": day}


def next_period_start(start: datetime, period: str) -> datetime:
    if period == "daily":
        return (start + timedelta(days=1, hours=2)).replace(hour=0)
    return (start.replace(day=28) + timedelta(days=5)).replace(day=1)
