"""`costline_reconciliation_*` gauges per provider and owner, from the stored reconciliation.

The store is read by `refresh()` — once at start (the caller's), and on the gauges' `Refresher` soon after each
background reconciliation (`changed()`) and on a timer (`start()`), because `costline reconcile` run from the command
line (or another processor) writes the same store from another process — never inside a scrape: `collect()` only
turns the last snapshot into metric families.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from costline.processor.ledger.reconciliation import OwnerTotals, ReconciliationStore
from costline.processor.refresher import Refresher
from costline.processor.units import pico_to_float_usd

LABELS = ("provider", "owner_kind", "owner")
GAUGES = (
    ("costline_reconciliation_provider_usd", "provider_pico",
     "Cost the provider's usage report shows for the last reconciled window, priced at Costline's rates (USD)."),
    ("costline_reconciliation_drift_usd", "drift_pico",
     "Provider minus ledger cost on the rows spans saw, for the last reconciled window (USD; negative: the "
     "ledger counted more)."),
    ("costline_reconciliation_untracked_usd", "untracked_pico",
     "Cost the provider billed that no span saw, for the last reconciled window (USD), per owner of the "
     "provider identity (`untracked` when unmapped)."),
)


class ReconciliationGauges(Collector):
    def __init__(self, store: ReconciliationStore) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._totals: list[OwnerTotals] = []
        self._refresher: Refresher | None = None

    def refresh(self) -> None:
        totals = self._store.latest_totals()
        with self._lock:
            self._totals = totals

    def start(self, interval_s: float) -> ReconciliationGauges:
        """Re-read the store every `interval_s` on a background thread (the first read is the caller's). A failed
        read keeps the last snapshot; the next tick tries again."""
        self._refresher = Refresher(self.refresh, "costline-reconcile-gauges", interval_s=interval_s,
                                    first_read=False).start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        if self._refresher is not None:
            self._refresher.stop(timeout_s)

    def changed(self) -> None:
        """The store took a reconciliation: read it again soon, on the refresher's thread (never raises)."""
        if self._refresher is not None:
            self._refresher.changed()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            totals = list(self._totals)
        for name, attribute, documentation in GAUGES:
            family = GaugeMetricFamily(name, documentation, labels=LABELS)
            for t in totals:
                family.add_metric((t.provider, t.owner_kind, t.owner), pico_to_float_usd(getattr(t, attribute)))
            yield family

    def describe(self) -> Iterator[GaugeMetricFamily]:
        for name, _, documentation in GAUGES:
            yield GaugeMetricFamily(name, documentation, labels=LABELS)
