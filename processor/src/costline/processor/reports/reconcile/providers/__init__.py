"""Reading a provider's own reports, live (paginated, retried) or from files saved from them (the API's JSON, one
page or a list of pages, or a CSV export with the API's field names as columns). Each provider module knows its
paths, the spelling of its query's parameters and its fields; this module makes the queries and walks pages,
buckets and results the same way for both."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from types import ModuleType
from typing import Any

from costline.processor.reports.reconcile.providers import anthropic, openai
from costline.processor.reports.reconcile.providers._fields import Fields, load_json
from costline.processor.reports.reconcile.providers._http import Fetcher
from costline.processor.reports.reconcile.report import BilledRow, ReportError, UsageRow

MODULES: dict[str, ModuleType] = {openai.NAME: openai, anthropic.NAME: anthropic}


@dataclass
class ProviderReport:
    """What one provider reported for a period: usage rows, and billed rows when a cost report was read."""

    provider: str
    start: date
    end: date
    """Exclusive."""
    usage: list[UsageRow] = field(default_factory=list)
    billed: list[BilledRow] | None = None
    sources: list[str] = field(default_factory=list)
    """Where it came from (URLs without credentials, or file names), for the output and the stored run."""

    def add(self, row: UsageRow | BilledRow) -> None:
        """One row read from the report (a billed row makes the report one with costs)."""
        if isinstance(row, BilledRow):
            if self.billed is None:
                self.billed = []
            self.billed.append(row)
        else:
            self.usage.append(row)


def _unix(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp())


def fetch(provider: str, start: date, end: date, admin_key: str, *, api_base: str | None = None,
          costs: bool = True, **fetcher_options: Any) -> ProviderReport:
    """The provider's usage (and cost) report for days [start, end), live. Raises `ReportError`."""
    module = MODULES[provider]
    fetcher = Fetcher(api_base or module.DEFAULT_API_BASE, module.headers(admin_key), **fetcher_options)
    report = ProviderReport(provider, start, end, billed=[] if costs else None)
    first, last = _unix(start), _unix(end)
    for where, page in fetcher.pages(module.USAGE_PATH, _query(module, first, last, module.GROUP_BY)):
        _add_page(module, report, page, where, cost=False)
    report.sources.append(fetcher.api_base + module.USAGE_PATH)
    if costs:
        for where, page in fetcher.pages(module.COST_PATH, _query(module, first, last, module.COST_GROUP_BY)):
            _add_page(module, report, page, where, cost=True)
        report.sources.append(fetcher.api_base + module.COST_PATH)
    return report


def _query(module: ModuleType, start: int, end: int, group_by: tuple[str, ...]) -> list[tuple[str, str]]:
    """A report's query for [start, end) in daily buckets, as many a page as the API allows, in the provider's
    spelling (the bounds' names and format, the group-by parameter)."""
    start_name, end_name = module.BUCKET_BOUNDS
    return [(start_name, module.query_time(start)), (end_name, module.query_time(end)), ("bucket_width", "1d"),
            *((module.GROUP_BY_PARAM, g) for g in group_by), ("limit", str(module.PAGE_LIMIT))]


def read_files(provider: str, start: date, end: date, paths: list[Path]) -> ProviderReport:
    """The reports saved in `paths` (each a usage or a cost report, JSON or CSV; told apart by their fields),
    keeping the days in [start, end). Raises `ReportError` naming the file."""
    module = MODULES[provider]
    report = ProviderReport(provider, start, end)
    for path in paths:
        try:
            raw = path.read_bytes()
        except OSError as err:
            raise ReportError(f"{path}: cannot read: {err.strerror or err}") from None
        if path.suffix.lower() == ".csv":
            _add_csv(module, report, raw, str(path))
        else:
            doc = load_json(raw, str(path))
            pages = doc if isinstance(doc, list) else [doc]
            for number, raw_page in enumerate(pages, 1):
                where = f"{path}" if len(pages) == 1 else f"{path} page {number}"
                page = Fields(raw_page, where)
                _add_page(module, report, page, where, cost=None)
                if number == len(pages) and page.boolean("has_more"):
                    raise ReportError(f"{where}: has_more is true: the report continues on a page not saved "
                                      "(save every page, as a JSON array of pages)")
        report.sources.append(str(path))
    if not report.usage:
        raise ReportError(f"{', '.join(map(str, paths))}: no usage report among the files (a cost report alone "
                          "says nothing per model and key)")
    return report


