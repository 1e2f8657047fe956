"""`Refresher`: the one background loop of the processor — a thread that re-reads something, off the request path.

Everything the processor keeps fresh in the background runs on it: the budgets (`reports/budgets.py`), the
ledger-backed gauges (the period's totals, the open chargeback statement, the stored reconciliation) and the
background reconciler. None of them may read the database inside a scrape, and all must follow writes made by other
processes (`costline reprice`, `close-period`, `reconcile`, other processors sharing the ledger). Each owns a
`Refresher` that calls its `refresh` soon after `changed()` (a commit here; debounced to at most one read per
`min_gap_s`, counted from the start of the last read) and every `interval_s` whatever happens. A refresh that raises
is logged and the thread goes on: a figure that silently froze would be worse than a stale one.

It is base (imported by `reports/` and `metrics/` alike) because it knows nothing of what it refreshes.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import TypeVar

log = logging.getLogger("costline.processor.refresher")


class Refresher:
    def __init__(self, refresh: Callable[[], object], name: str, *, interval_s: float, min_gap_s: float = 0.0,
                 first_read: bool = True) -> None:
        """`first_read=False`: the owner made the first read itself just before `start()`; the thread's first is
        due after `interval_s`, or after `changed()` once `min_gap_s` has passed."""
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
        """Ends the thread after the read under way, if any (waits for it up to `timeout_s`, unless called from the
        thread itself: an owner collected there stops its refresher on the way out)."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)

    @property
    def stopping(self) -> bool:
        """`stop()` was called: a long refresh may end early."""
        return self._stopping.is_set()

    def changed(self) -> None:
        """Something was written: read again soon. Cheap and never raises (it is called on the ingest path)."""
        self._wake.set()

    def _run(self) -> None:
        began = -math.inf
        if not self._first_read:
            began = time.monotonic()
            self._wake.wait(self._interval_s)
        # The debounce: a busy receiver commits many times a second, and each commit wakes the thread.
        while not self._stopping.wait(max(0.0, self._min_gap_s - (time.monotonic() - began))):
            self._wake.clear()
            began = time.monotonic()
            try:
                self._refresh()
            except Exception:
                log.exception("%s: refresh failed; the last figures stay", self._name)
            self._wake.wait(max(0.0, self._interval_s - (time.monotonic() - began)))


class Refreshed:
    """What an owner of a `Refresher` (in `_refresher`) offers its service: start, stop and `changed`, delegated."""

    _refresher: Refresher

    def start(self: _Owner) -> _Owner:
        self._refresher.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        self._refresher.stop(timeout_s)

    def changed(self) -> None:
        """Something was written: read again soon. Cheap and never raises (called on the ingest path)."""
        self._refresher.changed()


_Owner = TypeVar("_Owner", bound=Refreshed)
