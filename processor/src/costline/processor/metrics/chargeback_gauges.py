"""The open period's statement as Prometheus gauges: `costline_chargeback_usd{org, team, component}`.

Making a statement reads a month of the ledger (and, for corrections, the closed months before it), far too much for
a scrape. `ChargebackTotals` makes the current month's statement on a background thread — soon after commits (at most
every `min_gap_s`) and every `interval_s`, because `costline reprice`, `close-period` and other processors write the
same ledger from other processes — and `ChargebackCollector` serves the latest one. Each refresh first reads a cheap
digest of the statements' inputs (`report.inputs_of`) and remakes nothing when it has not changed (an idle processor
does not remake its statements every `interval_s`), and a remake waits `duty` times as long as the last one took (a
busy receiver that commits every second does not spend its core on statements). Each gauge is the sum of a
team's rounded lines of one component, so the gauges of a team add up to its statement total and all of them to the
grand total, to the cent, as on `costline chargeback`. Last month's team totals (the frozen statement once it is
closed) are served beside them, for month-to-date against last month.

The series are bounded like every owner label's (`metrics.cardinality_limit`, or the `org` / `team` entries of
`metrics.cardinality_limits`): past the limit, the orgs and teams charged most this month (then last month) keep
their names and the rest are summed under `__overflow__`, so the gauges still add up to the statement's total.

Beside them, from the same refresh (`reports/chargeback/customers.py`): per customer the month-to-date cost,
revenue, margin and budget (`costline_customer_{cost,revenue,margin,budget}_usd{customer}`, bounded by the
`customer` label's cardinality limit the same way), and per self-hosted fleet the month-to-date effective rate
`costline_fleet_effective_usd_per_token{fleet}`: the fleet's cost accrued so far (its monthly cost x the elapsed
fraction of the month) / the tokens its models served so far (no series while it has served none: never a division
by zero). The refresh keeps each fleet's monthly cost and tokens; the elapsed fraction is read from the clock at each
scrape, because the rate moves with time alone: an idle processor remakes no statement (its digest is unchanged),
yet its fleets' rates rise hour by hour.

Without a `chargeback:` section nothing is served (no family at all): nothing says how teams are charged.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from operator import add
from typing import Any
from zoneinfo import ZoneInfo

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from costline.processor.clock import Clock
from costline.processor.ledger import LedgerUnavailable
from costline.processor.overflow import OVERFLOW, folded, kept_values
from costline.processor.refresher import Refreshed, Refresher
from costline.processor.reports.chargeback.customers import customers_for
from costline.processor.reports.chargeback.report import inputs_of, statement_for
from costline.processor.reports.chargeback.statement import Period

log = logging.getLogger("costline.processor.metrics.chargeback_gauges")

CHARGEBACK = "costline_chargeback_usd"
LAST_PERIOD = "costline_chargeback_last_period_usd"
LABELS = ("org", "team", "component")


@dataclass(frozen=True, slots=True)
class ChargebackSnapshot:
    period: Period
    start: float
    """Unix time of the period's first instant in the configured zone."""
    components: Mapping[tuple[str, str, str], Decimal]
    """(org, team, component) -> USD in whole cents."""
    last_period: Mapping[tuple[str, str], Decimal]
    """(org, team) -> last month's total (whole cents), for every team of either month."""
    end: float
    """Unix time of the period's end (its next month's first instant)."""
    read_at: float
    customers: Mapping[str, tuple[Decimal, Decimal, Decimal, Decimal | None]] = field(default_factory=dict)
    """customer -> (cost, revenue, margin, budget or None), month to date, whole cents."""
    fleets: Mapping[str, tuple[Decimal, int]] = field(default_factory=dict)
    """fleet -> (its monthly cost, tokens served so far this month)."""

    def fleet_rates(self, now: datetime) -> dict[str, Decimal]:
        """fleet -> its effective USD per token at `now`: the monthly cost x the elapsed fraction of the period
        (clamped to it) / the tokens served; fleets that served no token have none."""
        length = Decimal(repr(self.end - self.start))
        elapsed = min(max(Decimal(repr(now.timestamp() - self.start)), Decimal(0)), length)
        return {name: cost * elapsed / length / tokens for name, (cost, tokens) in self.fleets.items() if tokens}


