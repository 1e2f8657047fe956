"""Prometheus text format 0.0.4 for `/metrics`, written like `prometheus_client.generate_latest` but faster.

`generate_latest` validates and escapes every label name and value of every sample (~2 µs per label); at 100k series
(~9 samples of 9-10 labels each) that is most of a 20 s scrape. `generate_text` walks `registry.collect()` the same
way (HELP/TYPE lines, counters' `_total`, info/stateset/unknown munging, OpenMetrics-only `_created`/`_gsum`/`_gcount`
samples moved to their own gauge after the family, timestamps, no exemplars), with the same escaping (label and
metric names with the default `underscores` scheme, label values backslash/quote/newline-escaped, UTF-8 kept,
labels sorted by name, values through `floatToGoString`), so its output is byte for byte `generate_latest`'s. What
it caches, for one call only: each distinct label value's `name="value"` text (per label name), each label-name set's
sorted order, and each metric name's escaped form. The per-sample work left is in C: an `itemgetter` picks the
values in sorted label order, and `map` looks their texts up.

Families that can write their own lines (`SeriesLines`: Costline's per-series families, see `metrics.py`) are not
walked sample by sample: `series_lines` writes them from label texts made once per series and columns of values,
with one C-level `bytes %` per series (all its lines of the family) instead of a `Sample` and a format per line.
`generate_chunks` gives the exposition in blocks of a few hundred series, for a writer that sends them as they come.

Only the default negotiation result is served this way; OpenMetrics and text with an explicit escaping scheme stay
with prometheus_client (see `encoder_for`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import repeat
from operator import getitem, itemgetter
from typing import NamedTuple, Protocol, runtime_checkable

from prometheus_client.exposition import choose_encoder, generate_latest
from prometheus_client.openmetrics.exposition import escape_label_name, escape_metric_name
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

_TYPES = {"counter": "counter", "info": "gauge", "stateset": "gauge", "gaugehistogram": "histogram",
          "unknown": "untyped"}
_SUFFIXES = {"counter": "_total", "info": "_info"}
_OM_ONLY = ("_created", "_gsum", "_gcount")


class _Fragments(dict):
    """`label="escaped value"` per value of one label name, computed on first use."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = escape_label_name(name)

    def __missing__(self, value: str) -> str:
        text = self[value] = f'{self.name}="{_escape_value(value)}"'
        return text


def _escape_value(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r'\"')


def label_fragment(name: str, value: str) -> bytes:
    """`name="value"` as the exposition writes one label (escaped, UTF-8)."""
    return f'{escape_label_name(name)}="{_escape_value(value)}"'.encode()


@runtime_checkable
class SeriesLines(Protocol):
    """A family that writes its own sample lines (HELP and TYPE are written for it, from `name` and `type`)."""

    def exposition_lines(self) -> Iterable[bytes]:
        """Pieces whose concatenation is the family's sample lines."""


class LineKind(NamedTuple):
    """One sample per series: its name, the label it adds to the series' labels (or None), and its values."""

    name: str
    extra: tuple[str, str] | None
    values: Sequence[int] | Sequence[float]


SERIES_PER_BLOCK = 256
"""Series written per block: each block is one `bytes` of a few hundred KiB, so the memory a scrape writes into stays
small and is reused from block to block (one 350 MiB buffer, freshly mapped, costs more in page faults than the
copy into it)."""


def series_lines(label_names: Sequence[str], labels: Sequence[bytes], splits: Mapping[str, Sequence[int]],
                 kinds: Sequence[LineKind]) -> Iterator[bytes]:
    """The lines of `kinds` for every series, series after series, as `generate_latest` writes such samples, in
    blocks of `SERIES_PER_BLOCK` series.

    `labels[i]` is series i's label text (labels sorted by name, escaped, comma-separated: `label_names`' order);
    a kind's extra label goes in its sorted place: first, last, or at the comma at `splits[label][i]`. One series'
    lines of every kind are one `bytes %` of a template made once per family (`name{%s,type="input"} %d.0\n...`)
    over a row of the label and value columns (`zip`, in C): no Python code runs per line, or per series."""
    if not labels:
        return
    template, columns = [], []
    halves: dict[str, tuple[list[bytes], list[bytes]]] = {}
    for name, extra, values in kinds:
        start = _literal(escape_metric_name(name).encode()) + b"{"
        if extra is None:
            template.append(start + b"%s} ")
            columns.append(labels)
        else:
            fragment = _literal(label_fragment(*extra))
            at = sum(n < extra[0] for n in label_names)
            if at == 0:
                template.append(start + fragment + b",%s} ")
                columns.append(labels)
            elif at == len(label_names):
                template.append(start + b"%s," + fragment + b"} ")
                columns.append(labels)
            else:  # the label text split at the comma where the extra label goes (once per scrape and label)
                label = extra[0]
                if label not in halves:
                    at = splits[label]
                    halves[label] = (list(map(getitem, labels, map(slice, at))),
                                     list(map(getitem, labels, map(slice, map((1).__add__, at), repeat(None)))))
                template.append(start + b"%s," + fragment + b",%s} ")
                columns += halves[label]
        conversion, column = _value_column(values)
        template.append(conversion + b"\n")
        columns.append(column)
    line = b"".join(template).__mod__
    for first in range(0, len(labels), SERIES_PER_BLOCK):
        stop = first + SERIES_PER_BLOCK
        yield b"".join(map(line, zip(*[column[first:stop] for column in columns], strict=True)))


