"""In-memory series for Prometheus, kept apart from their export (`metrics.py`).

Series are keyed by their label values. Every label has a cardinality limit: once a label has seen that many
distinct values, new ones become `__overflow__` (and are counted), so a client sending a million team names costs
a bounded amount of memory. Counters here start at zero with the process, as Prometheus counters do; the ledger,
not these, is the source of exact totals.

Memory and scrape time bound the series count (100k active series are the aim), so a series is not an object:

- its labels are kept once, as the text the exposition writes between the braces (`model="gpt-4o",org="acme"`,
  sorted by name, escaped), made when the series is created. That text is also the series' key, and each distinct
  label value's `name="value"` text is made once, when the limiter admits the value;
- its counters are one position in a column per `model.Counts` slot it keeps (`SERIES_COUNTS`: the same counter
  vector an hourly ledger row sums, less the unpriced tokens only a reprice needs; an `array` of 4-byte integers
  for call counts, 8-byte for tokens and cost, each widening — to 8 bytes, then to Python integers — only when a count
  outgrows it), and its time-to-first-token histogram, if it has one, a position in the histogram columns;
- the rare slots (`RARE_COUNTS`: the billable units beyond the five token types, and costs reported by others) are
  sparse, series position -> count, filled only for calls that carry them (`LLMCall.rare`): a text-only workload
  keeps no column for them and the exposition writes no line for them;
- calls without usage are counted apart, per source, provider and model (`costline_calls_without_usage_total`), under
  a limiter of their own.

A scrape then copies the columns (C-level) and writes lines from them (`exposition.series_lines`), never
rendering a label again; nothing here is a Python object per series but its label text.
"""

from __future__ import annotations

import bisect
import threading
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from operator import attrgetter, getitem, itemgetter

from costline.processor.metrics.exposition import label_fragment
from costline.processor.model import (
    BILLABLE_UNITS,
    CALL_LABELS,
    OWNER_FIELDS,
    TOKEN_COUNTS,
    TOKEN_TYPES,
    Counts,
    Entry,
    counts_of,
)
from costline.processor.overflow import OVERFLOW, FirstCome

__all__ = ["CALL_LABELS", "OVERFLOW", "OWNER_FIELDS", "SERIES_COUNTS", "TOKEN_TYPES",
           "SeriesAggregator", "SeriesSnapshot"]

RECENT_KEYS = 4096
SAMPLE_LABELS = ("type", "outcome", "le")
"""Labels some families add to a series' own (token type, request outcome, histogram bucket): the aggregator keeps,
per series, where each goes in its label text."""

REQUESTS, ERRORS, UNPRICED, COST, RETRIES = (Counts.REQUESTS, Counts.ERRORS, Counts.UNPRICED_REQUESTS,
                                             Counts.COST_PICO_USD, Counts.RETRIES)
TOKEN_SLOTS = TOKEN_COUNTS
SERIES_COUNTS = (REQUESTS, ERRORS, UNPRICED, *TOKEN_SLOTS, COST, RETRIES)
"""The `model.Counts` slots a series keeps in columns. Successful calls are requests less errors, priced calls
requests less unpriced ones: derived at the scrape, not counted twice."""
RARE_UNITS = BILLABLE_UNITS[5:]
"""The billable units beyond the five token types every release had (1 h cache writes, audio, image and video in and
out, web searches, code executions)."""
RARE_COUNTS = (*(unit.slot for unit in RARE_UNITS), Counts.REPORTED_COST_REQUESTS, Counts.REPORTED_COST_PICO_USD,
               Counts.COST_DISAGREEMENTS)
"""The slots a series keeps sparsely (only for the series a call carrying them came to)."""
WITHOUT_USAGE_LABELS = ("source", "provider", "model")
"""The labels of `costline_calls_without_usage_total`: which instrumentation sent calls without usage, for what."""


