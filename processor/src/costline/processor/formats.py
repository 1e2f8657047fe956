"""Money and data as they go on the wire, spelled once: content types and CSV cells. Reports (statements,
reconciliation, FOCUS) and the HTTP API write through these, so a report never imports the HTTP layer."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from costline.processor.units import usd_text

JSON_TYPE = "application/json"
CSV_TYPE = "text/csv; charset=utf-8"


FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
"""What makes a spreadsheet read a CSV cell as a formula (OWASP, "CSV Injection")."""


def csv_cell(value: Any) -> str:
    """One CSV cell as it goes on the wire: the only place the project turns a value into CSV text.

    Numbers (the ledger's counters and costs) are written as they are: `-1.5` in a numeric column is data, and a
    spreadsheet must read it as a number. Text (owner, model, any group value) is what a sender controls, so a text
    cell starting with a formula character gets a leading `'` and is quoted, per OWASP: a team named
    `=HYPERLINK(...)` reaches the spreadsheet as that text, not as a live formula. Other cells are quoted only
    where RFC 4180 needs it (`,`, `"`, CR, LF), so ordinary rows read as before. Written here rather than with the
    csv module, which cannot quote one chosen field.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return repr(value)  # shortest exact round-trip: finance gets every digit the ledger has
    if isinstance(value, Decimal):
        return usd_text(value)
    if isinstance(value, int):
        return str(value)
    text = value.isoformat() if isinstance(value, (datetime, date)) else str(value)
    neutralised = text.startswith(FORMULA_PREFIXES)
    if neutralised:
        text = "'" + text
    if neutralised or any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text
