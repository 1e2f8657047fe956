"""`generate_text` (the `/metrics` writer) against prometheus_client's `generate_latest` on the same registry."""

from __future__ import annotations

import gzip
import math
import shutil
import subprocess
from decimal import Decimal

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, Summary, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.parser import text_string_to_metric_families

from costline.processor.clock import system_clock
from costline.processor.http.api import AdminApi
from costline.processor.http.server import Request
from costline.processor.metrics.aggregate import SeriesAggregator
from costline.processor.metrics.collector import CostlineCollector
from costline.processor.metrics.exposition import SERIES_PER_BLOCK, encoder_for, generate_chunks, generate_text
from costline.processor.model import Entry, Owner, call_keys
from costline.processor.units import usd_to_pico
from tests.processor.conftest import make_call
from tests.processor.metrics.test_metrics import LABELS, exposition

HOSTILE = ['say "hi"', "back\\slash", "two\nlines", "ünïcødé ✓ 日本", "__overflow__", "", "\\n literal", 'a\\"b',
           "trailing\\"]


class Families:
    """A collector yielding fixed families: odd label values, NaN/Inf, timestamps, shared and unshared label dicts."""

    def collect(self):
        cost = CounterMetricFamily("hostile_cost_usd", 'Help with "quotes", a \\ and a\nnewline.',
                                   labels=["team", "model"])
        for i, value in enumerate(HOSTILE):
            cost.add_metric([value, HOSTILE[-1 - i]], i * 0.1)
        yield cost
        gauge = GaugeMetricFamily("hostile_values", "NaN, infinities, big and tiny values.", labels=["kind"])
        for kind, value in [("nan", math.nan), ("inf", math.inf), ("-inf", -math.inf), ("big", 1e22),
                            ("million", 1_000_000), ("int", 12345), ("neg", -7), ("tiny", 1.5e-9), ("zero", -0.0)]:
            gauge.add_metric([kind], value)
        yield gauge
        stamped = GaugeMetricFamily("hostile_stamped", "With a timestamp.", labels=["team"])
        stamped.add_metric(['x"y'], 3, timestamp=1_700_000_000.25)
        yield stamped
        histogram = HistogramMetricFamily("hostile_latency_seconds", "A histogram.", labels=["team"])
        histogram.add_metric(["a\nb"], [("0.5", 1), ("1.0", 2), ("+Inf", 3)], sum_value=1.7)
        yield histogram
        yield GaugeMetricFamily("hostile_empty", "No samples at all.", labels=["team"])


def registry_with_hostile_labels() -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(Families())
    Counter("plain_events", "A plain counter.", ["label"], registry=registry).labels('q"\\\n✓').inc(2)
    Gauge("plain_nan", "No labels.", registry=registry).set(math.nan)
    Histogram("plain_seconds", "Histogram with _created.", registry=registry).observe(0.2)
    Summary("plain_observed", "Summary.", ["x"], registry=registry).labels("__overflow__").observe(4)
    Info("plain_build", "Info.", registry=registry).info({"version": '1.0 "beta"'})
    return registry


def parsed(text: str) -> list:
    """Families with their samples, NaN made comparable."""
    out = []
    for family in text_string_to_metric_families(text):
        samples = [(s.name, s.labels, "NaN" if math.isnan(s.value) else s.value, s.timestamp) for s in family.samples]
        out.append((family.name, family.type, family.documentation, samples))
    return out


def golden_registry_text(tmp_path) -> tuple[str, str]:
    """The golden fixture's registry, exposed both ways."""
    owner = Owner("acme", "marketing", "campaigns", "", "", "", "", "")
    ok = make_call(1, input_tokens=600, cache_read=400, output=50)
    ok.time_to_first_token_s = 0.7
    failed = make_call(2, error="rate_limit_error")
    failed.retries = 2
    unpriced = make_call(3, model="acme-llama-70b")
    entries = [Entry(ok, owner, usd_to_pico(Decimal("0.25")), call_keys(ok)), Entry(failed, owner, 0, call_keys(failed)),
               Entry(unpriced, owner, None, call_keys(unpriced))]
    return exposition(tmp_path, entries), exposition(tmp_path / "b", entries, writer=generate_text)


def test_golden_fixture_same_as_generate_latest(tmp_path):
    (tmp_path / "b").mkdir()
    latest, text = golden_registry_text(tmp_path)
    assert "costline_time_to_first_token_seconds_bucket" in text
    assert parsed(text) == parsed(latest)
    assert text == latest  # byte for byte, labels sorted like prometheus_client


def test_hostile_labels_same_as_generate_latest():
    registry = registry_with_hostile_labels()
    latest, text = generate_latest(registry).decode(), generate_text(registry).decode()
    assert parsed(text) == parsed(latest)
    created = lambda body: [ln for ln in body.splitlines() if "_created" not in ln]  # noqa: E731 - wall clock
    assert created(text) == created(latest)
    assert r'team="say \"hi\""' in text and r'team="two\nlines"' in text and 'ünïcødé ✓ 日本' in text
    assert "hostile_values{kind=\"nan\"} NaN" in text and "hostile_values{kind=\"inf\"} +Inf" in text


