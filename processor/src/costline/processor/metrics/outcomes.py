"""`costline_outcomes_total`: the business outcomes counted since start, for cost per outcome in Prometheus."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from costline.processor.config.core import MetricsConfig
from costline.processor.model import Outcome, Owner
from costline.processor.overflow import FirstCome


class OutcomeCounter:
    """`costline_outcomes_total{org, team, feature, name}` since start, for Prometheus: rate() of it against the cost
    counters gives cost per outcome. Survives reloads (it belongs to the pipeline, not to one config).

    Every label comes from spans, so each folds to `__overflow__` past its `metrics.cardinality_limit(s)` by the one
    rule (`overflow.py`), as on the other per-owner series (`name`, no metric label, takes `cardinality_limit`)."""

    LABELS = ("org", "team", "feature", "name")

    def __init__(self, metrics: MetricsConfig | None = None) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, ...]] = Counter()
        metrics = metrics or MetricsConfig()
        self._limiter: FirstCome[str] = FirstCome(self.LABELS, metrics.cardinality_limit, metrics.cardinality_limits)

    def configure(self, metrics: MetricsConfig) -> None:
        """New limits (a reload); values already admitted keep their series."""
        with self._lock:
            self._limiter.configure(metrics.cardinality_limit, metrics.cardinality_limits)

    def add(self, counted: Iterable[tuple[Outcome, Owner]]) -> None:
        admit = self._limiter.admit
        with self._lock:
            for outcome, owner in counted:
                labels = (admit("org", owner.org), admit("team", owner.team), admit("feature", owner.feature),
                          admit("name", outcome.name))
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