@dataclass
class ChargebackTotals(Refreshed):
    """The current month's statement, re-made after commits (debounced) and on a timer. A failed read keeps the
    last snapshot (and logs); a config without `chargeback:` clears it."""

    ledger: Any
    """A `Ledger`: its usage and its outcome counts (value-based charges)."""
    config: Callable[[], Any]
    clock: Clock
    interval_s: float = 30.0
    min_gap_s: float = 2.0
    duty: float = 4.0
    """A statement is remade no sooner than `duty` x the last remake's duration after it: at most 1/(1+duty) of a
    core, however often the ledger commits."""
    builds: int = field(default=0, init=False)
    """Statements remade so far (the work a refresh did, for tests and the debug log)."""
    _snapshot: ChargebackSnapshot | None = field(default=None, init=False)
    _made_from: tuple[Any, Any] | None = field(default=None, init=False)
    _next_build: float = field(default=0.0, init=False)
    _refresher: Refresher = field(init=False)

    def __post_init__(self) -> None:
        # Debounced harder than the period gauges: a statement reads a whole month of the ledger.
        self._refresher = Refresher(lambda: self.refresh(), "costline-chargeback-gauges", interval_s=self.interval_s,
                                    min_gap_s=self.min_gap_s)

    def snapshot(self) -> ChargebackSnapshot | None:
        return self._snapshot

    def refresh(self) -> ChargebackSnapshot | None:
        """Make the statement now (the background thread calls this; tests may too)."""
        config = self.config()
        if config.chargeback is None:
            self._snapshot = None
            return None
        zone = ZoneInfo(config.timezone)
        period = Period.containing(self.clock(), zone)
        if time.monotonic() < self._next_build:
            # Come back after `min_gap_s` (a check, no read) rather than leave a last commit for the timer.
            self._refresher.changed()
            return self._snapshot
        try:
            inputs = (config, inputs_of(config, self.ledger, period))
            if self._made_from is not None and self._made_from[0] is config and self._made_from[1] == inputs[1]:
                return self._snapshot
            began = time.monotonic()
            current = statement_for(config, self.ledger, period, clock=self.clock)
            previous = statement_for(config, self.ledger, period.previous(), clock=self.clock)
        except LedgerUnavailable as err:
            log.warning("chargeback gauges not refreshed: %s", err)
            return self._snapshot
        self.builds += 1
        self._made_from = inputs
        self._next_build = time.monotonic() + self.duty * (time.monotonic() - began)
        components: dict[tuple[str, str, str], Decimal] = {}
        for team in current.teams:
            for line in team.lines:
                key = (team.org, team.team, line.component)
                components[key] = components.get(key, Decimal(0)) + line.amount
        # Every team charged this month has a figure for last month, $0 when it had no statement then: a team
        # new this month is compared with nothing spent, not left out of the comparison.
        last = {(t.org, t.team): Decimal("0.00") for t in current.teams}
        last.update({(t.org, t.team): t.total for t in previous.teams})
        limits = config.metrics
        components, last = _capped(components, last, [limits.cardinality_limits.get(label, limits.cardinality_limit)
                                                      for label in LABELS[:2]])
        now = self.clock()
        month = customers_for(config, self.ledger, period)
        fleets = {f.name: (f.cost, f.tokens) for f in month.fleets}
        customers = {c.customer: (c.cost, c.revenue, c.margin, c.budget) for c in month.customers}
        kept = kept_values({k: v[0] for k, v in customers.items()},
                           limits.cardinality_limits.get("customer", limits.cardinality_limit))
        if kept is not None:
            folded_customers: dict[str, tuple[Decimal, Decimal, Decimal, Decimal | None]] = {}
            for name, (cost, revenue, margin, budget) in customers.items():
                key = name if name in kept else OVERFLOW
                was = folded_customers.get(key, (Decimal(0), Decimal(0), Decimal(0), None))
                folded_customers[key] = (was[0] + cost, was[1] + revenue, was[2] + margin,
                                         budget if key == name else None)
            customers = folded_customers
        self._snapshot = ChargebackSnapshot(period, period.start(zone).timestamp(), components, last,
                                            period.end(zone).timestamp(), now.timestamp(), customers, fleets)
        return self._snapshot


