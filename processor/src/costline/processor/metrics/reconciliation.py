"""What `costline serve` runs for reconciliation, beside the gauges it keeps fresh: the gauges (read from the store
at start, soon after each background run and every `GAUGES_REFRESH_S`, which picks up `costline reconcile` runs from
the command line) and, with `--reconcile-every`, the background reconciler for the providers under
`reconcile.providers`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from costline.processor.config.core import CostlineConfig
from costline.processor.metrics.reconcile_gauges import ReconciliationGauges
from costline.processor.reports.reconcile.run import BackgroundReconciler

log = logging.getLogger("costline.processor.metrics.reconciliation")

GAUGES_REFRESH_S = 30.0
"""How often the gauges re-read the store: one small query; reconciliations land hours apart."""


class ReconcileService:
    def __init__(self, registry: Any, config: Callable[[], CostlineConfig], ledger: Any,
                 every_s: float | None, **background_options: Any) -> None:
        self.store = ledger.reconciliation
        self.gauges = ReconciliationGauges(self.store)
        try:
            self.gauges.refresh()
        except Exception as err:  # the gauges wait for the next run; serving spans must not
            log.warning("could not read the stored reconciliation for the gauges: %s", err)
        registry.register(self.gauges)
        self.gauges.start(GAUGES_REFRESH_S)
        self.background: BackgroundReconciler | None = None
        if every_s is not None:
            if not config().reconcile.providers:
                log.warning("--reconcile-every is set but no provider is configured under reconcile.providers")
            self.background = BackgroundReconciler(config, ledger, self.store, every_s, self.gauges.changed,
                                                   **background_options).start()

    def stop(self) -> None:
        if self.background is not None:
            self.background.stop()
        self.gauges.stop()