def test_process_and_platform_collectors_and_many_series():
    from prometheus_client import PlatformCollector, ProcessCollector

    aggregator = SeriesAggregator(LABELS, 10_000, [0.5, 1.0])
    entries = []
    for i in range(300):
        call = make_call(i, team=f"team-{i % 37}", model=["m-1", 'm"2', "m\\3"][i % 3])
        call.time_to_first_token_s = 0.6 if i % 2 else None
        entries.append(Entry(call, Owner("acme", f"team-{i % 37}", f"p\n{i % 11}", "", "", "", "", ""),
                             usd_to_pico(Decimal("0.001")) if i % 5 else None, call_keys(call)))
    aggregator.add(entries)
    registry = CollectorRegistry()
    registry.register(CostlineCollector(lambda: aggregator, _NoBudgets, lambda: {"billed": 300}))
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    latest, text = generate_latest(registry).decode(), generate_text(registry).decode()
    ours = [f for f in parsed(text) if f[0].startswith("costline_")]
    assert ours == [f for f in parsed(latest) if f[0].startswith("costline_")]
    assert [f[0] for f in parsed(text)] == [f[0] for f in parsed(latest)]  # process_/python_ too, same order


def test_series_blocks_with_values_past_a_million_and_percent_labels():
    """Series are written a block at a time from a per-family `bytes %` template: blocks join seamlessly, a value
    past a million in one series switches its column to Go's exponent form without touching the others, and a `%`
    in a label value is text, not a conversion."""
    aggregator = SeriesAggregator(LABELS, 10_000, [0.5, 1.0])
    entries = []
    for i in range(2 * SERIES_PER_BLOCK + 3):
        call = make_call(i, team=f"t%s{i}", model="m%d", input_tokens=2_000_000 + i if i % 97 == 5 else i,
                         error="boom" if i % 3 else None)
        call.time_to_first_token_s = 1e7 if i == SERIES_PER_BLOCK else 0.3 if i % 2 else None
        entries.append(Entry(call, Owner("acme", f"t%s{i}", "p%", "", "", "", "", ""),
                             usd_to_pico(Decimal(2_000_000 if i == 7 else "0.001")), call_keys(call)))
    aggregator.add(entries)
    registry = CollectorRegistry()
    registry.register(CostlineCollector(lambda: aggregator, _NoBudgets, lambda: {"billed": 1}))
    text = generate_text(registry)
    assert text == generate_latest(registry)
    assert b"2.000005e+06" in text and b"2e+06" in text and b"1e+07" in text
    assert b"".join(generate_chunks(registry)) == text


class _NoBudgets:
    def snapshot(self):
        from types import SimpleNamespace

        return SimpleNamespace(states=[], effective=[], elapsed=[])


@pytest.mark.skipif(shutil.which("promtool") is None, reason="make venv installs Debian's prometheus package")
@pytest.mark.parametrize("source", ["golden", "hostile"])
def test_promtool_check_metrics(tmp_path, source):
    if source == "golden":
        (tmp_path / "b").mkdir()
        text = golden_registry_text(tmp_path)[1]
    else:
        text = generate_text(registry_with_hostile_labels()).decode()
    result = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_negotiation_keeps_openmetrics_and_explicit_escaping_with_prometheus_client():
    assert encoder_for("")[0] is generate_text
    assert encoder_for("text/plain; version=0.0.4")[0] is generate_text
    assert encoder_for("application/openmetrics-text; version=1.0.0")[0] is not generate_text
    assert encoder_for("text/plain; version=1.0.0; escaping=allow-utf-8")[0] is not generate_text


def test_metrics_endpoint_serves_generate_text():
    registry = registry_with_hostile_labels()

    class Backend:
        pass

    backend = Backend()
    backend.registry = registry
    api = AdminApi(backend, ("team",), clock=system_clock)
    response = api(Request("GET", "/metrics", {}, {}))
    assert response.status == 200 and response.content_type.startswith("text/plain; version=0.0.4")
    text = b"".join(response.body).decode()  # a stream of blocks
    assert parsed(text) == parsed(generate_text(registry).decode())
    assert 'plain_events_total{label="q\\"\\\\\\n✓"} 2.0' in text


def test_metrics_endpoint_gzip_is_generate_text_compressed():
    registry = registry_with_hostile_labels()

    class Backend:
        pass

    backend = Backend()
    backend.registry = registry
    api = AdminApi(backend, ("team",), clock=system_clock)
    response = api(Request("GET", "/metrics", {}, {"Accept-Encoding": "gzip, deflate"}))
    assert response.status == 200 and ("Content-Encoding", "gzip") in response.headers
    assert gzip.decompress(b"".join(response.body)) == generate_text(registry)
    openmetrics = api(Request("GET", "/metrics", {}, {"Accept": "application/openmetrics-text; version=1.0.0",
                                                      "Accept-Encoding": "gzip"}))
    assert gzip.decompress(b"".join(openmetrics.body)).endswith(b"# EOF\n")


def test_rare_units_and_calls_without_usage_same_as_generate_latest(tmp_path):
    from tests.processor.metrics.test_metrics import rare_entries
    (tmp_path / "b").mkdir()
    _, entries = rare_entries()
    latest, text = exposition(tmp_path, entries), exposition(tmp_path / "b", entries, writer=generate_text)
    assert 'type="input_audio"' in text and "costline_calls_without_usage_total{" in text
    assert parsed(text) == parsed(latest)
    assert text == latest
