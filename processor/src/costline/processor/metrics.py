"""Prometheus exposition: a custom Collector that builds every metric family fresh in `collect()` from snapshots.

Nothing here holds state: series come from `SeriesAggregator.snapshot()`, budgets from `Budgets.snapshot()` (the
ledger), so a scrape always sees one consistent picture. Register on an injected `CollectorRegistry`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from costline.processor.aggregate import (
    COST,
    ERRORS,
    PRICED,
    RETRIES,
    SUCCESS,
    TOKEN_SLOTS,
    TOKEN_TYPES,
    TTFT_BUCKETS,
    TTFT_COUNT,
    TTFT_SUM,
    UNPRICED,
    SeriesAggregator,
)
from costline.processor.budgets import Budgets
from costline.processor.model import BUDGET_LABELS, HIERARCHY
from costline.processor.units import pico_to_float_usd

BUDGET_OWNER_LABELS = BUDGET_LABELS


class CostlineCollector(Collector):
    def __init__(self, aggregator: Callable[[], SeriesAggregator], budgets: Callable[[], Budgets],
                 span_counts: Callable[[], dict[str, int]],
                 bounded_values: Callable[[], dict[tuple[str, str], int]] = dict) -> None:
        # Callables: a reload swaps the aggregator and budgets, and the collector must follow.
        self._aggregator = aggregator
        self._budgets = budgets
        self._span_counts = span_counts
        self._bounded_values = bounded_values

    def describe(self) -> Iterator:
        return iter(())  # unchecked collector: label sets depend on the config

    def collect(self) -> Iterator:
        aggregator = self._aggregator()
        series, overflows, conflicts = aggregator.snapshot()
        yield from _series_families(series, list(aggregator.label_names), aggregator.ttft_bounds)

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
        bounded = CounterMetricFamily(
            "costline_span_values_bounded",
            "Values of LLM spans outside the processor's bounds, by field and action: label values truncated or "
            "sanitised and token counts clamped (still billed), calls over limits.max_tokens_per_call rejected.",
            labels=["field", "action"])
        for (field, action), count in sorted(self._bounded_values().items()):
            bounded.add_metric([field, action], count)
        yield bounded

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
            labels=["scope", *HIERARCHY])
        for e in snapshot.effective:
            owner = dict(e.owner)
            effective.add_metric([e.scope, *(owner.get(n, "") for n in HIERARCHY)],
                                 float(e.remaining_usd))
        yield from (limit, spent, remaining, effective)


def _series_families(series: Mapping[tuple[str, ...], list], names: list[str], ttft_bounds: Sequence[float]
                     ) -> tuple[Metric, ...]:
    """The per-series families, with `Sample`s appended directly: `add_metric` would build a label dict per sample
    from a zip; here each series' dict is built once and shared by its samples that add no label (prometheus_client
    only reads them), and the others copy it in C. Samples come out in the order `add_metric` would give."""
    cost = CounterMetricFamily("costline_cost_usd", "Priced cost of LLM calls in USD (list price or override).",
                               labels=names)
    tokens = CounterMetricFamily("costline_tokens", "Tokens by type; input is uncached input.", labels=[*names, "type"])
    requests = CounterMetricFamily("costline_requests", "LLM calls by outcome.", labels=[*names, "outcome"])
    retries = CounterMetricFamily("costline_retries",
                                  "Retries the SDKs made before their calls' answers (http.request.resend_count).",
                                  labels=names)
    unpriced = CounterMetricFamily("costline_unpriced_requests",
                                   "LLM calls whose model could not be priced (never counted as $0).", labels=names)
    ttft = HistogramMetricFamily("costline_time_to_first_token_seconds",
                                 "Time to the first chunk of streamed responses.", labels=names)
    cost_add, tokens_add, requests_add = cost.samples.append, tokens.samples.append, requests.samples.append
    unpriced_add, ttft_add, retries_add = unpriced.samples.append, ttft.samples.append, retries.samples.append
    # Sample names as add_metric would give them, derived from the families' so a rename cannot split them apart.
    cost_name, tokens_name, requests_name = f"{cost.name}_total", f"{tokens.name}_total", f"{requests.name}_total"
    retries_name, unpriced_name = f"{retries.name}_total", f"{unpriced.name}_total"
    bucket_name, count_name, sum_name = f"{ttft.name}_bucket", f"{ttft.name}_count", f"{ttft.name}_sum"
    token_kinds = tuple(zip(TOKEN_TYPES, TOKEN_SLOTS, strict=True))
    bounds = [(str(b), TTFT_BUCKETS + i) for i, b in enumerate(ttft_bounds)]
    for values, s in series.items():
        labels = dict(zip(names, values, strict=True))
        if s[PRICED]:  # a series of only unpriced calls has no cost at all, not a cost of $0
            cost_add(Sample(cost_name, labels, pico_to_float_usd(s[COST])))
        for kind, slot in token_kinds:
            tokens_add(Sample(tokens_name, {**labels, "type": kind}, s[slot]))
        requests_add(Sample(requests_name, {**labels, "outcome": "success"}, s[SUCCESS]))
        requests_add(Sample(requests_name, {**labels, "outcome": "error"}, s[ERRORS]))
        # Always present, 0 included, like requests: "no retries" is an answer for the retries-per-request panel.
        retries_add(Sample(retries_name, labels, s[RETRIES]))
        if s[UNPRICED]:
            unpriced_add(Sample(unpriced_name, labels, s[UNPRICED]))
        if s[TTFT_COUNT]:
            cumulative = 0
            for bound, slot in bounds:
                cumulative += s[slot]
                ttft_add(Sample(bucket_name, {**labels, "le": bound}, cumulative))
            ttft_add(Sample(bucket_name, {**labels, "le": "+Inf"}, s[TTFT_COUNT]))
            ttft_add(Sample(count_name, labels, s[TTFT_COUNT]))
            ttft_add(Sample(sum_name, labels, s[TTFT_SUM]))
    return cost, tokens, requests, retries, unpriced, ttft