def _capped(components: dict[tuple[str, str, str], Decimal], last: dict[tuple[str, str], Decimal], limits: list[int]
            ) -> tuple[dict[tuple[str, str, str], Decimal], dict[tuple[str, str], Decimal]]:
    """Per label (org, then team), the `limit` values charged most this month, then last month, keep their names;
    the others become `__overflow__` and their amounts are summed, so every total stays exact."""
    for index, limit in enumerate(limits):
        weight: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
        for key, amount in components.items():
            weight[key[index]][0] += amount
        for key, amount in last.items():
            weight[key[index]][1] += amount
        kept = kept_values(weight, limit)
        if kept is not None:
            components, last = folded(components, index, kept, add), folded(last, index, kept, add)
    return components, last


class ChargebackCollector(Collector):
    """The latest `ChargebackSnapshot` as gauges, built fresh on every scrape from the snapshot and, for the fleets'
    accrued cost, the time of the scrape (`clock`: the one the totals read)."""

    def __init__(self, snapshot: Callable[[], ChargebackSnapshot | None], clock: Clock) -> None:
        self._snapshot = snapshot
        self._clock = clock

    def describe(self) -> Iterator:
        return iter(())

    def collect(self) -> Iterator[GaugeMetricFamily]:
        snapshot = self._snapshot()
        if snapshot is None:  # no `chargeback:` section, or not made yet
            return
        charged = GaugeMetricFamily(
            CHARGEBACK, "Charges of the open period (the current calendar month in the configured time zone) per "
            "team and statement component, in USD rounded to the cent as on `costline chargeback`: a team's "
            "components add up to its statement total.", labels=list(LABELS))
        for labels, amount in sorted(snapshot.components.items()):
            charged.add_metric(list(labels), float(amount))
        last = GaugeMetricFamily(
            LAST_PERIOD, "Each team's statement total for the previous calendar month (the frozen statement once "
            "that month is closed), in USD; 0 for a team charged this month only.", labels=["org", "team"])
        for labels, amount in sorted(snapshot.last_period.items()):
            last.add_metric(list(labels), float(amount))
        yield charged
        yield last
        families = {name: GaugeMetricFamily(f"costline_customer_{name}_usd", text, labels=["customer"])
                    for name, text in (("cost", "Each customer's cost this month so far (token cost and fleet share), "
                                                "in USD rounded to the cent as on `costline customers`."),
                                       ("revenue", "Each customer's revenue this month so far "
                                                   "(`chargeback.customers.revenue`), in USD."),
                                       ("margin", "Each customer's margin this month so far: revenue - cost, USD."),
                                       ("budget", "Each customer's monthly cost budget "
                                                  "(`chargeback.customers.budgets_usd`), USD."))}
        for customer, (cost, revenue, margin, budget) in sorted(snapshot.customers.items()):
            families["cost"].add_metric([customer], float(cost))
            families["revenue"].add_metric([customer], float(revenue))
            families["margin"].add_metric([customer], float(margin))
            if budget is not None:
                families["budget"].add_metric([customer], float(budget))
        yield from families.values()
        rate = GaugeMetricFamily(
            "costline_fleet_effective_usd_per_token", "Each self-hosted fleet's month-to-date effective rate: its "
            "cost accrued so far (monthly cost x elapsed fraction of the month) / the tokens it served so far, USD.",
            labels=["fleet"])
        for name, per_token in sorted(snapshot.fleet_rates(self._clock()).items()):
            rate.add_metric([name], float(per_token))
        yield rate
        yield GaugeMetricFamily("costline_chargeback_period_start_timestamp_seconds",
                                "Start of the calendar month the chargeback gauges cover (unix seconds).",
                                value=snapshot.start)
        yield GaugeMetricFamily("costline_chargeback_read_timestamp_seconds",
                                "When the chargeback gauges were last made from the ledger (unix seconds).",
                                value=snapshot.read_at)
