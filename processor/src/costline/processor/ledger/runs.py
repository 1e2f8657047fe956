"""Cost per run: an agent run (its trace), a conversation (`gen_ai.conversation.id`) or a session (`session.id`).

The ids are unbounded in number, so they are never metric labels; the ledger keeps one row per run × owner
(`schema.runs`), upserted in the transaction that bills the run's calls (`RunRecorder.record`, called by
`LedgerWriter.record`), and deleted `retention_days` after the run's last call. A batch is summed per run in memory
first: one upsert per distinct run and owner, whatever the number of its calls.

A run's row holds what it cost when its calls were billed: a later `costline reprice` prices the hourly rows, which
keep no call's run, so a run with unpriced calls says so (`unpriced_requests`) instead of showing a price it lacks.

Reads: `top_runs` (the runs of a period, by their first call, most expensive first, narrowed to a scope) and
`run_rows` (one run's rows, one per owner).
"""

from __future__ import annotations

import math
import time
from operator import add
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, NamedTuple

from sqlalchemy import BigInteger, cast, delete, desc, func, select
from sqlalchemy.engine import Connection, Engine

from costline.processor.ledger.engine import quote
from costline.processor.ledger.schema import RUN_COUNTERS, RUN_KEY, RUN_OWNER, runs
from costline.processor.ledger.store import RETENTION_CHECK_S, read_rows
from costline.processor.model import MAX_LABEL_LENGTH, RUN_KINDS, Entry
from costline.processor.units import NS_PER_S, S_PER_DAY, pico_to_usd

__all__ = ["DEFAULT_RUN_POLICY", "RUN_KINDS", "RUN_SCOPES", "RunPolicy", "RunRecorder", "run_rows", "top_runs"]

DEFAULT_RETENTION_DAYS = 90


class RunPolicy(NamedTuple):
    """Which runs the ledger keeps and for how long (the config's `runs:` section)."""

    kinds: tuple[str, ...] = RUN_KINDS
    retention_days: int = DEFAULT_RETENTION_DAYS


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
        columns = (*RUN_KEY, "first_seen", "last_seen", *RUN_COUNTERS)
        # Driver-level SQL with executemany, as the hourly rows are written (SQLAlchemy's per-row processing would
        # cost more than the database's work). CASE rather than min()/LEAST: the one spelling both databases take.
        self._upsert_sql = (
            f"INSERT INTO {table} ({', '.join(quote(c) for c in columns)}) "
            f"VALUES ({', '.join(mark for _ in columns)}) "
            f"ON CONFLICT ({', '.join(quote(c) for c in RUN_KEY)}) DO UPDATE SET "
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
            # Sorted: processors sharing a PostgreSQL ledger lock the rows of one run in one order (no deadlock).
            conn.exec_driver_sql(self._upsert_sql, sorted(rows))
        if time.monotonic() - self._last_retention > RETENTION_CHECK_S:
            self._last_retention = time.monotonic()
            cutoff = now - policy.retention_days * S_PER_DAY
            # `first_seen` first: the period index finds the candidates; a run still going is kept.
            conn.execute(delete(runs).where(runs.c.first_seen < cutoff).where(runs.c.last_seen < cutoff))


def summed_runs(entries: Iterable[Entry], now_ns: int, kinds: Sequence[str]) -> list[tuple]:
    """One row per run × owner of `entries`: `RUN_KEY`, first and last seen (unix seconds), then `RUN_COUNTERS`."""
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
        cost = e.cost_pico
        counts = (1, 0 if call.error_type is None else 1, call.input_tokens, call.output_tokens,
                  call.cache_read_tokens, call.cache_write_tokens, call.reasoning_tokens, cost or 0,
                  1 if cost is None else 0, 1 if call.usage_missing else 0)
        who = e.owner[:_OWNER_WIDTH]  # `Owner` starts with org, team, project, user: a slice in C
        # Spelled out per kind rather than looped over: this runs for every billed call.
        if trace:
            key = (_TRACE, trace.hex(), *who)
            row = get(key)
            acc[key] = (first, last, counts) if row is None else _added(row, first, last, counts)
        if conversation:
            key = (_CONVERSATION, conversation, *who)
            row = get(key)
            acc[key] = (first, last, counts) if row is None else _added(row, first, last, counts)
        if session:
            key = (_SESSION, session, *who)
            row = get(key)
            acc[key] = (first, last, counts) if row is None else _added(row, first, last, counts)
    out = []
    for key, (first, last, counts) in acc.items():
        values = key[1:]
        if max(map(len, values)) > MAX_LABEL_LENGTH or "\x00" in "".join(values):
            key = (key[0], *(_bounded(v) for v in values))  # noqa: PLW2901 - a poison value would fail every retry
        out.append((*key, first, last, *counts))
    return out


def _added(row: tuple, first: int, last: int, counts: tuple) -> tuple:
    return (min(row[0], first), max(row[1], last), tuple(map(add, row[2], counts)))


def _bounded(value: str) -> str:
    return value.replace("\x00", "")[:MAX_LABEL_LENGTH]


# --- reading ---------------------------------------------------------------------------------------------------------


def top_runs(engine: Engine, start: datetime, end: datetime, *, kind: str | None = None,
             scope: Mapping[str, str] | None = None, limit: int = 20) -> list[dict[str, Any]]:
    """The runs whose first call started in [`start`, `end`), of `kind` (any when None) and within `scope` (owner
    column -> value, `RUN_SCOPES`), most expensive first, at most `limit`: one row per run and team (a run whose
    calls belong to two teams is two rows, each team's part). Each row: kind, run_id, org, team, first_seen,
    last_seen (UTC datetimes), the counters, cost_usd last."""
    grouping = [runs.c.kind, runs.c.run_id, runs.c.org, runs.c.team]
    cost = cast(func.sum(runs.c.cost_pico_usd), BigInteger)
    query = (select(*grouping, func.min(runs.c.first_seen).label("first_seen"),
                    func.max(runs.c.last_seen).label("last_seen"),
                    *(cast(func.sum(runs.c[c]), BigInteger).label(c) for c in RUN_COUNTERS if c != "cost_pico_usd"),
                    cost.label("cost_pico_usd"))
             # Whole seconds, as `first_seen` is kept: a run started in the second `end` falls in is before it.
             .where(runs.c.first_seen >= math.floor(start.timestamp()),
                    runs.c.first_seen < math.ceil(end.timestamp())))
    query = _narrowed(query, kind, scope).group_by(*grouping).order_by(desc(cost), *grouping).limit(limit)
    return [_run_row(row) for row in read_rows(engine, query)]


def run_rows(engine: Engine, kind: str, run_id: str, *, scope: Mapping[str, str] | None = None
             ) -> list[dict[str, Any]]:
    """One run's rows within `scope`, one per owner (org, team, project, user), most expensive first; empty when
    the ledger holds none (never billed, expired, or outside the scope)."""
    query = select(*(runs.c[c] for c in (*RUN_KEY, "first_seen", "last_seen", *RUN_COUNTERS))).where(
        runs.c.run_id == run_id)
    query = _narrowed(query, kind, scope).order_by(desc(runs.c.cost_pico_usd), *(runs.c[c] for c in RUN_OWNER))
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
