"""`Refresher`: one background thread that re-reads something from the ledger, off the scrape path.

Ledger-backed gauges (the period's totals, the open chargeback statement, the stored reconciliation) must never read
the database inside a scrape, and must follow writes made by other processes (`costline reprice`, `close-period`,
`reconcile`, other processors sharing the ledger). Each owns a `Refresher` that calls its `refresh` soon after
`changed()` (a commit here; debounced to at most one read per `min_gap_s`) and every `interval_s` whatever happens.
A refresh that raises is logged and the thread goes on: a gauge that silently froze would be worse than a stale one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger("costline.processor.metrics.refresher")


class Refresher:
    def __init__(self, refresh: Callable[[], object], name: str, *, interval_s: float, min_gap_s: float = 0.0,
                 first_read: bool = True) -> None:
        self._refresh = refresh
        self._name = name
        self._interval_s = interval_s
        self._min_gap_s = min_gap_s
        self._first_read = first_read
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Refresher:
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def changed(self) -> None:
        """Something was written: read again soon. Cheap and never raises (it is called on the ingest path)."""
        self._wake.set()

    def _run(self) -> None:
        if not self._first_read:
            self._wake.wait(self._interval_s)
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                self._refresh()
            except Exception:
                log.exception("%s: refresh failed; the last figures stay", self._name)
            self._wake.wait(self._interval_s)
            self._stopping.wait(self._min_gap_s)  # debounce: a busy receiver commits many times a second
