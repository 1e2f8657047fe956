"""A statement as JSON, CSV or a text table: the same document for `costline chargeback` and the API.

Amounts are decimal strings with two places (`"1234.50"`): a JSON number would pass through a double on the way
into most tools, and finance's figures must arrive as they were computed.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from costline.processor.formats import CSV_TYPE, JSON_TYPE, cents_text, csv_text, decimal_text
from costline.processor.reports.chargeback.periods import document_bytes
from costline.processor.reports.chargeback.statement import UNMAPPED, Statement

TEXT_TYPE = "text/plain; charset=utf-8"
FORMATS = ("table", "csv", "json", "focus", "html")
"""`focus` and `html` need more of the ledger than the statement: `report.chargeback_document` makes them."""
HTML_TYPE = "text/html; charset=utf-8"

CSV_COLUMNS = ("period", "team", "org", "team_name", "component", "line", "quantity", "amount_usd", "exact_usd", "detail")
"""One row per line, then a `total` row per team and one for the statement (team and org empty)."""


CONTENT_TYPES = {"table": TEXT_TYPE, "csv": CSV_TYPE, "json": JSON_TYPE, "focus": CSV_TYPE, "html": HTML_TYPE}


def render(statement: Statement, fmt: str, *, last: bool = True) -> tuple[str, bytes]:
    """(content type, body). `last`: the statement is whole or this is its last page (the CSV's statement total row
    is on it only, so that pages put together hold it once)."""
    if fmt == "json":
        return JSON_TYPE, document_bytes(statement)
    if fmt == "csv":
        return CSV_TYPE, _csv(statement, last)
    if fmt == "table":
        return TEXT_TYPE, _table(statement).encode()
    raise ValueError(f"format {fmt!r}: use one of {', '.join(FORMATS)}")


def _csv(statement: Statement, last: bool = True) -> bytes:
    period = str(statement.period)
    rows: list[tuple[Any, ...]] = []
    for team in statement.teams:
        for line in team.lines:
            rows.append((period, team.key, team.org, team.team, line.component, line.name, line.quantity,
                         line.amount, Decimal(decimal_text(line.exact)), line.detail))
        rows.append((period, team.key, team.org, team.team, "total", "", None, team.total, None, ""))
    if last:
        rows.append((period, "", "", "", "total", "", None, statement.total, None, "statement total"))
    return csv_text(CSV_COLUMNS, rows).encode()


def _table(statement: Statement) -> str:
    out = [f"Chargeback {statement.period} ({statement.timezone}, {statement.start.date()} to "
           f"{statement.end.date()} exclusive), USD"
           + (f"; closed {statement.closed_at.isoformat()}, frozen" if statement.closed_at else ""), ""]
    width = 34
    for team in statement.teams:
        u = team.usage
        head = f"{team.key}  [{team.model}"
        head += f", markup {decimal_text(team.markup_pct)} % from {team.markup_source}]" if team.model == "cost-plus" \
            else "]"
        out.append(head)
        out.append(f"  {u.tokens:,} tokens in {u.requests:,} requests"
                   + (f"; {u.unpriced_tokens:,} tokens of {u.unpriced_requests:,} calls still unpriced"
                      if u.unpriced_requests else ""))
        for line in team.lines:
            label = line.component.replace("_", " ") + (f" {line.name}" if line.name else "")
            out.append(f"  {label:<{width}}{line.amount:>14,}  {line.detail}")
        out.append(f"  {'total':<{width}}{team.total:>14,}")
        out.append("")
    for component, amount in statement.components.items():
        out.append(f"{component.replace('_', ' '):<{width + 2}}{amount:>14,}")
    out.append(f"{'TOTAL':<{width + 2}}{statement.total:>14,}")
    if statement.untracked:
        how = "charged above" if statement.untracked_rule == "charge" else "shown, not charged"
        out.extend(["", f"Untracked spend (billed by providers, seen by no span; {how}), USD"])
        for key, usd in sorted(statement.untracked.items(), key=lambda kv: (kv[0] == UNMAPPED, kv[0])):
            label = "unmapped provider identities" if key == UNMAPPED else key
            out.append(f"  {label:<{width}}{cents_text(usd):>14}  {decimal_text(usd)}")
    return "\n".join(out) + "\n"
