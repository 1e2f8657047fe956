"""Money and data as they go on the wire, spelled once: content types, money as text and JSON, cents, CSV cells and
the one CSV writer. Reports (statements, reconciliation, FOCUS) and the HTTP API write through these, so a report
never imports the HTTP layer and no two outputs spell the same amount differently.

Money in text is always plain decimal notation: `Decimal`'s `str()` switches to exponent form below 10^-6
(`1E-12` for one pico-dollar), which spreadsheets and most JSON readers take for a float or for text. Hence no
module formats a `Decimal` with `str()`; it calls `usd_text` (every digit the amount has), `decimal_text` (trailing
zeros dropped: rates, percents, exact shares) or `cents_text` (rounded to the cent, for people).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from costline.processor.units import round_cents

JSON_TYPE = "application/json"
CSV_TYPE = "text/csv; charset=utf-8"
CSV_NEWLINE = "\r\n"
"""RFC 4180's line ending, which spreadsheets expect: every CSV the project writes ends its lines with it."""


def usd_text(usd: Decimal) -> str:
    """An amount of USD as plain decimal text, every digit kept, never in exponent form (`0.000000000000`, not
    `0E-12`; `0.000000000001`, not `1E-12`): what the JSON API, the statement's billed amounts and CSV carry."""
    return format(usd, "f")


def decimal_text(value: Decimal | None) -> str:
    """A decimal without exponent or trailing zeros (`0.000123`, `15`, `2.5`; None is empty): exact amounts, rates and
    percents as people write them."""
    if value is None:
        return ""
    return f"{value.normalize():f}"


def cents_text(usd: Decimal) -> str:
    """USD rounded half-up to the cent, with thousands separators (`1,234.50`): amounts as people read them."""
    return f"{round_cents(usd):,}"


def json_value(value: Any) -> Any:
    """A value as JSON carries it. Money (`Decimal` USD) is an exact decimal string (`usd_text`): a JSON number is a
    double to most readers, which would round it. Dates are ISO 8601; a float that JSON cannot hold (inf, NaN) is
    null. Anything else is returned as it is."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return usd_text(value)
    return value


def json_default(value: Any) -> Any:
    """`json.dumps`'s `default`: what JSON cannot write itself (money, dates) as `json_value` writes it."""
    converted = json_value(value)
    if converted is value:
        raise TypeError(f"{type(value).__name__} is not JSON serialisable")
    return converted


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


def csv_text(header: Sequence[str], rows: Iterable[Iterable[Any]], cell: Callable[[Any], str] = csv_cell) -> str:
    """A CSV document: the header, then one line per row, every cell written once by `cell` (`csv_cell`, or a
    format's own rule for some values that falls back to it) and never quoted again, lines ended by `CSV_NEWLINE`.
    The only CSV writer: the usage export, the statement, FOCUS and the reconciliation write through it."""
    lines = [",".join(csv_cell(name) for name in header)]
    lines.extend(",".join(cell(value) for value in row) for row in rows)
    return CSV_NEWLINE.join(lines) + CSV_NEWLINE
