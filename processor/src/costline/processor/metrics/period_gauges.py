"""Ledger-backed gauges of the current period: what waits for a price, and what was spent, per owner and model.

The in-memory counters (`costline_unpriced_requests_total`, `costline_cost_usd_total`) count what this process
ingested since it started; they cannot go down when `costline reprice` prices old calls, and a series born with its
final value shows no `increase()`. These gauges are read from the ledger instead, so they are exact, the same on
every processor sharing one ledger, survive restarts, and fall back to zero once a reprice has priced the calls.

`PeriodTotals` reads on a background thread — soon after each commit (debounced) and on a timer, because
`costline reprice` and other processors write the same ledger from other processes — never inside a scrape.
`PeriodCollector` turns the latest snapshot into metric families. The period is the calendar month in the
configured time zone, as for monthly budgets; the injected clock decides which month is current.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from operator import add

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from costline.processor.clock import Clock
from costline.processor.config.core import CostlineConfig
from costline.processor.ledger import Ledger, LedgerUnavailable
from costline.processor.model import BASE_OWNER_LABELS, UNPRICED_TOKEN_COUNTS, Counts
from costline.processor.overflow import folded, kept_values
from costline.processor.refresher import Refreshed, Refresher
from costline.processor.units import period_starts, pico_to_float_usd

log = logging.getLogger("costline.processor.metrics.period_gauges")

LABELS = ("provider", "model", *BASE_OWNER_LABELS)
"""Labels of every period gauge: the ones dashboards filter by (provider, model and the owner labels every series
has), bounded like the in-memory series' labels."""

UNPRICED_TOKENS = {kind: slot.column for kind, slot in UNPRICED_TOKEN_COUNTS.items()}
"""`type` label (as on `costline_tokens_total`) -> the ledger column of tokens still waiting for a price."""

COUNTERS = (Counts.REQUESTS.column, Counts.UNPRICED_REQUESTS.column, *UNPRICED_TOKENS.values(),
            Counts.COST_PICO_USD.column)
REQUESTS, UNPRICED_REQUESTS, COST = 0, 1, len(COUNTERS) - 1
PERIOD = "monthly"


@dataclass(frozen=True, slots=True)
class PeriodSnapshot:
    period_start: datetime
    rows: Mapping[tuple[str, ...], tuple[int, ...]]
    """LABELS values -> sums in COUNTERS order."""
    read_at: float
    """Unix time of the ledger read."""


@dataclass
class PeriodTotals(Refreshed):
    """The current period's totals, re-read from the ledger after commits (at most every `min_gap_s`) and every
    `interval_s`. A failed read keeps the last snapshot (and logs): a scrape still serves the last known figures."""

    ledger: Ledger
    config: Callable[[], CostlineConfig]
    clock: Clock
    interval_s: float = 10.0
    min_gap_s: float = 1.0
    _snapshot: PeriodSnapshot | None = field(default=None, init=False)
    _refresher: Refresher = field(init=False)

    def __post_init__(self) -> None:
        self._refresher = Refresher(lambda: self.refresh(), "costline-period-gauges", interval_s=self.interval_s,
                                    min_gap_s=self.min_gap_s)

    def snapshot(self) -> PeriodSnapshot | None:
        return self._snapshot

    def refresh(self) -> PeriodSnapshot | None:
        """Read the ledger now (the background thread calls this; tests may too)."""
        config = self.config()
        start = period_starts(self.clock(), config.zone)[PERIOD]
        try:
            rows = self.ledger.reader.totals_since(start, LABELS, COUNTERS)
        except LedgerUnavailable as err:
            log.warning("period gauges not refreshed: %s", err)
            return self._snapshot
        limits = config.metrics
        rows = _capped(rows, [limits.cardinality_limits.get(label, limits.cardinality_limit) for label in LABELS])
        self._snapshot = PeriodSnapshot(start, rows, self.clock().timestamp())
        return self._snapshot


def _capped(rows: Mapping[tuple[str, ...], tuple[int, ...]], limits: list[int]
            ) -> dict[tuple[str, ...], tuple[int, ...]]:
    """Per label, the `limit` values with the most cost and unpriced calls keep their name; the others become
    `__overflow__` and their rows are summed, so totals stay exact while the number of series stays bounded."""
    for index, limit in enumerate(limits):
        weight: dict[str, tuple[int, int]] = defaultdict(lambda: (0, 0))
        for values, sums in rows.items():
            cost, unpriced = weight[values[index]]
            weight[values[index]] = (cost + sums[COST], unpriced + sums[UNPRICED_REQUESTS])
        kept = kept_values(weight, limit)
        if kept is not None:
            rows = folded(rows, index, kept, lambda a, b: tuple(map(add, a, b)))
    return dict(rows)


class PeriodCollector(Collector):
    """The latest `PeriodSnapshot` as gauges. Series are built fresh on every scrape from the snapshot only."""

    def __init__(self, snapshot: Callable[[], PeriodSnapshot | None]) -> None:
        self._snapshot = snapshot

    def describe(self) -> Iterator:
        return iter(())

    def collect(self) -> Iterator[GaugeMetricFamily]:
        snapshot = self._snapshot()
        if snapshot is None:  # not read yet: no figure rather than a zero that would look like "nothing unpriced"
            return
        labels = list(LABELS)
        cost = GaugeMetricFamily(
            "costline_period_cost_usd",
            "Priced cost in the current calendar month (configured time zone), from the ledger. Series with only "
            "unpriced calls have none (unpriced is never $0).", labels=labels)
        unpriced = GaugeMetricFamily(
            "costline_period_unpriced_requests",
            "Calls in the current calendar month still waiting for a price, from the ledger (0 after a reprice).",
            labels=labels)
        tokens = GaugeMetricFamily(
            "costline_period_unpriced_tokens",
            "Tokens of the current calendar month's calls still waiting for a price, by type, from the ledger.",
            labels=[*labels, "type"])
        for values, sums in sorted(snapshot.rows.items()):
            row = list(values)
            if sums[REQUESTS] > sums[UNPRICED_REQUESTS]:
                cost.add_metric(row, pico_to_float_usd(sums[COST]))
            # Every series, zeros included: a reprice must show as a drop to 0, not as a series that vanishes.
            unpriced.add_metric(row, sums[UNPRICED_REQUESTS])
            for (kind, _), value in zip(UNPRICED_TOKENS.items(), sums[UNPRICED_REQUESTS + 1 : COST], strict=True):
                tokens.add_metric([*row, kind], value)
        yield cost
        yield unpriced
        yield tokens
        yield _one("costline_period_start_timestamp_seconds",
                   "Start of the calendar month the period gauges cover (unix seconds).",
                   snapshot.period_start.timestamp())
        yield _one("costline_period_read_timestamp_seconds",
                   "When the period gauges were last read from the ledger (unix seconds).", snapshot.read_at)


def _one(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)
