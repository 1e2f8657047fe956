"""Reading the ledger: usage reports, budget sums, period totals, the rows still waiting for a price, and the audit
trail of re-rating (`cost_changes`).

Every query is given its time range (and, for reports grouped by day or month, its time zone): nothing here keeps a
zone or a period of its own. Sums come back as integers from both backends (PostgreSQL's SUM(bigint) is NUMERIC);
money as exact `Decimal` USD (`units.pico_to_usd`).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import BigInteger, cast, desc, func, or_, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from costline.processor.ledger.engine import LedgerUnavailable
from costline.processor.ledger.schema import (
    CALL_COLUMNS,
    COUNTERS,
    DIMENSIONS,
    GROUP_BY,
    OWNER_FIELDS,
    TIME_GROUPS,
    cost_changes,
    usage_hourly,
)
from costline.processor.ledger.store import KEYS_PER_LOOKUP, read_rows
from costline.processor.model import Counts
from costline.processor.units import ceil_hour, floor_hour_s, pico_to_usd

UTC = ZoneInfo("UTC")
UNPRICED_COLUMNS = tuple(c.column for c in Counts if c.name.startswith("UNPRICED_"))
"""The counters a reprice reads and clears: unpriced calls and their tokens."""
_COST = Counts.COST_PICO_USD
_PRICE_DIMENSIONS = ("provider", "model", "operation", "service_tier", "processing")
"""What a reprice needs to know of a row to price it: the model and its price context."""


class LedgerReader:
    """Read-only queries; thread-safe (each opens its own connection)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def usage(self, start: datetime, end: datetime, group_by: Sequence[str], *, tz: ZoneInfo = UTC,
              limit: int | None = None, offset: int = 0) -> list[dict[str, Any]]:
        """Exact totals between `start` (inclusive) and `end` (exclusive, hour granularity), grouped by columns.

        `hour`, `day` and `month` group by time in `tz`. Each row holds the group values, every counter of
        `model.Counts` but the cost, then `cost_usd`. Rows are sorted by cost, highest first, then by the group
        values (a total order, so pages taken with `offset`/`limit` neither overlap nor skip while the ledger is
        unchanged).
        """
        unknown = [g for g in group_by if g not in GROUP_BY]
        if unknown:
            raise ValueError(f"group_by: unknown {', '.join(unknown)}; allowed: {', '.join(GROUP_BY)}")
        time_groups = [g for g in group_by if g in TIME_GROUPS]
        sql_groups = [usage_hourly.c[g] for g in group_by if g not in TIME_GROUPS]
        if time_groups:
            sql_groups.append(usage_hourly.c.hour)
        sums = [cast(func.sum(usage_hourly.c[name]), BigInteger).label(name) for name in COUNTERS]
        query = (select(*sql_groups, *sums)
                 .where(usage_hourly.c.hour >= floor_hour_s(int(start.timestamp())))
                 .where(usage_hourly.c.hour < int(end.timestamp())))
        if sql_groups:
            query = query.group_by(*sql_groups)
            if not time_groups:  # the final order, from the database: cost, highest first, then the groups
                query = query.order_by(desc(sums[_COST]), *sql_groups)
                if limit is not None or offset:  # one page, cut by the database
                    query = query.limit(limit).offset(offset)
        try:
            with self.engine.connect() as conn:
                raw = conn.execute(query).all()
        except SQLAlchemyError as err:
            raise LedgerUnavailable(f"ledger read failed: {err}") from err
        n_sql = len(sql_groups)
        if not time_groups:
            return [_usage_row(group_by, row[:n_sql], row[n_sql:]) for row in raw if row[n_sql] is not None]
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
        ranked = sorted(folded.items(), key=lambda item: (-item[1][_COST], [str(v) for v in item[0]]))
        # Time groups are folded here, so their page is cut here too.
        ranked = ranked[offset:] if limit is None else ranked[offset : offset + limit]
        return [_usage_row(group_by, key, sums) for key, sums in ranked]

    def spend_since(self, since: datetime, scopes: Mapping[tuple[str, ...], Collection[str]],
                    until: datetime | None = None) -> dict[tuple[str, ...], dict[tuple[str, ...], int]]:
        """Cost in pico-dollars of the hour rows that start from `since` up to `until` (`sums_since`)."""
        return {columns: {values: sums[0] for values, sums in totals.items()}
                for columns, totals in self.sums_since(since, scopes, until, ("cost_pico_usd",)).items()}

    def sums_since(self, since: datetime, scopes: Mapping[tuple[str, ...], Collection[str]],
                   until: datetime | None, counters: Sequence[str]
                   ) -> dict[tuple[str, ...], dict[tuple[str, ...], tuple[int, ...]]]:
        """`counters` (names in `schema.COUNTERS`) summed over the hour rows that start from `since` up to `until`
        (both rounded up to the hour alike, as a chargeback month is read: an hour row holding a period boundary, in
        a zone whose offset is not whole hours, is counted in one period, the one its start is in), per scope:
        `{("org", "team"): {"engineering", ...}}` sums by (org, team) the rows whose team is one of those names (a
        scope's columns are owner or call columns: `model.BUDGET_SCOPES`). Only owners that have budgets are read,
        so a flood of unknown owner values in the ledger cannot slow budgets (or scrapes) down."""
        unknown = [c for c in counters if c not in COUNTERS]
        if unknown:
            raise ValueError(f"sums_since: unknown counter(s) {', '.join(unknown)}")
        start = int(ceil_hour(since).timestamp())
        end = None if until is None else int(ceil_hour(until).timestamp())
        sums = [cast(func.sum(usage_hourly.c[c]), BigInteger) for c in counters]
        out: dict[tuple[str, ...], dict[tuple[str, ...], tuple[int, ...]]] = {}
        try:
            with self.engine.connect() as conn:
                for columns, names in scopes.items():
                    cols = [usage_hourly.c[c] for c in columns]
                    totals = out[columns] = {}
                    ordered = sorted(names)
                    for i in range(0, len(ordered), KEYS_PER_LOOKUP):
                        query = (select(*cols, *sums)
                                 .where(usage_hourly.c.hour >= start)
                                 .where(cols[-1].in_(ordered[i : i + KEYS_PER_LOOKUP])).group_by(*cols))
                        if end is not None:
                            query = query.where(usage_hourly.c.hour < end)
                        for row in conn.execute(query):
                            totals[tuple(row[: len(cols)])] = tuple(int(v or 0) for v in row[len(cols):])
        except SQLAlchemyError as err:
            raise LedgerUnavailable(f"ledger read failed: {err}") from err
        return out

    def totals_since(self, since: datetime, group_by: Sequence[str], counters: Sequence[str]
                     ) -> dict[tuple[str, ...], tuple[int, ...]]:
        """`counters` (names in `schema.COUNTERS`) summed by the `group_by` columns over the hour rows that start
        from `since` on (the budgets' and the statement's rule): `{(values...): (sums...)}`. For the ledger-backed
        period gauges."""
        unknown = [c for c in (*group_by, *counters) if c not in (*OWNER_FIELDS, *CALL_COLUMNS, *COUNTERS)]
        if unknown:
            raise ValueError(f"totals_since: unknown column(s) {', '.join(unknown)}")
        columns = [usage_hourly.c[c] for c in group_by]
        query = (select(*columns, *(cast(func.sum(usage_hourly.c[c]), BigInteger) for c in counters))
                 .where(usage_hourly.c.hour >= int(ceil_hour(since).timestamp())).group_by(*columns))
        try:
            with self.engine.connect() as conn:
                return {tuple(row[: len(columns)]): tuple(int(v or 0) for v in row[len(columns):])
                        for row in conn.execute(query)}
        except SQLAlchemyError as err:
            raise LedgerUnavailable(f"ledger read failed: {err}") from err

    def values_before(self, column: str, end: datetime) -> set[str]:
        """The values of an owner column with a row before `end`'s hour (exclusive): which orgs had data by then,
        for the chargeback's fixed charges."""
        if column not in OWNER_FIELDS:
            raise ValueError(f"values_before: {column!r} is not one of {', '.join(OWNER_FIELDS)}")
        query = (select(usage_hourly.c[column]).where(usage_hourly.c.hour < int(end.timestamp()))
                 .group_by(usage_hourly.c[column]))
        try:
            with self.engine.connect() as conn:
                return {row[0] for row in conn.execute(query)}
        except SQLAlchemyError as err:
            raise LedgerUnavailable(f"ledger read failed: {err}") from err

    def unpriced_rows(self, since: datetime) -> list[dict[str, Any]]:
        """The rows from `since`'s hour on with calls or units still waiting for a price (the units of priced calls
        whose model had no price for them: web searches, say): `id`, `hour`, `provider`, `model`, `operation`,
        `service_tier`, `processing` and the `UNPRICED_COLUMNS` counters."""
        columns = [usage_hourly.c[c] for c in ("id", "hour", *_PRICE_DIMENSIONS, *UNPRICED_COLUMNS)]
        query = (select(*columns).where(usage_hourly.c.hour >= floor_hour_s(int(since.timestamp())))
                 .where(or_(*(usage_hourly.c[c] > 0 for c in UNPRICED_COLUMNS))).order_by(usage_hourly.c.id))
        return read_rows(self.engine, query)

    def rows_since(self, since: datetime) -> list[dict[str, Any]]:
        """Every row from `since`'s hour on, for a re-rate: `id`, `hour`, `provider`, `model`, `operation`,
        `service_tier`, `processing` and all `COUNTERS` as stored."""
        columns = [usage_hourly.c[c] for c in ("id", "hour", *_PRICE_DIMENSIONS, *COUNTERS)]
        query = (select(*columns).where(usage_hourly.c.hour >= floor_hour_s(int(since.timestamp())))
                 .order_by(usage_hourly.c.id))
        return read_rows(self.engine, query)

    def hour_rows(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """The stored hourly rows whose hour starts in [`start`, `end`) (bounds already on the hour): `hour` (unix
        seconds), every dimension and every counter as stored, ordered by hour then dimensions (a stable order)."""
        columns = [usage_hourly.c[c] for c in (*DIMENSIONS, *COUNTERS)]
        query = (select(*columns).where(usage_hourly.c.hour >= int(start.timestamp()))
                 .where(usage_hourly.c.hour < int(end.timestamp()))
                 .order_by(*(usage_hourly.c[c] for c in DIMENSIONS)))
        return read_rows(self.engine, query)

    def changed_hours(self, since_unix_s: int) -> list[int]:
        """The hours (unix seconds) whose cost a re-rate changed at or after `since_unix_s`: exports of their days
        are stale."""
        query = (select(cost_changes.c.hour).where(cost_changes.c.changed_at >= since_unix_s)
                 .group_by(cost_changes.c.hour))
        return [row["hour"] for row in read_rows(self.engine, query)]

    def cost_changes(self, start: datetime | None = None, end: datetime | None = None, *, limit: int | None = None,
                     offset: int = 0) -> list[dict[str, Any]]:
        """The re-rating audit trail, oldest first: `row_id`, `hour`, `provider`, `model`, `old_cost_pico_usd`,
        `new_cost_pico_usd`, `changed_at` (unix seconds), `price_source`. Only the changes made in [`start`, `end`)
        when given; `offset` changes skipped, at most `limit`."""
        query = select(*(c for c in cost_changes.c if c.name != "id")).order_by(cost_changes.c.id)
        if start is not None:
            query = query.where(cost_changes.c.changed_at >= math.ceil(start.timestamp()))
        if end is not None:
            query = query.where(cost_changes.c.changed_at < math.ceil(end.timestamp()))
        if limit is not None:
            query = query.limit(limit)
        if offset:
            query = query.offset(offset)
        return read_rows(self.engine, query)


def _usage_row(group_by: Sequence[str], groups: Sequence[Any], sums: Sequence[Any]) -> dict[str, Any]:
    row: dict[str, Any] = dict(zip(group_by, groups, strict=True))
    for slot, value in zip(Counts, sums, strict=True):
        column = slot.column
        if column.endswith(_PICO):  # money: exact USD, named without the unit (`cost_usd`, `reported_cost_usd`)
            row[column[: -len(_PICO)] + "_usd"] = pico_to_usd(int(value or 0))
        else:
            row[column] = int(value or 0)
    row["cost_usd"] = row.pop("cost_usd")  # the bill stays the last column, where every release had it
    return row


_PICO = "_pico_usd"
