"""`costline serve --review-every 2w --review-webhook URL`: the review built and delivered on a schedule, on a
`Refresher` (first one an interval after start, not at start: a restart must not send a review). A failed delivery
is logged and counted; the next interval sends the next review."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

from prometheus_client.core import CounterMetricFamily

from costline.processor.clock import Clock
from costline.processor.refresher import Refresher
from costline.processor.reports.review.build import build_review
from costline.processor.reports.review.deliver import deliver
from costline.processor.reports.review.render import render_html, review_document

log = logging.getLogger("costline.processor.review")


class ScheduledReview:
    def __init__(self, config: Callable[[], Any], ledger: Any, url: str, every_s: float, *, clock: Clock,
                 transport: Any = None) -> None:
        self._config, self._ledger, self._url, self._clock, self._transport = config, ledger, url, clock, transport
        self._length = timedelta(seconds=every_s)
        self.sent = 0
        self.failures = 0
        self._refresher = Refresher(self.run, "costline-review", interval_s=every_s, first_read=False)

    def start(self) -> ScheduledReview:
        self._refresher.start()
        return self

    def stop(self) -> None:
        self._refresher.stop()

    def run(self) -> None:
        try:
            review = build_review(self._config(), self._ledger, self._clock(), self._length)
            deliver(self._url, review_document(review), render_html(review), transport=self._transport)
            self.sent += 1
        except Exception as err:  # the next interval sends the next review; serving spans goes on
            self.failures += 1
            log.error("cost review not delivered to the webhook: %s", err)

    def collect(self) -> Iterator[Any]:
        sent = CounterMetricFamily("costline_review_deliveries", "Cost reviews delivered to the webhook.")
        sent.add_metric([], self.sent)
        yield sent
        failed = CounterMetricFamily("costline_review_delivery_failures", "Cost reviews that could not be built or "
                                     "delivered (see the log).")
        failed.add_metric([], self.failures)
        yield failed
