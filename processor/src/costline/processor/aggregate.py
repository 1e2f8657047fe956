"""In-memory series for Prometheus, kept apart from their export (`metrics.py`).

Series are keyed by a tuple of label values. Every label has a cardinality limit: once a label has seen that many
distinct values, new ones become `__overflow__` (and are counted), so a client sending a million team names costs
a bounded amount of memory. Counters here start at zero with the process, as Prometheus counters do; the ledger,
not these, is the source of exact totals.

Memory is what bounds the series count (the issue asks for 100k active series), so a series is one flat list of
numbers, indexed by the constants below, rather than an object holding lists: one object per series instead of
three, and a scrape's snapshot is one C-level list copy per series. Label values are stored once per distinct
value (`CardinalityLimiter.admit` returns the admitted copy), not once per series.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterable, Mapping, Sequence
from operator import attrgetter

from costline.processor.model import CALL_LABELS, OWNER_FIELDS, TOKEN_TYPES, Entry

OVERFLOW = "__overflow__"
OWNER_LABELS = OWNER_FIELDS
"""Label names, in the order series keys use: the call's (`CALL_LABELS`), then any of the owner's (`model.Owner`)."""
__all__ = ["CALL_LABELS", "OWNER_LABELS", "OVERFLOW", "TOKEN_TYPES", "CardinalityLimiter", "SeriesAggregator"]

# Positions in a series' list of counters.
COST = 0
"""Pico-dollars: integer sums stay exact however many calls are added."""
INPUT, OUTPUT, CACHE_READ, CACHE_WRITE, REASONING = 1, 2, 3, 4, 5
"""Tokens, in `TOKEN_TYPES` order."""
SUCCESS, ERRORS, UNPRICED, PRICED, RETRIES = 6, 7, 8, 9, 10
TTFT_SUM, TTFT_COUNT = 11, 12
TTFT_BUCKETS = 13
"""First of the time-to-first-token buckets (not cumulative), one per bound."""
TOKEN_SLOTS = (INPUT, OUTPUT, CACHE_READ, CACHE_WRITE, REASONING)


class CardinalityLimiter:
    """Admits at most `limit` distinct values per label (or that label's own limit); the rest are `__overflow__`."""

    def __init__(self, names: Sequence[str], limit: int, per_label: Mapping[str, int] | None = None) -> None:
        # value -> the same value as first admitted: series keys then share one string per distinct value.
        self._seen: dict[str, dict[str, str]] = {name: {} for name in names}
        self.overflows: dict[str, int] = dict.fromkeys(names, 0)
        self.limits: dict[str, int] = {}
        self.configure(limit, per_label)

    def configure(self, limit: int, per_label: Mapping[str, int] | None = None) -> None:
        """New limits (a reload). Values already admitted stay: a series never changes its labels mid-life."""
        per_label = per_label or {}
        self.limits = {name: per_label.get(name, limit) for name in self._seen}

    def admit(self, name: str, value: str) -> str:
        seen = self._seen[name]
        admitted = seen.get(value)
        if admitted is not None:
            return admitted
        if len(seen) >= self.limits[name]:
            self.overflows[name] += 1
            return OVERFLOW
        seen[value] = value
        return value


class SeriesAggregator:
    """Thread-safe accumulation of calls into labelled series."""

    def __init__(self, label_names: Sequence[str], limit: int, ttft_buckets: Sequence[float],
                 per_label_limits: Mapping[str, int] | None = None) -> None:
        self.label_names = tuple(label_names)
        self.ttft_bounds = tuple(ttft_buckets)
        self._limiter = CardinalityLimiter(self.label_names, limit, per_label_limits)
        self._series: dict[tuple[str, ...], list] = {}
        owner_labels = self.label_names[len(CALL_LABELS):]
        if self.label_names[:len(CALL_LABELS)] != CALL_LABELS or not set(owner_labels) <= set(OWNER_LABELS):
            raise ValueError(f"labels must be {CALL_LABELS} then owner labels among {OWNER_LABELS}")
        self._owner_values = attrgetter(*owner_labels) if len(owner_labels) > 1 else (
            lambda owner: (getattr(owner, owner_labels[0]),) if owner_labels else ())
        self._empty = [0] * (TTFT_BUCKETS + len(self.ttft_bounds))
        self._empty[TTFT_SUM] = 0.0
        self._lock = threading.Lock()
        self.conflicts = 0

    def add(self, entries: Iterable[Entry], conflicts: int = 0) -> None:
        bounds = self.ttft_bounds
        with self._lock:
            self.conflicts += conflicts
            all_series = self._series
            for e in entries:
                call = e.call
                raw = (call.provider, call.model or "", call.operation,
                       *self._owner_values(e.owner))
                # A series keyed by exactly these values exists only if they were all admitted: no limiter work.
                s = all_series.get(raw)
                if s is None:
                    s = self._series_for(raw)
                if e.cost_pico is None:
                    s[UNPRICED] += 1
                else:
                    s[COST] += e.cost_pico
                    s[PRICED] += 1
                s[INPUT] += call.input_tokens
                s[OUTPUT] += call.output_tokens
                s[CACHE_READ] += call.cache_read_tokens
                s[CACHE_WRITE] += call.cache_write_tokens
                s[REASONING] += call.reasoning_tokens
                if call.error_type is None:
                    s[SUCCESS] += 1
                else:
                    s[ERRORS] += 1
                s[RETRIES] += call.retries
                ttft = call.time_to_first_token_s
                if ttft is not None and ttft >= 0:
                    i = bisect.bisect_left(bounds, ttft)
                    if i < len(bounds):
                        s[TTFT_BUCKETS + i] += 1
                    s[TTFT_SUM] += ttft
                    s[TTFT_COUNT] += 1

    def _series_for(self, raw: tuple[str, ...]) -> list:
        """The series for label values not seen as a series key yet: admitted through the limiter (over the limit,
        a value becomes `__overflow__`, so several raw keys can share one series)."""
        admit = self._limiter.admit
        labels = tuple(admit(name, value) for name, value in zip(self.label_names, raw, strict=True))
        s = self._series.get(labels)
        if s is None:
            s = self._series[labels] = self._empty.copy()
        return s

    def set_limits(self, limit: int, per_label_limits: Mapping[str, int] | None = None) -> None:
        with self._lock:
            self._limiter.configure(limit, per_label_limits)

    def snapshot(self) -> tuple[dict[tuple[str, ...], list], dict[str, int], int]:
        """A consistent copy: (series label values -> counters indexed by the constants above, overflows per
        label, ownership conflicts)."""
        with self._lock:
            copy = {labels: s.copy() for labels, s in self._series.items()}
            return copy, dict(self._limiter.overflows), self.conflicts