def _buckets(module: ModuleType, page: Fields) -> list[tuple[date, Fields, list[Any]]]:
    """(day, bucket, results) of a page, every bucket's bounds checked (a UTC midnight, in the provider's
    spelling: `module.BUCKET_BOUNDS` read by `module.bucket_day`) before any result is read."""
    out = []
    for i, raw in enumerate(page.array("data")):
        bucket = Fields(raw, f"{page.path}: data[{i}]")
        start, end = module.BUCKET_BOUNDS
        day = module.bucket_day(bucket, start)
        module.bucket_day(bucket, end)
        out.append((day, bucket, bucket.array("results")))
    return out


def _add_page(module: ModuleType, report: ProviderReport, page: Fields, where: str, cost: bool | None) -> None:
    for day, bucket, results in _buckets(module, page):
        if not report.start <= day < report.end:
            continue
        for j, raw in enumerate(results):
            result = Fields(raw, f"{bucket.path}.results[{j}]")
            is_cost = module.is_cost_result(raw) if cost is None else cost
            _add(module, report, day, result, is_cost)


def _add(module: ModuleType, report: ProviderReport, day: date, result: Fields, is_cost: bool) -> None:
    report.add(module.cost_result(day, result) if is_cost else module.usage_result(day, result))


def _add_csv(module: ModuleType, report: ProviderReport, raw: bytes, where: str) -> None:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ReportError(f"{where}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    columns = set(reader.fieldnames or ())
    is_cost = all(c in columns for c in module.CSV_COST_COLUMNS)
    required = module.CSV_COST_COLUMNS if is_cost else module.CSV_USAGE_COLUMNS
    missing = [c for c in required if c not in columns]
    if missing:
        raise ReportError(f"{where}: missing column(s) {', '.join(missing)}; a {module.NAME} usage CSV has "
                          f"{', '.join(module.CSV_USAGE_COLUMNS)}, a cost CSV {', '.join(module.CSV_COST_COLUMNS)}")
    day_column = required[0]
    for line, row in enumerate(reader, 2):
        path = f"{where} line {line}"
        if None in row or any(v is None for v in row.values()):
            raise ReportError(f"{path}: {'too many' if None in row else 'too few'} cells for the header "
                              "(truncated?)")
        values: dict[str, Any] = {}
        for name, cell in row.items():
            cell = cell.strip()
            if cell == "":
                values[name] = None
            elif name in module.CSV_INTEGERS:
                if not cell.isdigit():
                    raise ReportError(f"{path}.{name}: must be an integer, got {cell!r}")
                values[name] = int(cell)
            else:
                values[name] = cell
        fields = Fields(values, path)
        day = _csv_day(fields, day_column)
        if report.start <= day < report.end:
            report.add(module.csv_cost_result(day, fields) if is_cost else module.csv_usage_result(day, fields))


def _csv_day(row: Fields, column: str) -> date:
    """A bucket start as unix seconds or an ISO date / RFC 3339 timestamp, at a UTC midnight."""
    value = row.obj.get(column)
    if value is None:
        raise ReportError(f"{row.path}.{column}: required cell is empty")
    if value.isdigit():
        row.obj[column] = int(value)
        return row.unix_day(column)
    if len(value) == 10:
        row.obj[column] = value + "T00:00:00Z"
    return row.rfc3339_day(column)
