"""Customers' cost and margin: a month of the ledger per customer (tenant, the `customer` owner dimension), set
against what they pay (`chargeback.customers.revenue`), for companies that resell AI features.

Exact to the cent, by the statement's rules (`statement.py`):

* **cost**: the customer's token cost (exact pico-dollars) plus its share of each self-hosted fleet. The token cost of
  all customers is rounded half-up to the cent once and spread over them by largest remainder; each fleet's monthly
  cost (whole cents) is split by largest remainder in proportion to the customers' consumption of its models (a fleet
  nobody used stays unallocated). Calls without a customer are listed under the customer `""` (shown `(none)`).
* **revenue**: `per_customer_usd` (a fixed amount per month) plus `per_outcome_usd` x the customer's outcomes
  (`costline.outcome(name, customer=...)`), each customer's exact revenue rounded half-up to the cent and spread
  over its lines by largest remainder.
* **margin** = revenue - cost. Per outcome: the customer's cost split over its outcome counts by largest remainder
  (cost per outcome), against that outcome's revenue.
* **budget**: `chargeback.customers.budgets_usd`, the month's cost limit; `over_budget` when the cost exceeds it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from costline.processor.clock import Clock
from costline.processor.config.chargeback import ChargebackConfig, Fleet
from costline.processor.formats import JSON_TYPE, cents_text, usd_text
from costline.processor.reports.chargeback.fleets import FLEET_GROUPS, consumption, fleet_use
from costline.processor.reports.chargeback.statement import (
    TOKEN_COLUMNS,
    Period,
    StatementError,
    allocate,
    round_to_total,
)
from costline.processor.units import round_cents

FORMATS = ("table", "json")
TEXT_TYPE = "text/plain; charset=utf-8"
ZERO = Decimal("0.00")


@dataclass(frozen=True, slots=True)
class OutcomeMargin:
    name: str
    count: int
    revenue: Decimal
    cost: Decimal

    @property
    def margin(self) -> Decimal:
        return self.revenue - self.cost

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "count": self.count, "revenue_usd": usd_text(self.revenue),
                "cost_usd": usd_text(self.cost), "margin_usd": usd_text(self.margin)}


@dataclass(frozen=True, slots=True)
class CustomerStatement:
    customer: str
    requests: int
    tokens: int
    token_cost_exact: Decimal
    token_cost: Decimal
    fleet: Mapping[str, Decimal]
    """Fleet name -> the customer's share (whole cents)."""
    revenue: Decimal
    fixed_revenue: Decimal
    outcomes: tuple[OutcomeMargin, ...]
    budget: Decimal | None = None

    @property
    def cost(self) -> Decimal:
        return self.token_cost + sum(self.fleet.values(), ZERO)

    @property
    def margin(self) -> Decimal:
        return self.revenue - self.cost

    def as_dict(self) -> dict[str, Any]:
        return {"customer": self.customer, "requests": self.requests, "tokens": self.tokens,
                "token_cost_usd": usd_text(self.token_cost), "token_cost_exact_usd": str(self.token_cost_exact),
                "fleet_usd": {k: usd_text(v) for k, v in sorted(self.fleet.items())},
                "cost_usd": usd_text(self.cost), "revenue_usd": usd_text(self.revenue),
                "fixed_revenue_usd": usd_text(self.fixed_revenue), "margin_usd": usd_text(self.margin),
                "outcomes": [o.as_dict() for o in self.outcomes],
                "budget_usd": None if self.budget is None else usd_text(self.budget),
                "over_budget": self.budget is not None and self.cost > self.budget}


@dataclass(frozen=True, slots=True)
class FleetMonth:
    """A fleet's month across customers: for the statement's `fleets` and the effective-rate gauge."""

    name: str
    cost: Decimal
    tokens: int
    consumption: int
    allocated: Decimal


