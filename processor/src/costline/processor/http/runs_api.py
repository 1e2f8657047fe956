"""Cost per run, conversation and session on the wire: the query of `GET /api/v1/runs` (and `GET
/api/v1/runs/<kind>/<id>`) and its answer as JSON, CSV or a table, shared with `costline runs` so that both give the
same bytes. The rows are the ledger's (`ledger.runs`); who may read which is `api.AdminApi`'s, as for usage.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from costline.processor.clock import Clock
from costline.processor.formats import CSV_TYPE, JSON_TYPE, csv_text, decimal_text, json_value
from costline.processor.ledger.runs import RUN_SCOPES
from costline.processor.ledger.schema import RUN_COUNTERS
from costline.processor.model import RUN_KINDS
from costline.processor.units import EPOCH

DEFAULT_LIMIT = 20
MAX_LIMIT = 10_000
FORMATS = ("json", "csv", "table")
TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
COUNTERS = tuple(c for c in RUN_COUNTERS if c != "cost_pico_usd")
"""The counters of a run's answer, in the ledger's order; `cost_usd` (exact USD) follows them."""
TOP_COLUMNS = ("kind", "run_id", "org", "team", "first_seen", "last_seen", *COUNTERS, "cost_usd")
RUN_COLUMNS = ("kind", "run_id", "org", "team", "project", "user", "first_seen", "last_seen", *COUNTERS, "cost_usd")
TEXT_TYPE = "text/plain; charset=utf-8"


class RunsQueryError(ValueError):
    """A bad runs query: the API answers 400 with the message, the command exits 2."""


@dataclass(frozen=True, slots=True)
class RunsQuery:
    start: datetime
    end: datetime
    kind: str | None
    scope: dict[str, str] = field(default_factory=dict)
    limit: int = DEFAULT_LIMIT
    format: str = "json"


def parse_runs_query(params: Callable[[str], str | None], now: Clock, zone: ZoneInfo, *,
                     default_format: str = "json") -> RunsQuery:
    """`month` (YYYY-MM in `zone`) or `from`/`to` (ISO; a bare date as `to` is that whole day, as for usage), `kind`,
    the owner filters of `RUN_SCOPES`, `limit` and `format`. Without a period: every run kept, up to now."""
    from costline.processor.http.api import ApiError, parse_instant
    from costline.processor.reports.chargeback.statement import Period, StatementError

    month, start_text, end_text = params("month"), params("from"), params("to")
    try:
        if month:
            if start_text or end_text:
                raise RunsQueryError("month: give either a month or from/to, not both")
            try:
                period = Period.parse(month)
            except StatementError as err:
                raise RunsQueryError(f"month: {err}") from None
            start, end = period.start(zone), period.end(zone)
        else:
            start = parse_instant(start_text, "from") if start_text else EPOCH
            end = parse_instant(end_text, "to", end_of_day=True) if end_text else now()
            if end <= start:
                raise RunsQueryError(f"to ({end.isoformat()}) must be after from ({start.isoformat()})")
    except ApiError as err:
        raise RunsQueryError(str(err)) from None
    kind = parse_kind(params("kind")) if params("kind") else None
    limit_text = params("limit")
    try:
        limit = int(limit_text) if limit_text else DEFAULT_LIMIT
    except ValueError:
        raise RunsQueryError(f"limit={limit_text!r}: must be an integer") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise RunsQueryError(f"limit={limit_text!r}: must be between 1 and {MAX_LIMIT}")
    scope = {name: value for name in RUN_SCOPES if (value := params(name))}
    return RunsQuery(start, end, kind, scope, limit, parse_format(params("format"), default_format))


def parse_kind(kind: str) -> str:
    if kind not in RUN_KINDS:
        raise RunsQueryError(f"kind={kind!r}: use one of {', '.join(RUN_KINDS)}")
    return kind


def parse_run_id(kind: str, run_id: str) -> str:
    """A run id as the ledger keeps it: a trace id is 32 hex digits (lower case), any other id as given."""
    kind = parse_kind(kind)
    if kind == "trace":
        text = run_id.strip().lower()
        if not TRACE_ID.match(text):
            raise RunsQueryError(f"trace id {run_id!r}: expected 32 hexadecimal digits, as OpenTelemetry writes it")
        return text
    if not run_id:
        raise RunsQueryError(f"no {kind} id given")
    return run_id


def parse_format(text: str | None, default: str = "json") -> str:
    fmt = (text or default).lower()
    if fmt not in FORMATS:
        raise RunsQueryError(f"format={fmt!r}: use {', '.join(FORMATS)}")
    return fmt


def render_top(query: RunsQuery, rows: Sequence[Mapping[str, Any]]) -> tuple[str, bytes]:
    """(content type, body) of the period's top runs."""
    if query.format == "json":
        document = {"from": query.start.isoformat(), "to": query.end.isoformat(), "kind": query.kind,
                    "scope": query.scope, "runs": [_json_row(row) for row in rows]}
        return JSON_TYPE, json.dumps(document, separators=(",", ":")).encode()
    return _rendered(query.format, TOP_COLUMNS, rows)


