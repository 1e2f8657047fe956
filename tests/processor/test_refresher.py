"""`Refresher`, the one background loop: a read soon after `changed()` (debounced), on a timer, never stopped by a
failing read, and stoppable from its own thread."""

from __future__ import annotations

import time

from costline.processor.refresher import Refresher
from tests.polling import poll


def test_reads_first_then_after_each_change_at_most_once_per_gap() -> None:
    reads: list[float] = []
    refresher = Refresher(lambda: reads.append(time.monotonic()), "test-refresher", interval_s=3600,
                          min_gap_s=0.2).start()
    try:
        poll(lambda: len(reads) == 1, 5, "no first read")
        for _ in range(50):  # a burst of commits
            refresher.changed()
        poll(lambda: len(reads) == 2, 5, "no read after the changes")
        time.sleep(0.3)
        assert len(reads) == 2  # the burst made one read
        assert reads[1] - reads[0] >= 0.2
    finally:
        refresher.stop()


def test_without_first_read_the_timer_reads_and_a_failing_read_does_not_stop_it() -> None:
    calls: list[int] = []

    def refresh() -> None:
        calls.append(1)
        raise RuntimeError("ledger gone")

    refresher = Refresher(refresh, "test-refresher", interval_s=0.05, first_read=False).start()
    try:
        assert calls == []  # the owner made the first read
        poll(lambda: len(calls) >= 3, 5, "the timer stopped after a failed read")
    finally:
        refresher.stop()


def test_stop_from_the_refreshing_thread_itself_ends_it() -> None:
    refresher: list[Refresher] = []
    refresher.append(Refresher(lambda: refresher[0].stop(), "test-refresher", interval_s=0.01))
    thread = refresher[0].start()._thread
    assert thread is not None
    poll(lambda: not thread.is_alive(), 5, "the refresher did not end")
    assert refresher[0].stopping
