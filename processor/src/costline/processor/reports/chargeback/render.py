"""A statement as JSON, CSV or a text table: the same document for `costline chargeback` and the API.

Amounts are decimal strings with two places (`"1234.50"`): a JSON number would pass through a double on the way
into most tools, and finance's figures must arrive as they were computed.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from costline.processor.formats import CSV_TYPE, JSON_TYPE, cents_text, csv_text, decimal_text
from costline.processor.reports.chargeback.periods import document_bytes
from costline.processor.reports.chargeback.statement import UNMAPPED, Statement, TeamUsage

TEXT_TYPE = "text/plain; charset=utf-8"
FORMATS = ("table", "csv", "json", "focus", "html")
"""`focus` and `html` need more of the ledger than the statement: `report.chargeback_document` makes them."""
HTML_TYPE = "text/html; charset=utf-8"

CSV_COLUMNS = ("period", "team", "org", "team_name", "component", "line", "quantity", "amount_usd", "exact_usd", "detail")
"""One row per line, then a `total` row per team, then rows that charge nothing (amounts empty), only where there is
something to say: `unpriced` and `usage_missing` (quantity: calls whose cost is unknown, never $0) and
`reported_cost` (quantity: calls with a cost someone else reported; the figures in the detail); last, a `total` row
for the statement (team and org empty)."""
NOTES = ("unpriced", "usage_missing", "reported_cost")
"""The CSV's rows that charge nothing, in order."""


def notes(usage: TeamUsage) -> list[tuple[str, int, str]]:
    """(component, calls, detail) of what a team's statement says beside its charges: the calls whose cost is
    unknown (unpriced, without usage) and the comparison with a cost others reported, where there is one."""
    out = []
    if usage.unpriced_requests:
        out.append(("unpriced", usage.unpriced_requests,
                    f"{usage.unpriced_tokens:,} tokens waiting for a price: cost unknown, not charged yet"))
    if usage.usage_missing_requests:
        out.append(("usage_missing", usage.usage_missing_requests,
                    "spans reported no usage: cost unknown, not charged (docs/sources.md, usage missing)"))
    if usage.reported_cost_requests:
        out.append(("reported_cost", usage.reported_cost_requests,
                    f"reported {decimal_text(usage.reported_cost)} USD against Costline's price "
                    f"{decimal_text(usage.priced_cost_of_reported)} USD; {usage.cost_disagreements:,} "
                    "differ by more than 1 %"))
    return out


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
        rows.extend((period, team.key, team.org, team.team, component, "", calls, None, None, detail)
                    for component, calls, detail in notes(team.usage))
    if last:
        rows.append((period, "", "", "", "total", "", None, statement.total, None, "statement total"))
    return csv_text(CSV_COLUMNS, rows).encode()


def _calls(n: int) -> str:
    return f"{n:,} call" + ("" if n == 1 else "s")


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
        if u.usage_missing_requests:
            out.append(f"  {_calls(u.usage_missing_requests)} without usage: cost unknown, not charged")
        if u.reported_cost_requests:
            out.append(f"  cost reported for {_calls(u.reported_cost_requests)}: {decimal_text(u.reported_cost)}; "
                       f"Costline's price {decimal_text(u.priced_cost_of_reported)} "
                       f"({u.cost_disagreements:,} differ by more than 1 %)")
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