@dataclass(frozen=True, slots=True)
class CustomersStatement:
    period: Period
    timezone: str
    start: datetime
    end: datetime
    customers: tuple[CustomerStatement, ...]
    fleets: tuple[FleetMonth, ...] = field(default=())

    def totals(self) -> dict[str, Decimal]:
        return {"cost": sum((c.cost for c in self.customers), ZERO),
                "revenue": sum((c.revenue for c in self.customers), ZERO),
                "margin": sum((c.margin for c in self.customers), ZERO)}

    def as_dict(self) -> dict[str, Any]:
        totals = self.totals()
        return {"period": str(self.period), "timezone": self.timezone, "currency": "USD",
                "from": self.start.isoformat(), "to": self.end.isoformat(),
                "customers": [c.as_dict() for c in self.customers],
                "fleets": [{"name": f.name, "cost_usd": usd_text(f.cost), "tokens": f.tokens,
                            "allocated_usd": usd_text(f.allocated), "unallocated_usd": usd_text(f.cost - f.allocated)}
                           for f in self.fleets],
                **{f"{k}_usd": usd_text(v) for k, v in totals.items()}}


def build_customers(config: ChargebackConfig | None, fleets: Sequence[Fleet], period: Period, tz: ZoneInfo,
                    rows: Sequence[Mapping[str, Any]], outcomes: Sequence[Mapping[str, Any]]
                    ) -> CustomersStatement:
    """The customers' month from ledger `rows` grouped by customer, provider and model, and outcome rows grouped
    by customer and name (the module's docstring has the arithmetic)."""
    settings = config.customers if config is not None else None
    rates = (settings.revenue.per_outcome_usd or {}) if settings else {}
    fixed = settings.revenue.per_customer_usd if settings else {}
    budgets = settings.budgets_usd if settings else {}
    acc: dict[str, dict[str, Any]] = {}
    for row in rows:
        slot = acc.setdefault(row["customer"], {"requests": 0, "tokens": 0, "cost": Decimal(0)})
        slot["requests"] += int(row["requests"])
        slot["tokens"] += sum(int(row[c]) for c in TOKEN_COLUMNS)
        slot["cost"] += Decimal(row["cost_usd"])
    counted: dict[str, dict[str, int]] = {}
    for row in outcomes:
        names = counted.setdefault(row["customer"], {})
        names[row["name"]] = names.get(row["name"], 0) + int(row["count"])
    order = sorted(set(acc) | set(counted) | set(fixed) | set(budgets))
    exact = [acc.get(c, {}).get("cost", Decimal(0)) for c in order]
    token_costs = round_to_total(exact, round_cents(sum(exact, Decimal(0)))) if order else []
    used = fleet_use(rows, fleets, ("customer",))
    shares: dict[str, dict[str, Decimal]] = {c: {} for c in order}
    months = []
    for fleet in fleets:
        weights = [used.get((c,), {}).get(fleet.name, 0) for c in order]
        tokens = sum(sum(int(r[col]) for col in TOKEN_COLUMNS) for r in rows
                     if fleet.serves(r["provider"], r["model"]))
        total = sum(weights)
        allocated = ZERO
        if total:
            for c, cents in zip(order, allocate(int(fleet.cost.usd * 100), [Decimal(w) for w in weights]),
                                strict=True):
                if cents:
                    shares[c][fleet.name] = Decimal(cents) / 100
            allocated = fleet.cost.usd
        months.append(FleetMonth(fleet.name, fleet.cost.usd, tokens, total, allocated))
    out = []
    for c, token_cost, in zip(order, token_costs, strict=True):
        slot = acc.get(c, {"requests": 0, "tokens": 0, "cost": Decimal(0)})
        names = counted.get(c, {})
        revenue_lines = [fixed.get(c, Decimal(0)), *(rates.get(n, Decimal(0)) * names[n] for n in sorted(names))]
        revenue = round_cents(sum(revenue_lines, Decimal(0)))
        rounded = round_to_total(revenue_lines, revenue)
        cost = token_cost + sum(shares[c].values(), ZERO)
        costs = allocate(int(cost * 100), [Decimal(names[n]) for n in sorted(names)]) \
            if names and sum(names.values()) else [0] * len(names)
        margins = tuple(OutcomeMargin(n, names[n], r, Decimal(k) / 100)
                        for n, r, k in zip(sorted(names), rounded[1:], costs, strict=True))
        out.append(CustomerStatement(c, slot["requests"], slot["tokens"], slot["cost"], token_cost, shares[c],
                                     revenue, rounded[0], margins, budgets.get(c)))
    return CustomersStatement(period, str(tz), period.start(tz), period.end(tz), tuple(out), tuple(months))


