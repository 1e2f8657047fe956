"""Prometheus exposition: a custom Collector that builds every metric family fresh in `collect()` from snapshots.

Nothing here holds state: series come from `SeriesAggregator.snapshot()` (column copies), budgets from
`Budgets.snapshot()` (their last read of the ledger; a scrape never reads it), so a scrape always sees one consistent
picture. Register on an injected `CollectorRegistry`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import chain, compress
from operator import add, sub

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from costline.processor.metrics.aggregate import (
    COST,
    ERRORS,
    RARE_UNITS,
    REQUESTS,
    RETRIES,
    TOKEN_SLOTS,
    TOKEN_TYPES,
    UNPRICED,
    WITHOUT_USAGE_LABELS,
    SeriesAggregator,
    SeriesSnapshot,
)
from costline.processor.metrics.exposition import LineKind, series_lines
from costline.processor.model import BUDGET_LABELS, HIERARCHY, Counts
from costline.processor.reports.budgets import Budgets
from costline.processor.units import pico_to_float_usd


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
        snap = aggregator.snapshot()
        overflows, conflicts = snap.overflows, snap.conflicts
        yield from _series_families(snap, list(aggregator.label_names), aggregator.values_by_text)
        without_usage = CounterMetricFamily(
            "costline_calls_without_usage",
            "Successful LLM calls whose span reported no usage, by the instrumentation that sent them: their cost is "
            "unknown (never counted as $0).", labels=list(WITHOUT_USAGE_LABELS))
        for labels, count in sorted(snap.without_usage.items()):
            without_usage.add_metric(list(labels), count)
        yield without_usage

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
            "sanitised and token counts clamped (still billed), calls over limits.max_tokens_per_call and spans "
            "outside the start-time window (limits.max_span_age_hours, limits.max_span_future_seconds) rejected.",
            labels=["field", "action"])
        for (field, action), count in sorted(self._bounded_values().items()):
            bounded.add_metric([field, action], count)
        yield bounded

        yield from self._budget_families()

    def _budget_families(self) -> Iterator:
        """`costline_budget_{limit,spent,remaining}_usd` for money budgets and `..._tokens` for token budgets (their
        own families: a unit label would mix dollars and tokens in one series name), each labelled with the scope,
        the `period` (daily, weekly, monthly, quarterly, yearly, rolling_<N>d), the `mode` (hard, soft) and the
        scope's owner labels."""
        snapshot = self._budgets().snapshot()
        labels = ["scope", "period", "mode", *BUDGET_LABELS]
        families = {}
        for unit, what in (("usd", "Configured budget."), ("tokens", "Configured token budget.")):
            families[unit] = (
                GaugeMetricFamily(f"costline_budget_limit_{unit}", what, labels=labels),
                GaugeMetricFamily(f"costline_budget_spent_{unit}", "Spent in the current period (from the ledger).",
                                  labels=labels),
                GaugeMetricFamily(f"costline_budget_remaining_{unit}", "Budget left in the current period.",
                                  labels=labels))
        for state in snapshot.states:
            owner = dict(state.owner)
            values = [state.scope, state.period, state.mode, *(owner.get(name, "") for name in BUDGET_LABELS)]
            limit, spent, remaining = families[state.unit]
            limit.add_metric(values, float(state.limit))
            spent.add_metric(values, float(state.spent))
            remaining.add_metric(values, float(state.remaining))
        effective = GaugeMetricFamily(
            "costline_budget_effective_remaining_usd",
            "Per key and user (and project, where one has a budget): the minimum remaining over every hard budget "
            "above it (the most restrictive wins).",
            labels=["scope", *HIERARCHY, "project"])
        effective_tokens = GaugeMetricFamily(
            "costline_budget_effective_remaining_tokens",
            "Per key and user (and project): the minimum remaining over every hard token budget above it.",
            labels=["scope", *HIERARCHY, "project"])
        for e in snapshot.effective:
            owner = dict(e.owner)
            values = [e.scope, *(owner.get(n, "") for n in HIERARCHY), owner.get("project", "")]
            if e.remaining_usd is not None:
                effective.add_metric(values, float(e.remaining_usd))
            if e.remaining_tokens is not None:
                effective_tokens.add_metric(values, float(e.remaining_tokens))
        elapsed = GaugeMetricFamily(
            "costline_budget_period_elapsed_seconds",
            "Seconds since the current calendar period began, in the configured time zone (the budget forecast "
            "divides the spend by the elapsed share of its period).", labels=["period"])
        length = GaugeMetricFamily("costline_budget_period_length_seconds",
                                   "Length of the current calendar period (a day of 23 to 25 hours, a month, ...).",
                                   labels=["period"])
        for period, seconds, total in snapshot.elapsed:
            elapsed.add_metric([period], seconds)
            length.add_metric([period], total)
        for unit in ("usd", "tokens"):
            yield from families[unit]
        yield from (effective, effective_tokens, elapsed, length)


