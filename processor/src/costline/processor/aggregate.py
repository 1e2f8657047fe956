"""In-memory series for Prometheus, kept apart from their export (`metrics.py`).

Series are keyed by a tuple of label values. Every label has a cardinality limit: once a label has seen that many
distinct values, new ones become `__overflow__` (and are counted), so a client sending a million team names costs
a bounded amount of memory. Counters here start at zero with the process, as Prometheus counters do; the ledger,
not these, is the source of exact totals.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter

from costline.processor.ledger import Entry

OVERFLOW = "__overflow__"
CALL_LABELS = ("provider", "model", "operation")
OWNER_LABELS = ("org", "team", "project", "user", "key", "feature", "cost_center", "environment")
"""Label names, in the order series keys use: the call's, then any of the owner's (`ownership.Owner` fields)."""
TOKEN_TYPES = ("input", "output", "cache_read", "cache_write", "reasoning")


@dataclass(slots=True)
class Series:
    cost_pico: int = 0
    """Pico-dollars: integer sums stay exact however many calls are added."""
    tokens: list[int] = field(default_factory=lambda: [0] * len(TOKEN_TYPES))
    success: int = 0
    errors: int = 0
    unpriced: int = 0
    priced: int = 0
    ttft_buckets: list[int] = field(default_factory=list)
    ttft_sum: float = 0.0
    ttft_count: int = 0


class CardinalityLimiter:
    """Admits at most `limit` distinct values per label (or that label's own limit); the rest are `__overflow__`."""

    def __init__(self, names: Sequence[str], limit: int, per_label: Mapping[str, int] | None = None) -> None:
        self._seen: dict[str, set[str]] = {name: set() for name in names}
        self.overflows: dict[str, int] = dict.fromkeys(names, 0)
        self.limits: dict[str, int] = {}
        self.configure(limit, per_label)

    def configure(self, limit: int, per_label: Mapping[str, int] | None = None) -> None:
        """New limits (a reload). Values already admitted stay: a series never changes its labels mid-life."""
        per_label = per_label or {}
        self.limits = {name: per_label.get(name, limit) for name in self._seen}

    def admit(self, name: str, value: str) -> str:
        seen = self._seen[name]
        if value in seen:
            return value
        if len(seen) >= self.limits[name]:
            self.overflows[name] += 1
            return OVERFLOW
        seen.add(value)
        return value


class SeriesAggregator:
    """Thread-safe accumulation of calls into labelled series."""

    def __init__(self, label_names: Sequence[str], limit: int, ttft_buckets: Sequence[float],
                 per_label_limits: Mapping[str, int] | None = None) -> None:
        self.label_names = tuple(label_names)
        self.ttft_bounds = tuple(ttft_buckets)
        self._limiter = CardinalityLimiter(self.label_names, limit, per_label_limits)
        self._series: dict[tuple[str, ...], Series] = {}
        owner_labels = self.label_names[len(CALL_LABELS):]
        if self.label_names[:len(CALL_LABELS)] != CALL_LABELS or not set(owner_labels) <= set(OWNER_LABELS):
            raise ValueError(f"labels must be {CALL_LABELS} then owner labels among {OWNER_LABELS}")
        self._owner_values = attrgetter(*owner_labels) if len(owner_labels) > 1 else (
            lambda owner: (getattr(owner, owner_labels[0]),) if owner_labels else ())
        self._admitted: dict[tuple[str, ...], tuple[str, ...]] = {}
        self._lock = threading.Lock()
        self.conflicts = 0

    def add(self, entries: Iterable[Entry], conflicts: int = 0) -> None:
        with self._lock:
            self.conflicts += conflicts
            for e in entries:
                labels = self._labels(e)
                series = self._series.get(labels)
                if series is None:
                    series = self._series[labels] = Series(ttft_buckets=[0] * len(self.ttft_bounds))
                call = e.call
                if e.cost_pico is None:
                    series.unpriced += 1
                else:
                    series.cost_pico += e.cost_pico
                    series.priced += 1
                t = series.tokens
                t[0] += call.input_tokens
                t[1] += call.output_tokens
                t[2] += call.cache_read_tokens
                t[3] += call.cache_write_tokens
                t[4] += call.reasoning_tokens
                if call.error_type is None:
                    series.success += 1
                else:
                    series.errors += 1
                ttft = call.time_to_first_token_s
                if ttft is not None and ttft >= 0:
                    i = bisect.bisect_left(self.ttft_bounds, ttft)
                    if i < len(series.ttft_buckets):
                        series.ttft_buckets[i] += 1
                    series.ttft_sum += ttft
                    series.ttft_count += 1

    def set_limits(self, limit: int, per_label_limits: Mapping[str, int] | None = None) -> None:
        with self._lock:
            self._limiter.configure(limit, per_label_limits)
            self._admitted.clear()

    def _labels(self, e: Entry) -> tuple[str, ...]:
        call = e.call
        raw = (call.provider, call.response_model or call.request_model or "", call.operation,
               *self._owner_values(e.owner))
        labels = self._admitted.get(raw)
        if labels is None:
            admit = self._limiter.admit
            labels = tuple(admit(name, value) for name, value in zip(self.label_names, raw, strict=True))
            if OVERFLOW not in labels:
                # Bounded: one entry per series whose values were all admitted, i.e. at most the series count.
                self._admitted[raw] = labels
        return labels

    def snapshot(self) -> tuple[dict[tuple[str, ...], Series], dict[str, int], int]:
        """A consistent copy: (series, overflows per label, ownership conflicts)."""
        with self._lock:
            copy = {
                k: Series(s.cost_pico, list(s.tokens), s.success, s.errors, s.unpriced, s.priced, list(s.ttft_buckets),
                          s.ttft_sum, s.ttft_count)
                for k, s in self._series.items()
            }
            return copy, dict(self._limiter.overflows), self.conflicts