def customers_for(config: Any, ledger: Any, period: Period) -> CustomersStatement:
    tz = ZoneInfo(config.timezone)
    start, end = period.ledger_bounds(tz)
    rows = ledger.usage(start, end, ["customer", *FLEET_GROUPS], tz=tz)
    outcomes = ledger.outcomes.outcomes(start, end, ["customer", "name"])
    return build_customers(config.chargeback, config.fleets, period, tz, rows, outcomes)


def customers_document(config: Any, ledger: Any, period: Period | None, customer: str | None, fmt: str, *,
                       clock: Clock) -> tuple[str, bytes]:
    """(content type, body) of `costline customers` and `GET /api/v1/customers`: one function, the same bytes."""
    if fmt not in FORMATS:
        raise StatementError(f"format={fmt!r}: use one of {', '.join(FORMATS)}")
    zone = ZoneInfo(config.timezone)
    if period is None:
        period = Period.containing(clock().astimezone(zone), zone)
    statement = customers_for(config, ledger, period)
    if customer is not None:
        kept = tuple(c for c in statement.customers if c.customer == customer)
        if not kept:
            raise StatementError(f"customer {customer!r} has no cost or revenue in {period}")
        statement = CustomersStatement(statement.period, statement.timezone, statement.start, statement.end, kept,
                                       statement.fleets)
    if fmt == "json":
        return JSON_TYPE, json.dumps(statement.as_dict(), indent=1).encode() + b"\n"
    return TEXT_TYPE, _table(statement).encode()


def _table(statement: CustomersStatement) -> str:
    out = [f"Customers {statement.period} ({statement.timezone}), USD", ""]
    width = 30
    for c in statement.customers:
        out.append(f"{c.customer or '(none)'}  [{c.tokens:,} tokens in {c.requests:,} requests]")
        out.append(f"  {'token cost':<{width}}{cents_text(c.token_cost):>14}")
        for name, share in sorted(c.fleet.items()):
            out.append(f"  {'fleet ' + name:<{width}}{cents_text(share):>14}")
        out.append(f"  {'cost':<{width}}{cents_text(c.cost):>14}"
                   + (f"  budget {cents_text(c.budget)}{' EXCEEDED' if c.cost > c.budget else ''}"
                      if c.budget is not None else ""))
        if c.fixed_revenue:
            out.append(f"  {'revenue per customer':<{width}}{cents_text(c.fixed_revenue):>14}")
        for o in c.outcomes:
            out.append(f"  {'outcome ' + o.name:<{width}}{cents_text(o.revenue):>14}  {o.count:,} outcomes, cost "
                       f"{cents_text(o.cost)}, margin {cents_text(o.margin)}")
        out.append(f"  {'revenue':<{width}}{cents_text(c.revenue):>14}")
        out.append(f"  {'margin':<{width}}{cents_text(c.margin):>14}")
        out.append("")
    totals = statement.totals()
    for name in ("cost", "revenue", "margin"):
        out.append(f"{name.upper():<{width + 2}}{cents_text(totals[name]):>14}")
    for f in statement.fleets:
        if f.allocated != f.cost:
            out.append(f"fleet {f.name}: {cents_text(f.cost - f.allocated)} unallocated (no use this month)")
    return "\n".join(out) + "\n"