@dataclass(frozen=True, slots=True)
class SeriesSnapshot:
    """A consistent copy of every series, column by column (position i is series i, in creation order)."""

    label_names: tuple[str, ...]
    """In sorted order: the order of the labels in `labels`' texts."""
    labels: list[bytes]
    """Per series, the text between the exposition's braces."""
    splits: dict[str, array]
    """Per sample label whose place is inside the text: per series, the offset of the comma it goes before."""
    counts: dict[Counts, Sequence[int]]
    """One column per `SERIES_COUNTS` slot."""
    histogram_of: array
    """Per series, its row in the histogram columns, or -1 without one."""
    ttft_bounds: tuple[float, ...]
    buckets: tuple[Sequence[int], ...]
    """Per bound, per histogram row: observations in that bucket (not cumulative)."""
    ttft_count: array
    ttft_sum: array
    overflows: dict[str, int]
    conflicts: int
    rare: dict[Counts, dict[int, int]]
    """Per `RARE_COUNTS` slot: series position -> count, for the series where it is not 0."""
    without_usage: dict[tuple[str, str, str], int]
    """(source, provider, model) -> successful calls whose span reported no usage."""

    def __len__(self) -> int:
        return len(self.labels)

    def label_values(self, texts: Mapping[str, Mapping[bytes, str]]) -> Iterator[dict[str, str]]:
        """Each series' labels as a dict (sorted by name), from `texts` (`SeriesAggregator.values_by_text()`)."""
        names = self.label_names
        for text in self.labels:
            yield dict(zip(names, _values(text, names, texts), strict=True))


def _values(text: bytes, names: Sequence[str], texts: Mapping[str, Mapping[bytes, str]]) -> list[str]:
    """The values of a label text made by `SeriesAggregator`: each fragment is looked up, not unescaped."""
    values, start = [], 0
    for name in names:
        by_text = texts[name]
        # The fragment is the shortest prefix of the rest that is a known text of this label followed by a comma.
        end = text.find(b'",', start)
        while True:
            stop = len(text) if end < 0 else end + 1
            value = by_text.get(text[start:stop])
            if value is not None:
                values.append(value)
                start = stop + 1
                break
            if end < 0:
                raise ValueError(f"{text!r}: no known {name} label at byte {start}")
            end = text.find(b'",', end + 1)
    return values


