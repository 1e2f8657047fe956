"""Cost per run: an agent run (its trace), a conversation (`gen_ai.conversation.id`) or a session (`session.id`).

The ids are unbounded in number, so they are never metric labels; the ledger keeps a row per hour × run × owner
(`schema.runs`), upserted in the transaction that bills the run's calls (`RunRecorder.record`, called by
`LedgerWriter.record`) and deleted `retention_days` after its hour. A batch is summed per run in memory first: one
upsert per distinct hour, run and owner, whatever the number of its calls.

A run's cost in a period is that of its calls that started in the period's hours (the usage report's rule), so a
conversation spanning two months is in each with what it cost there. A row holds what its calls cost when they were
billed: a later `costline reprice` prices the hourly rows, which keep no call's run, so a run with unpriced calls
says so (`unpriced_requests`) instead of showing a price it lacks.

Reads: `top_runs` (the period's runs, most expensive first, narrowed to a scope) and `run_rows` (one run, per owner).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from operator import add
from typing import Any, NamedTuple

from sqlalchemy import BigInteger, cast, delete, desc, func, select
from sqlalchemy.engine import Connection, Engine

from costline.processor.ledger.engine import quote
from costline.processor.ledger.schema import RUN_COUNTERS, RUN_OWNER, RUN_ROW, runs
from costline.processor.ledger.store import RETENTION_CHECK_S, read_rows
from costline.processor.model import MAX_LABEL_LENGTH, RUN_KINDS, RUN_RETENTION_DAYS, Entry
from costline.processor.units import NS_PER_S, S_PER_DAY, S_PER_HOUR, floor_hour_s, pico_to_usd

__all__ = ["DEFAULT_RUN_POLICY", "RUN_KINDS", "RUN_SCOPES", "RunPolicy", "RunRecorder", "run_rows", "top_runs"]


class RunPolicy(NamedTuple):
    """Which runs the ledger keeps and for how long (the config's `runs:` section)."""

    kinds: tuple[str, ...] = RUN_KINDS
    retention_days: int = RUN_RETENTION_DAYS


DEFAULT_RUN_POLICY = RunPolicy()
RUN_SCOPES = RUN_OWNER
"""The owner columns a runs query may be narrowed to."""
_TRACE, _CONVERSATION, _SESSION = RUN_KINDS
_OWNER_WIDTH = len(RUN_OWNER)


class RunRecorder:
    """Upserts a batch's runs on the writer's connection; deletes expired runs now and then. Used under the writer's
    lock, so it needs none of its own."""

    def __init__(self, paramstyle: str) -> None:
        mark = "?" if paramstyle == "qmark" else "%s"
        table = runs.name
        columns = (*RUN_ROW, "first_seen", "last_seen", *RUN_COUNTERS)
        # Driver-level SQL with executemany, as the hourly rows are written (SQLAlchemy's per-row processing would
        # cost more than the database's work). CASE rather than min()/LEAST: the one spelling both databases take.
        self._upsert_sql = (
            f"INSERT INTO {table} ({', '.join(quote(c) for c in columns)}) "
            f"VALUES ({', '.join(mark for _ in columns)}) "
            f"ON CONFLICT ({', '.join(quote(c) for c in RUN_ROW)}) DO UPDATE SET "
            f"first_seen = CASE WHEN excluded.first_seen < {table}.first_seen THEN excluded.first_seen "
            f"ELSE {table}.first_seen END, "
            f"last_seen = CASE WHEN excluded.last_seen > {table}.last_seen THEN excluded.last_seen "
            f"ELSE {table}.last_seen END, "
            + ", ".join(f"{quote(c)} = {table}.{quote(c)} + excluded.{quote(c)}" for c in RUN_COUNTERS)
        )
        self._last_retention = -math.inf  # the first write prunes, however long the machine has been up

    def record(self, conn: Connection, entries: Iterable[Entry], *, now: int, policy: RunPolicy) -> None:
        """Add `entries` (calls being billed in `conn`'s transaction) to their runs; `now` (unix seconds) is the
        time of a call without one, and the retention's reference."""
        rows = summed_runs(entries, now * NS_PER_S, policy.kinds)
        if rows:
            # Sorted: by hour first, so a batch's rows are written in the key's order, and processors sharing a
            # PostgreSQL ledger lock them in one order (no deadlock).
            conn.exec_driver_sql(self._upsert_sql, sorted(rows))
        if time.monotonic() - self._last_retention > RETENTION_CHECK_S:
            self._last_retention = time.monotonic()
            conn.execute(delete(runs).where(runs.c.hour < now - policy.retention_days * S_PER_DAY))


def summed_runs(entries: Iterable[Entry], now_ns: int, kinds: Sequence[str]) -> list[tuple]:
    """One row per hour × run × owner of `entries`: `RUN_ROW`, first and last seen (unix seconds), `RUN_COUNTERS`."""
    want_trace, want_conversation, want_session = (k in kinds for k in RUN_KINDS)
    acc: dict[tuple, tuple] = {}
    get = acc.get
    for e in entries:
        call = e.call
        trace = call.trace_id if want_trace else None
        conversation = call.conversation_id if want_conversation else None
        session = call.session_id if want_session else None
        if not (trace or conversation or session):
            continue
        start = call.start_time_unix_nano or now_ns
        end = call.end_time_unix_nano
        first, last = start // NS_PER_S, (end if end > start else start) // NS_PER_S
        hour = first - first % S_PER_HOUR
        cost = e.cost_pico
        counts = (1, 0 if call.error_type is None else 1, call.input_tokens, call.output_tokens,
                  call.cache_read_tokens, call.cache_write_tokens, call.reasoning_tokens, cost or 0,
                  1 if cost is None else 0, 1 if call.usage_missing else 0)
        who = e.owner[:_OWNER_WIDTH]  # `Owner` starts with org, team, project, user: a slice in C
        # Spelled out per kind rather than looped over: this runs for every billed call.
        if trace:
            key = (hour, _TRACE, trace.hex(), *who)
            row = get(key)
            acc[key] = (first, last, counts) if row is None else _added(row, first, last, counts)
        if conversation:
            key = (hour, _CONVERSATION, conversation, *who)
            row = get(key)
            acc[key] = (first, last, counts) if row is None else _added(row, first, last, counts)
        if session:
            key = (hour, _SESSION, session, *who)
            row = get(key)
            acc[key] = (first, last, counts) if row is None else _added(row, first, last, counts)
    out = []
    for key, (first, last, counts) in acc.items():
        values = key[2:]
        if max(map(len, values)) > MAX_LABEL_LENGTH or "\x00" in "".join(values):
            key = (*key[:2], *(_bounded(v) for v in values))  # noqa: PLW2901 - a poison value would fail every retry
        out.append((*key, first, last, *counts))
    return out


def _added(row: tuple, first: int, last: int, counts: tuple) -> tuple:
    return (min(row[0], first), max(row[1], last), tuple(map(add, row[2], counts)))


def _bounded(value: str) -> str:
    return value.replace("\x00", "")[:MAX_LABEL_LENGTH]


# --- reading ---------------------------------------------------------------------------------------------------------


def top_runs(engine: Engine, start: datetime, end: datetime, *, kind: str | None = None,
             scope: Mapping[str, str] | None = None, limit: int = 20) -> list[dict[str, Any]]:
    """The runs' cost between `start` (inclusive, hour granularity) and `end` (exclusive) — their calls that started
    in those hours, the usage report's rule — of `kind` (any when None) and within `scope` (owner column -> value,
    `RUN_SCOPES`), most expensive first, at most `limit`: one row per run and team (a run whose calls belong to two
    teams is two rows, each team's part). Each row: kind, run_id, org, team, first_seen, last_seen (UTC datetimes,
    of those calls), the counters, cost_usd last. Read as a range of the table's key (the hour first)."""
    grouping = [runs.c.kind, runs.c.run_id, runs.c.org, runs.c.team]
    cost = cast(func.sum(runs.c.cost_pico_usd), BigInteger)
    query = (select(*grouping, func.min(runs.c.first_seen).label("first_seen"),
                    func.max(runs.c.last_seen).label("last_seen"),
                    *(cast(func.sum(runs.c[c]), BigInteger).label(c) for c in RUN_COUNTERS if c != "cost_pico_usd"),
                    cost.label("cost_pico_usd"))
             .where(runs.c.hour >= floor_hour_s(math.floor(start.timestamp())),
                    runs.c.hour < math.ceil(end.timestamp())))
    query = _narrowed(query, kind, scope).group_by(*grouping).order_by(desc(cost), *grouping).limit(limit)
    return [_run_row(row) for row in read_rows(engine, query)]


def run_rows(engine: Engine, kind: str, run_id: str, *, scope: Mapping[str, str] | None = None
             ) -> list[dict[str, Any]]:
    """One run's cost within `scope`, one row per owner (org, team, project, user) summed over its hours, most
    expensive first; empty when the ledger holds none (never billed, expired, or outside the scope).

    The table is keyed by hour first, so the run is sought in each hour the table holds: the hours are walked with
    one index seek each (a recursive query, "loose index scan"), then the run's rows are sought in each — a few
    thousand seeks at most (90 days of hours), never a scan of the rows."""
    hours = select(func.min(runs.c.hour).label("hour")).cte("hours", recursive=True)
    following = runs.alias("following")
    hours = hours.union_all(select(
        select(func.min(following.c.hour)).where(following.c.hour > hours.c.hour).scalar_subquery())
        .where(hours.c.hour.is_not(None)))
    sums = [cast(func.sum(runs.c[c]), BigInteger).label(c) for c in RUN_COUNTERS]
    owner = [runs.c[c] for c in RUN_OWNER]
    query = (select(runs.c.kind, runs.c.run_id, *owner, func.min(runs.c.first_seen).label("first_seen"),
                    func.max(runs.c.last_seen).label("last_seen"), *sums)
             .select_from(hours.join(runs, runs.c.hour == hours.c.hour)).where(runs.c.run_id == run_id))
    query = (_narrowed(query, kind, scope).group_by(runs.c.kind, runs.c.run_id, *owner)
             .order_by(desc(sums[RUN_COUNTERS.index("cost_pico_usd")]), *owner))
    return [_run_row(row) for row in read_rows(engine, query)]


def _narrowed(query: Any, kind: str | None, scope: Mapping[str, str] | None) -> Any:
    if kind is not None:
        if kind not in RUN_KINDS:
            raise ValueError(f"kind {kind!r}: use one of {', '.join(RUN_KINDS)}")
        query = query.where(runs.c.kind == kind)
    for column, value in (scope or {}).items():
        if column not in RUN_SCOPES:
            raise ValueError(f"scope {column!r}: use one of {', '.join(RUN_SCOPES)}")
        query = query.where(runs.c[column] == value)
    return query


def _run_row(row: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in row.items():
        if name in ("first_seen", "last_seen"):
            out[name] = datetime.fromtimestamp(int(value), tz=timezone.utc)
        elif name == "cost_pico_usd":
            continue
        elif name in RUN_COUNTERS:
            out[name] = int(value or 0)
        else:
            out[name] = value
    out["cost_usd"] = pico_to_usd(int(row["cost_pico_usd"] or 0))
    return out
