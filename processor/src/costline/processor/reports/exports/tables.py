"""The exports' Parquet schemas, derived from the ledger's own columns (one owner: `ledger.schema`), and the rows
made into Arrow tables. docs/exports.md describes them column by column; a test checks the two agree."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import pyarrow as pa

from costline.processor.ledger.schema import COUNTERS, DIMENSIONS
from costline.processor.units import USD_DECIMALS, pico_to_usd

MONEY = pa.decimal128(38, USD_DECIMALS)
"""Exact USD: 26 digits before the point, the ledger's 12 after (pico-dollars)."""
_PICO = "_pico_usd"


def _usd_name(counter: str) -> str:
    return counter[: -len(_PICO)] + "_usd" if counter.endswith(_PICO) else counter


USAGE_SCHEMA = pa.schema([
    pa.field("hour_start", pa.timestamp("s", tz="UTC"), nullable=False),
    *(pa.field(name, pa.string(), nullable=False) for name in DIMENSIONS if name != "hour"),
    *(pa.field(_usd_name(name), MONEY if name.endswith(_PICO) else pa.int64(), nullable=False) for name in COUNTERS),
])
"""The `usage` dataset: one row per stored ledger row (UTC hour × owner × call dimensions), every counter; money
columns in USD (`cost_pico_usd` → `cost_usd`)."""


def usage_table(rows: Iterable[Mapping[str, Any]]) -> pa.Table:
    rows = list(rows)
    columns: dict[str, list[Any]] = {"hour_start": [datetime.fromtimestamp(r["hour"], tz=timezone.utc) for r in rows]}
    for name in DIMENSIONS:
        if name != "hour":
            columns[name] = [r[name] for r in rows]
    for name in COUNTERS:
        values = [int(r[name] or 0) for r in rows]
        columns[_usd_name(name)] = [pico_to_usd(v) for v in values] if name.endswith(_PICO) else values
    return pa.table(columns, schema=USAGE_SCHEMA)


FOCUS_DATETIMES = frozenset({"BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd"})
FOCUS_DECIMALS = frozenset({"ListCost", "ContractedCost", "BilledCost", "EffectiveCost", "PricingQuantity",
                            "ConsumedQuantity", "x_ReportedCost", "x_ChargebackMarkupPct", "x_ChargebackAmount",
                            "x_ChargebackExact"})
_COUNT_SUFFIXES = ("Requests", "Tokens", "Searches", "Executions", "Disagreements")


def _type_without_values(name: str) -> pa.DataType:
    """The type of a column no row of the day fills (an empty day; a day of untagged usage only): the one it has
    on the days that fill it, or DuckDB reading the days together makes it text (it unifies DECIMAL with the
    string an all-null column would get)."""
    if name in FOCUS_DECIMALS:
        return MONEY
    if name.startswith("x_") and name.endswith(_COUNT_SUFFIXES):
        return pa.int64()
    return pa.string()


def focus_table(columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> pa.Table:
    """FOCUS rows as a table: date-times as UTC timestamps, decimals as `MONEY`, whole numbers as int64, the rest text
    (a column's type follows its values, so columns added to the FOCUS mapping need nothing here)."""
    fields, data = [], {}
    for name in columns:
        values = [row.get(name) for row in rows]
        present = [v for v in values if v is not None]
        if name in FOCUS_DATETIMES:
            kind: pa.DataType = pa.timestamp("s", tz="UTC")
            values = [None if v is None else datetime.strptime(v, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
                      for v in values]
        elif any(isinstance(v, Decimal) for v in present):
            kind = MONEY
        elif present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
            kind = pa.int64()
        elif not present:
            kind = _type_without_values(name)
        else:
            kind = pa.string()
            values = [None if v is None else str(v) for v in values]
        fields.append(pa.field(name, kind))
        data[name] = values
    return pa.table(data, schema=pa.schema(fields))
