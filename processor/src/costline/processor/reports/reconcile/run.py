"""One reconciliation: read the provider's report, read the ledger, compare, store — and the background loop of
`costline serve --reconcile-every`.

Any `ReportError` (a bad report, a provider that keeps failing) or `StoreError` happens before or inside the one
storing transaction, so a failed run leaves the stored reconciliation as it was.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from costline.processor.clock import Clock
from costline.processor.config.core import CostlineConfig
from costline.processor.ledger.reconciliation import ReconciliationStore
from costline.processor.pricing import Pricer
from costline.processor.refresher import Refresher
from costline.processor.reports.reconcile.compare import LEDGER_GROUP_BY, Result, compare
from costline.processor.reports.reconcile.owners import identities_for
from costline.processor.reports.reconcile.providers import ProviderReport, fetch, read_files
from costline.processor.reports.reconcile.render import unpriced_note
from costline.processor.reports.reconcile.report import ReportError
from costline.processor.reports.reconcile.store import save
from costline.processor.units import pico_to_float_usd

log = logging.getLogger("costline.processor.reports.reconcile")
UTC = ZoneInfo("UTC")


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=timezone.utc)


def admin_key_from_env(variable: str) -> str:
    """The admin key held by `variable`; a `ReportError` naming the variable (never its value) when unset."""
    value = os.environ.get(variable, "").strip()
    if not value:
        raise ReportError(f"environment variable {variable} is not set: it must hold the provider's admin key")
    return value


def reconcile(config: CostlineConfig, ledger: Any, store: ReconciliationStore | None, provider: str, start: date,
              end: date, *, clock: Clock, files: list[Path] | None = None, admin_key: str | None = None,
              api_base: str | None = None, costs: bool = True, **fetch_options: Any) -> Result:
    """Compare the provider's report for UTC days [start, end) with the ledger; store it when `store` is given,
    stamped with `clock`'s time."""
    if end <= start:
        raise ReportError(f"the period is empty: --to {end} is not after --from {start}")
    if files:
        report: ProviderReport = read_files(provider, start, end, files)
    else:
        if admin_key is None:
            raise ReportError("no report: give --file, or an admin key (--admin-key-env) to fetch it live")
        report = fetch(provider, start, end, admin_key, api_base=api_base, costs=costs, **fetch_options)
    rows = ledger.usage(_midnight(start), _midnight(end), list(LEDGER_GROUP_BY), tz=UTC)
    pricer = Pricer(config.prices, config.fleets)
    result = compare(report, rows, identities_for(config, provider), pricer.rates)
    if store is not None:
        save(store, result, now=int(clock().timestamp()))
    return result


class BackgroundReconciler:
    """Every `interval_s`, reconcile each provider configured under `reconcile.providers` over the last
    `reconcile.lookback_days` complete UTC days; then `on_stored()` (the gauges re-read the store). A failing run
    is logged (without the key) and retried at the next interval; it never stops the processor."""

    def __init__(self, config: Callable[[], CostlineConfig], ledger: Any, store: ReconciliationStore,
                 interval_s: float, on_stored: Callable[[], None], *, clock: Clock,
                 fetch_options: dict[str, Any] | None = None) -> None:
        self._config = config
        self._ledger = ledger
        self._store = store
        self._on_stored = on_stored
        self._clock = clock
        self._fetch_options = fetch_options or {}
        self._refresher = Refresher(self.run_once, "costline-reconcile", interval_s=interval_s)
        self.runs = 0
        """Completed passes over the configured providers (successful or not), for tests and logs."""
        self.failures = 0

    def start(self) -> BackgroundReconciler:
        self._refresher.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        self._refresher.stop(timeout_s)

    def run_once(self) -> None:
        config = self._config()
        end = self._clock().astimezone(timezone.utc).date()
        start = end - timedelta(days=config.reconcile.lookback_days)
        stored = False
        for provider, settings in sorted(config.reconcile.providers.items()):
            if self._refresher.stopping:
                break
            try:
                key = admin_key_from_env(settings.admin_key_env)
                result = reconcile(config, self._ledger, self._store, provider, start, end, admin_key=key,
                                   clock=self._clock, api_base=settings.api_base, costs=settings.costs, **self._fetch_options)
            except Exception as err:  # a bad report or an unreachable provider: logged, retried next interval
                self.failures += 1
                log.error("reconcile %s %s..%s failed: %s", provider, start, end, err)
                continue
            stored = True
            log.info("reconciled %s %s..%s: %d rows, drift $%s, untracked $%s", provider, start, end,
                     len(result.rows), pico_to_float_usd(result.total_pico("drift_pico")),
                     pico_to_float_usd(result.total_pico("untracked_pico")))
            if result.unpriced:
                log.warning("reconcile %s %s..%s: %s", provider, start, end, unpriced_note(result))
        if stored:
            try:
                self._on_stored()
            except Exception:
                log.exception("reading the reconciliation back for the gauges failed")
        self.runs += 1
