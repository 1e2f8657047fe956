"""`costline_policy_violations_total`: the billed calls to a model their owner may not use (`policy.ModelPolicy`),
counted by the processor for every app, guarded or not."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable, Iterator

from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from costline.processor.config.core import MetricsConfig
from costline.processor.overflow import FirstCome
from costline.processor.policy import ModelPolicy


class PolicyViolations(Collector):
    """`costline_policy_violations_total{org, team, model, rule}`: billed calls to a model their owner may not use.
    Survives reloads (it belongs to the pipeline, not to one config).

    Org, team and model come from spans, so each folds to `__overflow__` past its `metrics.cardinality_limit(s)`
    by the one rule (`overflow.py`), as on the other per-owner series: an app minting a team per call must not mint
    a series per call. The rule names a configured rule, so the config bounds it."""

    FOLDED = ("org", "team", "model")

    def __init__(self, metrics: MetricsConfig | None = None) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str, str, str]] = Counter()
        metrics = metrics or MetricsConfig()
        self._limiter: FirstCome[str] = FirstCome(self.FOLDED, metrics.cardinality_limit, metrics.cardinality_limits)

    def configure(self, metrics: MetricsConfig) -> None:
        """New limits (a reload); values already admitted keep their series."""
        with self._lock:
            self._limiter.configure(metrics.cardinality_limit, metrics.cardinality_limits)

    def count(self, policy: ModelPolicy, entries: Iterable) -> None:
        """Count the entries (billed ledger entries: call and resolved owner) whose model their owner may not use.
        Never raises into the pipeline: the calls are billed already."""
        if policy.empty:
            return
        found: list[tuple[str, str, str, str]] = []
        for entry in entries:
            call, owner = entry.call, entry.owner
            model = call.request_model or call.response_model
            if not model:
                continue
            rule = policy.check(call.provider, model,
                                policy.chain(owner.org, owner.team, owner.user, owner.key, owner.project))
            if rule is not None:
                found.append((owner.org, owner.team, model, rule))
        if not found:
            return
        admit = self._limiter.admit
        with self._lock:
            for org, team, model, rule in found:
                self._counts[(admit("org", org), admit("team", team), admit("model", model), rule)] += 1

    def describe(self) -> Iterator:
        return iter(())

    def collect(self) -> Iterator:
        family = CounterMetricFamily(
            "costline_policy_violations",
            "LLM calls to a model their owner's `models:` rules do not allow, by the rule that refuses it "
            "(counted for every app, guarded or not).",
            labels=["org", "team", "model", "rule"])
        with self._lock:
            items = sorted(self._counts.items())
        for labels, count in items:
            family.add_metric(list(labels), count)
        yield family