def _literal(text: bytes) -> bytes:
    """`text` as it stands in a `bytes %` template."""
    return text.replace(b"%", b"%%")


def _value_column(values: Sequence[int] | Sequence[float]) -> tuple[bytes, Sequence]:
    """A template conversion and the column it formats, giving `floatToGoString(value)` per value. Below a million
    (and above minus one), Go's format is Python's repr of the float: `%d.0` for integers, `%a` (ascii of repr) for
    floats, in C; a column with a value outside is written as texts (`%s`), that value in the exponent form only
    `floatToGoString` writes."""
    fast = b"%a" if type(values[0]) is float else b"%d.0"
    if -1_000_000 < min(values) and max(values) < 1_000_000:
        return fast, values
    return b"%s", [fast % v if -1_000_000 < v < 1_000_000 else floatToGoString(v).encode() for v in values]


def _escape_help(text: str) -> str:
    return text.replace("\\", r"\\").replace("\n", r"\n")


def generate_text(registry: Collector) -> bytes:
    """The registry's exposition in the Prometheus text format 0.0.4, as `generate_latest(registry)` gives it."""
    return b"".join(generate_chunks(registry))


def generate_chunks(registry: Collector) -> Iterator[bytes]:
    """`generate_text(registry)` in pieces (a few hundred KiB at most each), for writing as they are made."""
    fragments: dict[str, _Fragments] = {}
    # Per label-name set (in the dict's own order): the values in sorted-name order, and their fragment tables.
    orders: dict[tuple[str, ...], tuple[Callable, tuple[_Fragments, ...]]] = {}
    names: dict[str, str] = {}

    def label_text(labels: dict) -> str:
        keys = tuple(labels)
        order = orders.get(keys)
        if order is None:
            ordered = sorted(keys)
            tables = tuple(fragments.setdefault(k, _Fragments(k)) for k in ordered)  # once per label-name set
            pick = itemgetter(*ordered)
            if len(ordered) == 1:
                single = pick
                pick = lambda labels: (single(labels),)  # noqa: E731
            order = orders[keys] = (pick, tables)
        pick, tables = order
        return ",".join(map(getitem, tables, pick(labels)))

    def line(sample) -> str:
        name = names.get(sample.name)
        if name is None:
            name = names[sample.name] = escape_metric_name(sample.name)
        value = sample.value
        # floatToGoString's answer for small ints (most counters here), without its float/inf/nan checks.
        value = f"{value}.0" if type(value) is int and -1_000_000 < value < 1_000_000 else floatToGoString(value)
        labels = sample.labels
        end = "\n" if sample.timestamp is None else f" {int(float(sample.timestamp) * 1000):d}\n"
        if not labels:
            return f"{name} {value}{end}"
        return f"{name}{{{label_text(labels)}}} {value}{end}"

    output: list[str] = []
    append = output.append
    for metric in registry.collect():
        try:
            mtype = metric.type
            mname = escape_metric_name(metric.name + _SUFFIXES.get(mtype, ""))
            documentation = _escape_help(metric.documentation)
            append(f"# HELP {mname} {documentation}\n# TYPE {mname} {_TYPES.get(mtype, mtype)}\n")
            if isinstance(metric, SeriesLines):
                yield "".join(output).encode("utf-8")
                output.clear()
                yield from metric.exposition_lines()
                continue
            om_names = {metric.name + suffix: suffix for suffix in _OM_ONLY}
            om_samples: dict[str, list[str]] = {}
            for sample in metric.samples:
                suffix = om_names.get(sample.name)
                if suffix is None:
                    append(line(sample))
                else:
                    om_samples.setdefault(suffix, []).append(line(sample))
        except Exception as exception:
            exception.args = (exception.args or ("",)) + (metric,)
            raise
        for suffix, lines in sorted(om_samples.items()):
            om_name = escape_metric_name(metric.name + suffix)
            append(f"# HELP {om_name} {documentation}\n# TYPE {om_name} gauge\n")
            output.extend(lines)
    yield "".join(output).encode("utf-8")


def encoder_for(accept: str) -> tuple[Callable[[Collector], bytes], str]:
    """prometheus_client's content negotiation, with `generate_text` in place of its plain-text default."""
    encoder, content_type = choose_encoder(accept)
    return (generate_text if encoder is generate_latest else encoder), content_type
