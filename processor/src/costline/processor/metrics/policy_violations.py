"""`costline_policy_violations_total`: the billed calls to a model their owner may not use (`policy.ModelPolicy`),
counted by the processor for every app, guarded or not; and `costline_policy_approved_calls_total`: the calls to a
model allowed on approval that an approval let through (counted as approved, not as violations)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone

from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from costline.processor.config.core import MetricsConfig
from costline.processor.overflow import FirstCome
from costline.processor.policy import ModelPolicy
from costline.processor.units import NS_PER_S


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
        self._approved: Counter[tuple[str, str, str, str]] = Counter()
        """Calls to an `on_approval` model that an approval let through: counted as approved, not violations."""
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
        approved: list[tuple[str, str, str, str]] = []
        for entry in entries:
            call, owner = entry.call, entry.owner
            model = call.request_model or call.response_model
            if not model:
                continue
            # An approval is judged at the call's start: a call made while approved stays approved.
            at = datetime.fromtimestamp(call.start_time_unix_nano / NS_PER_S, timezone.utc)
            rule, approval = policy.judge(call.provider, model,
                                          policy.chain(owner.org, owner.team, owner.user, owner.key, owner.project),
                                          owner=(owner.org, owner.team, owner.user), at=at)
            if rule is not None:
                found.append((owner.org, owner.team, model, rule))
            elif approval is not None:
                approved.append((owner.org, owner.team, model, approval))
        if not found and not approved:
            return
        admit = self._limiter.admit
        with self._lock:
            for counts, rows in ((self._counts, found), (self._approved, approved)):
                for org, team, model, rule in rows:
                    counts[(admit("org", org), admit("team", team), admit("model", model), rule)] += 1

    def describe(self) -> Iterator:
        return iter(())

    def collect(self) -> Iterator:
        family = CounterMetricFamily(
            "costline_policy_violations",
            "LLM calls to a model their owner's `models:` rules do not allow, by the rule that refuses it "
            "(counted for every app, guarded or not).",
            labels=["org", "team", "model", "rule"])
        approved = CounterMetricFamily(
            "costline_policy_approved_calls",
            "LLM calls to a model their owner's rules allow on approval only, let through by an approval in effect "
            "when they started (docs/governance.md, Approvals).", labels=["org", "team", "model", "rule"])
        with self._lock:
            items = sorted(self._counts.items())
            approved_items = sorted(self._approved.items())
        for labels, count in items:
            family.add_metric(list(labels), count)
        yield family
        for labels, count in approved_items:
            approved.add_metric(list(labels), count)
        yield approved