class SeriesFamily(Metric):
    """One of the per-series families. `generate_text` asks for its lines (`exposition_lines`, written from the
    snapshot's columns); its `Sample`s are made only if something reads `samples` (prometheus_client's writers:
    OpenMetrics, `generate_latest`), so a plain-text scrape makes no object per sample."""

    def __init__(self, name: str, documentation: str, typ: str, lines: Callable[[], Iterable[bytes]],
                 samples: Callable[[], list[Sample]]) -> None:
        self._lines, self._make_samples, self._samples = lines, samples, None
        super().__init__(name, documentation, typ)

    @property
    def samples(self) -> list[Sample]:
        if self._samples is None:
            self._samples = self._make_samples()
        return self._samples

    @samples.setter
    def samples(self, value: list[Sample]) -> None:
        self._samples = value or None  # Metric.__init__ sets []: stay lazy

    def exposition_lines(self) -> Iterable[bytes]:
        return self._lines()


def _series_families(snap: SeriesSnapshot, names: list[str], values_by_text: Callable[[], dict]
                     ) -> tuple[SeriesFamily, ...]:
    """The per-series families of one snapshot. Each family is a list of line kinds (one sample per series of the
    family); the same kinds make the text lines and, if read, the `Sample`s in the order `add_metric` would give."""
    labels, splits, counts = snap.labels, snap.splits, snap.counts
    label_dicts: list[dict[str, str]] = []

    def samples(selector: Sequence | None, kinds: list[LineKind]) -> list[Sample]:
        """The family's `Sample`s: per series, one per kind (label dicts as `add_metric` makes them)."""
        if not label_dicts:  # once per snapshot, for every family that is read
            label_dicts.extend({name: values[name] for name in names}
                               for values in snap.label_values(values_by_text()))
        out = []
        for i, own in enumerate(label_dicts if selector is None else compress(label_dicts, selector)):
            for name, extra, column in kinds:
                out.append(Sample(name, own if extra is None else {**own, extra[0]: extra[1]}, column[i]))
        return out

    def selected(selector: Sequence) -> tuple[list[bytes], dict[str, list[int]], Sequence]:
        return list(compress(labels, selector)), {k: list(compress(v, selector)) for k, v in splits.items()}, selector

    def family(name: str, documentation: str, typ: str,
               *parts: tuple[tuple[list[bytes], dict, Sequence | None], list[LineKind]]) -> SeriesFamily:
        """A family in parts, each (series, kinds): one line per kind for each series the part selects, part after
        part (the rare units: lines only for the series where they are not 0)."""
        return SeriesFamily(
            name, documentation, typ,
            lambda: chain.from_iterable(series_lines(snap.label_names, s[0], s[1], k) for s, k in parts),
            lambda: [sample for s, k in parts for sample in samples(s[2], k)])

    def sparse(slot: Counts, sample: str, extra: tuple[str, str] | None, value=None
               ) -> tuple[tuple[list[bytes], dict, Sequence], list[LineKind]]:
        """A part of the series where a rare slot is not 0, in series order."""
        column = snap.rare[slot]
        if not column:  # the common case: no work per series for a unit nobody used
            return ([], {k: [] for k in splits}, []), [LineKind(sample, extra, [])]
        selector = [False] * len(labels)
        for i in column:
            selector[i] = True
        values = [column[i] for i in sorted(column)]
        return selected(selector), [LineKind(sample, extra, values if value is None else list(map(value, values)))]

    every = (labels, splits, None)
    # Derived from the counted slots: a series of only unpriced calls has no cost at all, not a cost of $0.
    priced_calls = list(map(sub, counts[REQUESTS], counts[UNPRICED]))
    priced = selected(priced_calls)
    cost = family("costline_cost_usd", "Priced cost of LLM calls in USD (list price or override).", "counter", (priced,
                  [LineKind("costline_cost_usd_total", None,
                            list(map(pico_to_float_usd, compress(counts[COST], priced_calls))))]))
    # The five token types on every series, as always; a rarer unit's type (1 h cache writes, audio, image, video)
    # only on the series where it is not 0, so a text-only workload has the series it always had.
    tokens = family("costline_tokens", "Tokens by type; input is uncached input. cache_write_1h is part of "
                    "cache_write; input_audio, input_image, input_video part of input; output_audio, output_image, "
                    "output_video part of output (reasoning too).", "counter", (every,
                    [LineKind("costline_tokens_total", ("type", kind), counts[slot])
                     for kind, slot in zip(TOKEN_TYPES, TOKEN_SLOTS, strict=True)]),
                    *(sparse(unit.slot, "costline_tokens_total", ("type", unit.name))
                      for unit in RARE_UNITS if unit.per == "token"))
    tools = family("costline_tool_calls", "Server-side tool calls the provider billed per call (web_search, "
                   "code_execution), by type.", "counter",
                   *(sparse(unit.slot, "costline_tool_calls_total", ("type", unit.name))
                     for unit in RARE_UNITS if unit.per == "request"))
    reported = Counts.REPORTED_COST_REQUESTS
    reported_requests = family(
        "costline_reported_cost_requests", "LLM calls whose span carried a cost computed by someone else (provider, "
        "gateway, instrumentation).", "counter", sparse(reported, "costline_reported_cost_requests_total", None))
    reported_cost = family(
        "costline_reported_cost_usd", "The cost others reported for those calls, in USD (kept beside Costline's "
        "price, which stays the bill).", "counter",
        sparse(Counts.REPORTED_COST_PICO_USD, "costline_reported_cost_usd_total", None, pico_to_float_usd))
    # On every series with reported costs, 0 included: "none disagreed" is an answer for the ratio alert.
    disagreeing = snap.rare[Counts.COST_DISAGREEMENTS]
    disagreements = family(
        "costline_cost_disagreements", "LLM calls whose reported cost differs from Costline's price by more than 1 % "
        "(or that Costline could not price).", "counter", (sparse(reported, "", None)[0],
        [LineKind("costline_cost_disagreements_total", None,
                  [disagreeing.get(i, 0) for i in sorted(snap.rare[reported])])]))
    requests = family("costline_requests", "LLM calls by outcome.", "counter", (every,
                      [LineKind("costline_requests_total", ("outcome", "success"),
                                list(map(sub, counts[REQUESTS], counts[ERRORS]))),
                       LineKind("costline_requests_total", ("outcome", "error"), counts[ERRORS])]))
    # Always present, 0 included, like requests: "no retries" is an answer for the retries-per-request panel.
    retries = family("costline_retries", "Retries the SDKs made before their calls' answers (http.request.resend_count).",
                     "counter", (every, [LineKind("costline_retries_total", None, counts[RETRIES])]))
    unpriced = family("costline_unpriced_requests", "LLM calls whose model could not be priced (never counted as $0).",
                      "counter", (selected(counts[UNPRICED]),
                      [LineKind("costline_unpriced_requests_total", None, list(compress(counts[UNPRICED],
                                                                                        counts[UNPRICED])))]))
    histogram = snap.histogram_of
    rows = [row for row in histogram if row >= 0]  # in series order
    kinds, cumulative = [], [0] * len(rows)
    name = "costline_time_to_first_token_seconds"
    for bound, column in zip(snap.ttft_bounds, snap.buckets, strict=True):
        cumulative = list(map(add, cumulative, map(column.__getitem__, rows)))
        kinds.append(LineKind(f"{name}_bucket", ("le", str(bound)), cumulative))
    observed = list(map(snap.ttft_count.__getitem__, rows))
    kinds += [LineKind(f"{name}_bucket", ("le", "+Inf"), observed), LineKind(f"{name}_count", None, observed),
              LineKind(f"{name}_sum", None, list(map(snap.ttft_sum.__getitem__, rows)))]
    ttft = family(name, "Time to the first chunk of streamed responses.", "histogram",
                  (selected(list(map((-1).__lt__, histogram))), kinds))
    return (cost, tokens, requests, retries, unpriced, ttft, tools, reported_requests, reported_cost, disagreements)
