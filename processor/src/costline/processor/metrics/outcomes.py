"""`costline_outcomes_total`: the business outcomes counted since start, for cost per outcome in Prometheus."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from costline.processor.model import Outcome, Owner


class OutcomeCounter:
    """`costline_outcomes_total{org, team, feature, name}` since start, for Prometheus: rate() of it against the cost
    counters gives cost per outcome. Label sets beyond `limit` are counted under `__overflow__`."""

    LABELS = ("org", "team", "feature", "name")

    def __init__(self, limit: int = 1000) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, ...]] = Counter()
        self.limit = limit

    def add(self, counted: Iterable[tuple[Outcome, Owner]]) -> None:
        with self._lock:
            for outcome, owner in counted:
                labels = (owner.org, owner.team, owner.feature, outcome.name)
                if labels not in self._counts and len(self._counts) >= self.limit:
                    labels = ("__overflow__",) * len(self.LABELS)
                self._counts[labels] += outcome.count

    def snapshot(self) -> Mapping[tuple[str, ...], int]:
        with self._lock:
            return dict(self._counts)

    def collect(self) -> Iterable[Any]:
        from prometheus_client.core import CounterMetricFamily

        family = CounterMetricFamily("costline_outcomes", "Business outcomes reported by costline.outcome(), by "
                                     "owner, feature and outcome name", labels=self.LABELS)
        for labels, count in sorted(self.snapshot().items()):
            family.add_metric(labels, count)
        yield family