class SeriesAggregator:
    """Thread-safe accumulation of calls into labelled series."""

    def __init__(self, label_names: Sequence[str], limit: int, ttft_buckets: Sequence[float],
                 per_label_limits: Mapping[str, int] | None = None) -> None:
        self.label_names = tuple(label_names)
        self.ttft_bounds = tuple(ttft_buckets)
        owner_labels = self.label_names[len(CALL_LABELS):]
        if self.label_names[:len(CALL_LABELS)] != CALL_LABELS or not set(owner_labels) <= set(OWNER_FIELDS):
            raise ValueError(f"labels must be {CALL_LABELS} then owner labels among {OWNER_FIELDS}")
        # The one overflow rule (`overflow.py`), first come; an admitted value is kept as its label text, made once.
        self._limiter: FirstCome[bytes] = FirstCome(self.label_names, limit, per_label_limits, label_fragment)
        self._owner_values = _attrgetter_tuple(owner_labels)
        # Label texts are joined in sorted-name order, the exposition's.
        order = sorted(range(len(self.label_names)), key=self.label_names.__getitem__)
        self.sorted_names = tuple(self.label_names[i] for i in order)
        self._pick_sorted = itemgetter(*order)
        self._texts_sorted = tuple(self._limiter.kept[name] for name in self.sorted_names)
        # A sample label goes after the labels that sort before it: inside the text, it needs the offset per series.
        self._split_at = {extra: sum(name < extra for name in self.sorted_names) for extra in SAMPLE_LABELS}
        self._split_at = {extra: at for extra, at in self._split_at.items() if 0 < at < len(self.sorted_names)}
        self._lock = threading.Lock()
        self.conflicts = 0
        self._index: dict[bytes, int] = {}
        """Label text -> series position; its keys, in order, are the series' label texts."""
        self._recent: dict[tuple[str, ...], int] = {}
        """Label values (as the call has them) -> series, for the series calls came to lately: most calls go to a
        few series, and this spares them making the label text; bounded, unlike one such key per series."""
        self._splits = {extra: array("I") for extra in self._split_at}
        # Call counts start as 4-byte columns, tokens and cost as 8-byte ones; each widens when outgrown (`_widened`).
        wide = {COST, *TOKEN_SLOTS}
        self._counts: dict[Counts, array | list] = {slot: array("q" if slot in wide else "I")
                                                    for slot in SERIES_COUNTS}
        self._histogram_of = array("i")
        self._buckets: list[array | list] = [array("I") for _ in self.ttft_bounds]
        self._ttft_count = array("q")
        self._ttft_sum = array("d")
        self._rare: dict[Counts, dict[int, int]] = {slot: {} for slot in RARE_COUNTS}
        self._without_usage: dict[tuple[str, str, str], int] = {}
        self._without_usage_limiter: FirstCome[str] = FirstCome(WITHOUT_USAGE_LABELS, limit, per_label_limits)

    def add(self, entries: Iterable[Entry], conflicts: int = 0) -> None:
        owner_values = self._owner_values
        with self._lock:
            self.conflicts += conflicts
            recent, counts = self._recent, self._counts
            # The counter vector's increments are spelled out here, statement by statement, not `model.counts_of`
            # added in a loop over the slots: this runs per billed call, and the loop (a tuple made, eleven
            # iterations) measured a third slower (docs/performance.md). Call counts are 4-byte columns that widen
            # when outgrown (each guarded); token and cost columns are 8-byte, cost widening past that.
            input_, output, cache_read, cache_write, reasoning = (counts[slot] for slot in TOKEN_SLOTS)
            requests, unpriced, errors, retries = counts[REQUESTS], counts[UNPRICED], counts[ERRORS], counts[RETRIES]
            for e in entries:
                call = e.call
                raw = (call.provider, call.model or "", call.operation, *owner_values(e.owner))
                i = recent.get(raw)
                if i is None:  # the recent series are found inline, the rest by a call
                    i = self._position(raw)
                try:
                    requests[i] += 1
                except OverflowError:
                    requests = _widened(counts, REQUESTS, i, 1)
                if e.cost_pico is None:
                    try:
                        unpriced[i] += 1
                    except OverflowError:
                        unpriced = _widened(counts, UNPRICED, i, 1)
                else:
                    try:
                        counts[COST][i] += e.cost_pico
                    except OverflowError:
                        _widened(counts, COST, i, e.cost_pico)
                input_[i] += call.input_tokens
                output[i] += call.output_tokens
                cache_read[i] += call.cache_read_tokens
                cache_write[i] += call.cache_write_tokens
                reasoning[i] += call.reasoning_tokens
                if call.error_type is not None:
                    try:
                        errors[i] += 1
                    except OverflowError:
                        errors = _widened(counts, ERRORS, i, 1)
                if call.retries:
                    try:
                        retries[i] += call.retries
                    except OverflowError:
                        retries = _widened(counts, RETRIES, i, call.retries)
                ttft = call.time_to_first_token_s
                if ttft is not None and ttft >= 0:
                    self._observe_ttft(i, ttft)
                if call.rare:  # one test for the rare units and reported costs: most calls carry none
                    self._add_rare(i, e)
                if not call.has_usage and call.error_type is None:
                    self._count_without_usage(call)

    def _add_rare(self, i: int, e: Entry) -> None:
        """Series `i`'s rare slots, from the call's counter vector (`counts_of`: a reported cost and its disagreement
        are judged by the one rule the ledger's rows are)."""
        vector = counts_of(e.call, e.cost_pico)
        for slot, column in self._rare.items():
            n = vector[slot]
            if n:
                column[i] = column.get(i, 0) + n

    def _count_without_usage(self, call) -> None:
        admit = self._without_usage_limiter.admit
        key = (admit("source", call.source), admit("provider", call.provider), admit("model", call.model or ""))
        self._without_usage[key] = self._without_usage.get(key, 0) + 1

    def _position(self, raw: tuple[str, ...]) -> int:
        """The series of label values not met lately: by its label text, made in C when every value is admitted
        already (the common case), remembered among the recent ones; else through the limiter (`_series_for`)."""
        try:
            i = self._index.get(b",".join(map(getitem, self._texts_sorted, self._pick_sorted(raw))))
        except KeyError:
            i = None
        if i is None:
            return self._series_for(raw)  # not remembered: an over-the-limit value is counted each time
        recent = self._recent
        if len(recent) >= RECENT_KEYS:
            recent.clear()
        recent[raw] = i
        return i

    def _observe_ttft(self, i: int, ttft: float) -> None:
        """One time to first token into series `i`'s histogram, made on its first observation."""
        row = self._histogram_of[i]
        if row < 0:
            row = self._histogram_of[i] = len(self._ttft_sum)
            for column in (*self._buckets, self._ttft_count):
                column.append(0)
            self._ttft_sum.append(0.0)
        bounds = self.ttft_bounds
        b = bisect.bisect_left(bounds, ttft)
        if b < len(bounds):
            try:
                self._buckets[b][row] += 1
            except OverflowError:
                _widened(self._buckets, b, row, 1)
        self._ttft_sum[row] += ttft
        self._ttft_count[row] += 1

    def _series_for(self, raw: tuple[str, ...]) -> int:
        """The series for label values not all admitted yet: admitted through the limiter (over the limit, a value
        becomes `__overflow__`, so several raw keys can share one series)."""
        admit = self._limiter.admit
        fragments = self._pick_sorted(tuple(admit(name, value)
                                            for name, value in zip(self.label_names, raw, strict=True)))
        text = b",".join(fragments)
        i = self._index.get(text)
        if i is None:
            i = self._index[text] = len(self._index)
            for extra, at in self._split_at.items():
                self._splits[extra].append(sum(map(len, fragments[:at])) + at - 1)
            for column in self._counts.values():
                column.append(0)
            self._histogram_of.append(-1)
        return i

    def set_limits(self, limit: int, per_label_limits: Mapping[str, int] | None = None) -> None:
        with self._lock:
            self._limiter.configure(limit, per_label_limits)
            self._without_usage_limiter.configure(limit, per_label_limits)

    def snapshot(self) -> SeriesSnapshot:
        """A consistent copy of every series (column copies, in C)."""
        with self._lock:
            overflows = dict(self._limiter.overflows)
            for label, count in self._without_usage_limiter.overflows.items():
                if count:
                    overflows[label] = overflows.get(label, 0) + count
            return SeriesSnapshot(
                self.sorted_names, list(self._index), {extra: s[:] for extra, s in self._splits.items()},
                {slot: column[:] for slot, column in self._counts.items()}, self._histogram_of[:], self.ttft_bounds,
                tuple(column[:] for column in self._buckets), self._ttft_count[:], self._ttft_sum[:],
                overflows, self.conflicts, {slot: dict(column) for slot, column in self._rare.items()},
                dict(self._without_usage))

    def values_by_text(self) -> dict[str, dict[bytes, str]]:
        """Per label name, label text -> value: what turns a series' text back into values (tests, and the
        `Sample`s prometheus_client's own writers read)."""
        with self._lock:
            limiter = self._limiter
            return {name: {text: value for value, text in texts.items()} | {limiter.overflow[name]: OVERFLOW}
                    for name, texts in limiter.kept.items()}

    def series(self) -> dict[tuple[str, ...], dict[str, int | float]]:
        """Every series by its label values (in `label_names` order): its counts by `Counts` name, with
        the rare slots (0 where none came), `ttft_count`, `ttft_sum` and `ttft_buckets` (not cumulative). For tests and diagnostics, not scrapes."""
        snap = self.snapshot()
        out = {}
        for i, labels in enumerate(snap.label_values(self.values_by_text())):
            counts: dict = {slot.name: snap.counts[slot][i] for slot in SERIES_COUNTS}
            counts.update({slot.name: snap.rare[slot].get(i, 0) for slot in RARE_COUNTS})
            row = snap.histogram_of[i]
            counts["ttft_count"] = snap.ttft_count[row] if row >= 0 else 0
            counts["ttft_sum"] = snap.ttft_sum[row] if row >= 0 else 0.0
            counts["ttft_buckets"] = [b[row] if row >= 0 else 0 for b in snap.buckets]
            out[tuple(labels[name] for name in self.label_names)] = counts
        return out


def _widened(columns: MutableMapping[Counts, array | list] | list[array | list], k: int, i: int, n: int
             ) -> array | list:
    """After `columns[k][i] += n` overflowed: `columns[k]` one size wider (4-byte, 8-byte, then Python integers),
    with the `n` added; returns the new column. An exact count never wraps."""
    column = columns[k]
    columns[k] = column = array("q", column) if isinstance(column, array) and column.typecode == "I" else list(column)
    column[i] += n
    return column


def _attrgetter_tuple(names: Sequence[str]) -> Callable[[object], tuple]:
    """`owner -> tuple of those fields`, whatever their number (`attrgetter` of one name returns the bare value)."""
    if len(names) > 1:
        return attrgetter(*names)
    if names:
        name = names[0]
        return lambda owner: (getattr(owner, name),)
    return lambda owner: ()
