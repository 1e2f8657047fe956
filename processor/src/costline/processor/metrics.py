"""Prometheus exposition: a custom Collector that builds every metric family fresh in `collect()` from snapshots.

Nothing here holds state: series come from `SeriesAggregator.snapshot()`, budgets from `Budgets.snapshot()` (the
ledger), so a scrape always sees one consistent picture. Register on an injected `CollectorRegistry`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from costline.processor.aggregate import TOKEN_TYPES, SeriesAggregator
from costline.processor.budgets import Budgets

BUDGET_OWNER_LABELS = ("org", "team", "user", "key", "project")


class CostlineCollector(Collector):
    def __init__(self, aggregator: Callable[[], SeriesAggregator], budgets: Callable[[], Budgets],
                 span_counts: Callable[[], dict[str, int]]) -> None:
        # Callables: a reload swaps the aggregator and budgets, and the collector must follow.
        self._aggregator = aggregator
        self._budgets = budgets
        self._span_counts = span_counts

    def describe(self) -> Iterator:
        return iter(())  # unchecked collector: label sets depend on the config

    def collect(self) -> Iterator:
        aggregator = self._aggregator()
        series, overflows, conflicts = aggregator.snapshot()
        names = list(aggregator.label_names)

        cost = CounterMetricFamily("costline_cost_usd", "Priced cost of LLM calls in USD (list price or override).",
                                   labels=names)
        tokens = CounterMetricFamily("costline_tokens", "Tokens by type; input is uncached input.",
                                     labels=[*names, "type"])
        requests = CounterMetricFamily("costline_requests", "LLM calls by outcome.", labels=[*names, "outcome"])
        unpriced = CounterMetricFamily("costline_unpriced_requests",
                                       "LLM calls whose model could not be priced (never counted as $0).",
                                       labels=names)
        ttft = HistogramMetricFamily("costline_time_to_first_token_seconds",
                                     "Time to the first chunk of streamed responses.", labels=names)
        bounds = [str(b) for b in aggregator.ttft_bounds]
        for labels, s in series.items():
            values = list(labels)
            if s.priced:  # a series of only unpriced calls has no cost at all, not a cost of $0
                cost.add_metric(values, s.cost_pico / 1e12)
            for kind, count in zip(TOKEN_TYPES, s.tokens, strict=True):
                tokens.add_metric([*values, kind], count)
            requests.add_metric([*values, "success"], s.success)
            requests.add_metric([*values, "error"], s.errors)
            if s.unpriced:
                unpriced.add_metric(values, s.unpriced)
            if s.ttft_count:
                cumulative, buckets = 0, []
                for bound, n in zip(bounds, s.ttft_buckets, strict=True):
                    cumulative += n
                    buckets.append((bound, cumulative))
                buckets.append(("+Inf", s.ttft_count))
                ttft.add_metric(values, buckets, s.ttft_sum)
        yield from (cost, tokens, requests, unpriced, ttft)

        conflicts_family = CounterMetricFamily(
            "costline_ownership_conflicts",
            "Calls whose declared owner disagreed with the owner of their registered API key (the key won).")
        conflicts_family.add_metric([], conflicts)
        yield conflicts_family
        overflow = CounterMetricFamily("costline_cardinality_overflow",
                                       "Label values replaced by __overflow__ after the cardinality limit.",
                                       labels=["label"])
        for label, count in overflows.items():
            overflow.add_metric([label], count)
        yield overflow
        spans = CounterMetricFamily("costline_spans_received", "Spans received, by what became of them.",
                                    labels=["result"])
        for result, count in self._span_counts().items():
            spans.add_metric([result], count)
        yield spans

        yield from self._budget_families()

    def _budget_families(self) -> Iterator:
        snapshot = self._budgets().snapshot()
        labels = ["scope", "period", *BUDGET_OWNER_LABELS]
        limit = GaugeMetricFamily("costline_budget_limit_usd", "Configured budget.", labels=labels)
        spent = GaugeMetricFamily("costline_budget_spent_usd", "Spent in the current period (from the ledger).",
                                  labels=labels)
        remaining = GaugeMetricFamily("costline_budget_remaining_usd", "Budget left in the current period.",
                                      labels=labels)
        for state in snapshot.states:
            owner = dict(state.owner)
            values = [state.scope, state.period, *(owner.get(name, "") for name in BUDGET_OWNER_LABELS)]
            limit.add_metric(values, float(state.limit_usd))
            spent.add_metric(values, float(state.spent_usd))
            remaining.add_metric(values, float(state.remaining_usd))
        effective = GaugeMetricFamily(
            "costline_budget_effective_remaining_usd",
            "Per key and user: the minimum remaining over every budget above it (the most restrictive wins).",
            labels=["scope", "org", "team", "user", "key"])
        for e in snapshot.effective:
            owner = dict(e.owner)
            effective.add_metric([e.scope, *(owner.get(n, "") for n in ("org", "team", "user", "key"))],
                                 float(e.remaining_usd))
        yield from (limit, spent, remaining, effective)
