"""`costline serve --export-dir`: the daily exports kept current in the background.

Every `--export-every` (default hourly) the days a span may still arrive in are exported again (`daily.stale_days`),
and so are the days of hours a re-rate changed since the last run: a late span or a `reprice --all` re-exports its
day. Runs on a `Refresher`, off the ingest path; a run that fails is logged and counted, and the previous files stay.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from costline.processor.clock import Clock
from costline.processor.refresher import Refresher
from costline.processor.reports.exports.daily import export_days, stale_days

log = logging.getLogger("costline.processor.exports")


class ScheduledExports:
    """Exports the stale days to `out_dir` every `every_s`; a Prometheus collector of its own progress."""

    def __init__(self, config: Callable[[], Any], ledger: Any, out_dir: Path, every_s: float, *, clock: Clock) -> None:
        self._config, self._ledger, self._out_dir, self._clock = config, ledger, Path(out_dir), clock
        self._lock = threading.Lock()
        self._last_started_s: int | None = None
        self.failures = 0
        self.days_written = 0
        self.last_success_s: float | None = None
        self._refresher = Refresher(self.run, "costline-exports", interval_s=every_s)

    def start(self) -> ScheduledExports:
        self._refresher.start()
        return self

    def stop(self) -> None:
        self._refresher.stop()

    def run(self) -> None:
        """One pass: every stale day written, or the failure logged and counted (the pass's days are retried next)."""
        with self._lock:
            now = self._clock()
            started = int(now.timestamp())
            config = self._config()
            try:
                days = stale_days(config, self._ledger, now, changed_since_s=self._last_started_s)
                for _ in export_days(config, self._ledger, days, self._out_dir, clock=self._clock):
                    self.days_written += 1
            except Exception as err:  # an `ExportError` or a ledger read: the next pass retries; serving spans goes on
                self.failures += 1
                log.error("daily export to %s failed: %s", self._out_dir, err)
                return
            self._last_started_s = started
            self.last_success_s = now.timestamp()

    def collect(self) -> Iterator[Any]:
        failures = CounterMetricFamily("costline_export_failures", "Daily export passes that failed (see the log).")
        failures.add_metric([], self.failures)
        yield failures
        written = CounterMetricFamily("costline_export_days_written", "Day partitions written by the daily export.")
        written.add_metric([], self.days_written)
        yield written
        if self.last_success_s is not None:
            last = GaugeMetricFamily("costline_export_last_success_timestamp_seconds",
                                     "When the last daily export pass finished whole (unix seconds).")
            last.add_metric([], self.last_success_s)
            yield last