def render_run(kind: str, run_id: str, rows: Sequence[Mapping[str, Any]], fmt: str) -> tuple[str, bytes]:
    """(content type, body) of one run: its total, then its rows per owner (`rows`, not empty)."""
    if fmt == "json":
        total = run_total(rows)
        document = {"kind": kind, "run_id": run_id, **_json_row(total), "owners": [
            {k: json_value(v) for k, v in row.items() if k not in ("kind", "run_id")} for row in rows]}
        return JSON_TYPE, json.dumps(document, separators=(",", ":")).encode()
    shown = list(rows)
    if fmt == "table" and len(rows) > 1:
        shown.append({**run_total(rows), "org": "total"})
    return _rendered(fmt, RUN_COLUMNS, shown)


def run_total(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The run over all its rows: first and last seen, counters and cost summed."""
    return {"first_seen": min(r["first_seen"] for r in rows), "last_seen": max(r["last_seen"] for r in rows),
            **{c: sum(r[c] for r in rows) for c in COUNTERS},
            "cost_usd": sum((r["cost_usd"] for r in rows), Decimal(0))}


def _json_row(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: json_value(v) for k, v in row.items()}


def _rendered(fmt: str, columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> tuple[str, bytes]:
    if fmt == "csv":
        return CSV_TYPE, csv_text(columns, ([_cell(row.get(c)) for c in columns] for row in rows)).encode()
    return TEXT_TYPE, _table(columns, rows).encode()


def _cell(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _table(columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> str:
    """A fixed-width table for people: times to the second, money every digit (`decimal_text`: run costs are often
    fractions of a cent), numbers right-aligned."""
    shown = [c for c in columns if c not in ("errors", "reasoning_tokens", "cache_write_tokens")]
    heads = [_TABLE_HEADS.get(c, c) for c in shown]
    cells = [[_table_cell(row.get(c)) for c in shown] for row in rows]
    widths = [max([len(h), *(len(line[i]) for line in cells)]) for i, h in enumerate(heads)]
    numeric = [c in COUNTERS or c == "cost_usd" for c in shown]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if n else v.ljust(w) for v, w, n in zip(values, widths, numeric, strict=True)
                         ).rstrip()

    lines = [line(heads), *(line(c) for c in cells)]
    if not rows:
        lines.append("(no runs)")
    return "\n".join(lines) + "\n"


_TABLE_HEADS = {"input_tokens": "input", "output_tokens": "output", "cache_read_tokens": "cache_read",
                "unpriced_requests": "unpriced", "usage_missing_requests": "no_usage"}
"""Shorter headings for the table (CSV and JSON keep the ledger's names)."""


def _table_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, Decimal):
        return decimal_text(value)
    return str(value)
