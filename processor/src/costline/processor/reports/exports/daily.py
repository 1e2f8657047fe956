"""One day's export: read the day from the ledger, write each dataset's partition atomically.

A day is the config zone's calendar day, read as the chargeback reads a month: the UTC hour rows that start in it
(`day_bounds`), so the days of a month add up to its statement exactly, even in a zone whose offset is not whole
hours. Re-exporting a day replaces it (the same rows give the same file); two exporters racing on one day each
rename a whole file into place, and the last rename wins with a complete day.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow.parquet as pq

from costline.processor.clock import Clock
from costline.processor.config.chargeback import ChargebackConfig
from costline.processor.reports.chargeback.focus import COLUMNS as FOCUS_COLUMNS
from costline.processor.reports.chargeback.focus import USAGE_GROUPS, focus_rows
from costline.processor.reports.chargeback.report import statement_for
from costline.processor.reports.chargeback.statement import Period
from costline.processor.reports.exports.tables import focus_table, usage_table
from costline.processor.units import ceil_hour

DATASETS = ("usage", "focus")
PART = "part-0.parquet"


class ExportError(Exception):
    """The export could not be written (a directory that is not writable, a full disk): the day's previous export,
    if any, is untouched."""


@dataclass(frozen=True, slots=True)
class ExportResult:
    day: date
    paths: dict[str, Path]
    rows: dict[str, int]


def day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The ledger hours of `day` in `tz`: those that start in it, both ends rounded up to the UTC hour."""
    start = datetime.combine(day, time(0), tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
    return ceil_hour(start), ceil_hour(end)


def export_day(config: Any, ledger: Any, day: date, out_dir: Path, *, clock: Clock) -> ExportResult:
    """Write `day`'s partitions under `out_dir`, each replacing the one there; raises `ExportError`."""
    return next(export_days(config, ledger, [day], out_dir, clock=clock))


def export_days(config: Any, ledger: Any, days: Iterable[date], out_dir: Path, *,
                clock: Clock) -> Iterator[ExportResult]:
    """Write each day's partitions in turn (as `export_day`), the month's statement — which the FOCUS rows name their
    team's chargeback from — made once per month, not once per day."""
    if config.chargeback is None:  # FOCUS rows name each team's chargeback; without rules, teams are charged at cost
        config = config.model_copy(update={"chargeback": ChargebackConfig()})
    statements: dict[Period, Any] = {}
    for day in days:
        period = Period(day.year, day.month)
        if period not in statements:
            statements[period] = statement_for(config, ledger, period, clock=clock)
        yield _export(config, ledger, day, Path(out_dir), statements[period])


def _export(config: Any, ledger: Any, day: date, out_dir: Path, statement: Any) -> ExportResult:
    tz = config.zone
    start, end = day_bounds(day, tz)
    usage = usage_table(ledger.reader.hour_rows(start, end))
    rows = [r for r in focus_rows(statement, ledger.usage(start, end, list(USAGE_GROUPS), tz=tz))
            if r["ChargeCategory"] == "Usage"]
    focus = focus_table(FOCUS_COLUMNS, rows)
    paths = {name: _write(table, out_dir / name / f"date={day.isoformat()}")
             for name, table in (("usage", usage), ("focus", focus))}
    return ExportResult(day, paths, {"usage": usage.num_rows, "focus": focus.num_rows})


def _write(table: Any, partition: Path) -> Path:
    """`table` as the partition's one file, by write-then-rename: a crash or a full disk midway leaves a hidden
    temporary file (removed here when we can) and the previous file whole."""
    target = partition / PART
    tmp = partition / f".{PART}.{os.getpid()}.{secrets.token_hex(4)}.tmp"  # hidden: readers' globs skip it
    try:
        partition.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as sink:
            pq.write_table(table, sink, compression="zstd")
            sink.flush()
            os.fsync(sink.fileno())
        os.replace(tmp, target)
        _fsync_dir(partition)
    except OSError as err:
        with contextlib.suppress(OSError):  # nothing to remove when the directory itself could not be made
            tmp.unlink()
        raise ExportError(f"cannot write {target}: {err.strerror or err}") from err
    return target


def _fsync_dir(path: Path) -> None:
    """The rename itself survives a power cut only once the directory is synced."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def stale_days(config: Any, ledger: Any, now: datetime, *, changed_since_s: int | None) -> list[date]:
    """The days a periodic export must (re)write: every day a span may still arrive in (the ledger accepts spans up
    to `limits.max_span_age_hours` old, so older days cannot change by ingest), plus the days of hours a re-rate
    changed since `changed_since_s`. Oldest first."""
    tz = ZoneInfo(config.timezone)
    oldest = now - timedelta(hours=config.max_span_age_hours)
    days = set(_days_between(oldest.astimezone(tz).date(), now.astimezone(tz).date()))
    if changed_since_s is not None:
        for hour in ledger.reader.changed_hours(changed_since_s):
            days.add(_day_of_hour(hour, tz))
    return sorted(days)


def _days_between(first: date, last: date) -> Iterable[date]:
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)


def _day_of_hour(hour_s: int, tz: ZoneInfo) -> date:
    """The day whose `day_bounds` hold the hour row starting at `hour_s`: the local date of its start (a whole UTC
    hour at or after a local midnight is at or after that midnight rounded up to the hour)."""
    return datetime.fromtimestamp(hour_s, tz=timezone.utc).astimezone(tz).date()
