"""The in-memory series: keys, cardinality limits, the TTFT histogram, and what a scrape sees after changes."""

from __future__ import annotations

from decimal import Decimal

from prometheus_client import CollectorRegistry, generate_latest

from costline.processor.metrics.aggregate import OVERFLOW, SeriesAggregator
from costline.processor.metrics.collector import CostlineCollector
from costline.processor.metrics.exposition import generate_text
from costline.processor.model import Counts, Entry, Owner, call_keys
from costline.processor.units import usd_to_pico
from tests.processor.conftest import make_call
from tests.processor.metrics.test_exposition import HOSTILE, _NoBudgets, parsed

LABELS = ("provider", "model", "operation", "org", "team", "project")


def owner(team="search", project="", org="acme", feature="") -> Owner:
    return Owner(org, team, project, "", "", feature, "", "")


def entry(n, *, team="search", project="", cost="0.01", ttft=None, model="gpt-4o-mini-2024-07-18", **call) -> Entry:
    c = make_call(n, team=team, model=model, **call)
    c.time_to_first_token_s = ttft
    return Entry(c, owner(team, project), None if cost is None else usd_to_pico(Decimal(cost)), call_keys(c))


def registry(aggregator: SeriesAggregator) -> CollectorRegistry:
    r = CollectorRegistry()
    r.register(CostlineCollector(lambda: aggregator, _NoBudgets, lambda: {"billed": 0}))
    return r


def test_calls_with_the_same_labels_add_into_one_series():
    aggregator = SeriesAggregator(LABELS, 100, [1.0])
    aggregator.add([entry(1, cost="0.25", input_tokens=600, cache_read=400, output=50),
                    entry(2, cost=None, error="timeout", input_tokens=10, output=0),
                    entry(3, team="ads"), entry(4, model=None)])
    series = aggregator.series()
    assert set(series) == {("openai", "gpt-4o-mini-2024-07-18", "chat", "acme", "search", ""),
                           ("openai", "gpt-4o-mini-2024-07-18", "chat", "acme", "ads", ""),
                           ("openai", "", "chat", "acme", "search", "")}  # no model at all: an empty label
    s = series[("openai", "gpt-4o-mini-2024-07-18", "chat", "acme", "search", "")]
    assert (s["COST_PICO_USD"], s["REQUESTS"], s["UNPRICED_REQUESTS"]) == (usd_to_pico(Decimal("0.25")), 2, 1)
    assert (s["INPUT_TOKENS"], s["CACHE_READ_TOKENS"], s["OUTPUT_TOKENS"]) == (610, 400, 50)
    assert s["ERRORS"] == 1  # and one success: requests less errors


def test_a_count_that_outgrows_its_column_widens_it_and_stays_exact():
    aggregator = SeriesAggregator(LABELS, 100, [1.0])
    huge = entry(1)
    huge.call.retries = 2**32  # past a 4-byte column
    huge.cost_pico = 2**63  # past an 8-byte column
    aggregator.add([huge, entry(2, cost="0.01"), entry(3, cost="0.01", ttft=0.5)])
    [s] = aggregator.series().values()
    assert (s["RETRIES"], s["COST_PICO_USD"]) == (2**32, 2**63 + 2 * usd_to_pico(Decimal("0.01")))
    assert (s["REQUESTS"], s["ttft_count"], s["ttft_buckets"]) == (3, 1, [1])


def test_series_keys_follow_the_configured_labels_only():
    aggregator = SeriesAggregator((*LABELS, "feature"), 100, [1.0])
    c = make_call(1)
    aggregator.add([Entry(c, owner(feature="chat-ui"), 1, call_keys(c)),
                    Entry(c, Owner("acme", "search", "", "bob", "k1", "chat-ui", "", ""), 1, call_keys(c))])
    # user and key are not labels here: both calls land in one series
    assert list(aggregator.series()) == [("openai", "gpt-4o-mini-2024-07-18", "chat", "acme", "search", "", "chat-ui")]


def test_hostile_label_values_round_trip():
    aggregator = SeriesAggregator(LABELS, 100, [1.0])
    aggregator.add([entry(i, team=value, project=HOSTILE[-1 - i]) for i, value in enumerate(HOSTILE)])
    assert {(key[4], key[5]) for key in aggregator.series()} == {(v, HOSTILE[-1 - i]) for i, v in enumerate(HOSTILE)}


def test_cardinality_limit_overflows_into_one_series_and_loses_nothing():
    aggregator = SeriesAggregator(LABELS, 3, [1.0])
    aggregator.add([entry(i, team=f"team-{i}") for i in range(50)])
    series = aggregator.series()
    assert {labels[4] for labels in series} == {"team-0", "team-1", "team-2", OVERFLOW}
    assert aggregator.snapshot().overflows["team"] == 47
    assert sum(s["COST_PICO_USD"] for s in series.values()) == usd_to_pico(Decimal("0.50"))  # nothing lost, only folded
    # A value admitted before stays admitted; a new one still overflows, and is counted each time it is seen.
    aggregator.add([entry(60, team="team-1"), entry(61, team="team-99"), entry(62, team="team-99")])
    assert aggregator.snapshot().overflows["team"] == 49
    assert len(aggregator.series()) == 4


def test_per_label_limit_replaces_the_default_for_that_label_only():
    aggregator = SeriesAggregator(LABELS, 1000, [1.0], per_label_limits={"team": 2})
    aggregator.add([entry(i, team=f"team-{i}", project=f"project-{i}") for i in range(5)])
    series = aggregator.series()
    assert sorted({labels[4] for labels in series}) == [OVERFLOW, "team-0", "team-1"]
    assert len({labels[5] for labels in series}) == 5  # projects keep the default limit
    overflows = aggregator.snapshot().overflows
    assert overflows["team"] == 3 and overflows["project"] == 0


def test_new_limits_on_reload_keep_admitted_values():
    aggregator = SeriesAggregator(LABELS, 2, [1.0])
    aggregator.add([entry(i, team=f"team-{i}") for i in range(2)])
    aggregator.set_limits(1)
    aggregator.add([entry(3, team="team-1"), entry(4, team="team-new")])
    assert {labels[4] for labels in aggregator.series()} == {"team-0", "team-1", OVERFLOW}
    aggregator.set_limits(5)
    aggregator.add([entry(5, team="team-new")])
    assert "team-new" in {labels[4] for labels in aggregator.series()}


def test_time_to_first_token_histogram():
    aggregator = SeriesAggregator(LABELS, 100, [0.5, 1.0])
    aggregator.add([entry(1, ttft=0.5), entry(2, ttft=0.7), entry(3, ttft=3.0), entry(4, ttft=None),
                    entry(5, ttft=-1.0), entry(6, team="ads")])
    series = aggregator.series()
    s = series[("openai", "gpt-4o-mini-2024-07-18", "chat", "acme", "search", "")]
    assert s["ttft_buckets"] == [1, 1]  # 0.5 is in le="0.5" (upper bounds are inclusive); 3.0 only in +Inf
    assert (s["ttft_count"], s["ttft_sum"]) == (3, 4.2)  # no time and a negative time are not observations
    text = generate_text(registry(aggregator)).decode()
    assert 'costline_time_to_first_token_seconds_bucket{le="0.5",model="gpt-4o-mini-2024-07-18",' in text
    assert text.count("costline_time_to_first_token_seconds_count{") == 1  # the ads series observed nothing
    families = {f[0]: f for f in parsed(text)}
    buckets = [(s[1]["le"], s[2]) for s in families["costline_time_to_first_token_seconds"][3] if "le" in s[1]]
    assert buckets == [("0.5", 1.0), ("1.0", 2.0), ("+Inf", 3.0)]  # cumulative in the exposition


def test_cost_past_64_bits_stays_exact():
    aggregator = SeriesAggregator(LABELS, 100, [1.0])
    huge = 2**62
    aggregator.add([Entry(make_call(i), owner(), huge, ()) for i in range(3)])
    assert aggregator.series()[("openai", "gpt-4o-mini-2024-07-18", "chat", "acme", "search", "")]["COST_PICO_USD"] == \
        3 * huge
    r = registry(aggregator)
    assert generate_text(r) == generate_latest(r)


def test_a_scrape_sees_every_change_and_a_snapshot_does_not():
    aggregator = SeriesAggregator(LABELS, 100, [1.0])
    r = registry(aggregator)
    first = generate_text(r)
    assert first == generate_latest(r) and b"costline_tokens_total{" not in first  # no series yet
    aggregator.add([entry(1, ttft=0.2)])
    before = aggregator.snapshot()
    second = generate_text(r)
    assert second == generate_latest(r)
    assert b'costline_requests_total{model="gpt-4o-mini-2024-07-18",operation="chat",org="acme",outcome="success",' \
           b'project="",provider="openai",team="search"} 1.0\n' in second
    # One series changes, one is new (unpriced, with an error): the next scrape shows both, nothing stale.
    aggregator.add([entry(2, input_tokens=5_000_000, ttft=2.0), entry(3, team="ads", cost=None, error="x")])
    third = generate_text(r)
    assert third == generate_latest(r)
    search = 'model="gpt-4o-mini-2024-07-18",operation="chat",org="acme",project="",provider="openai",team="search"'
    ads = search.replace('team="search"', 'team="ads"')
    lines = set(third.decode().splitlines())
    assert f'costline_tokens_total{{{search},type="input"}} 5.001e+06' in lines  # Go's float format
    success = search.replace(",project", ',outcome="success",project')
    assert f"costline_requests_total{{{success}}} 2.0" in lines
    assert f'costline_unpriced_requests_total{{{ads}}} 1.0' in lines
    assert f"costline_cost_usd_total{{{search}}} 0.02" in lines
    assert f"costline_cost_usd_total{{{ads}}}" not in third.decode()
    assert before.counts[Counts.COST_PICO_USD][0] == usd_to_pico(Decimal("0.01")) and len(before) == 1  # a snapshot is a copy


def test_exposition_matches_generate_latest_with_every_label_and_sample_label_position():
    """Every label on: `le`, `outcome` and `type` each fall inside the label text, not only first or last."""
    labels = ("provider", "model", "operation", "org", "team", "project", "user", "key", "feature", "cost_center",
              "environment")
    aggregator = SeriesAggregator(labels, 100, [0.1, 1, 10.0])
    entries = []
    for i in range(40):
        c = make_call(i, team=HOSTILE[i % len(HOSTILE)], input_tokens=i * 100_000)
        c.time_to_first_token_s = 0.05 * i if i % 3 else None
        entries.append(Entry(c, Owner("acme", HOSTILE[i % len(HOSTILE)], f"p{i % 4}", f"u,{i % 5}", 'k="1"',
                                      "f", "cc", "prod"), usd_to_pico(Decimal(i)) if i % 4 else None, call_keys(c)))
    aggregator.add(entries)
    r = registry(aggregator)
    assert generate_text(r) == generate_latest(r)


def test_calls_without_usage_fold_past_the_cardinality_limit_and_lose_nothing():
    aggregator = SeriesAggregator(LABELS, 2, [1.0])
    entries = []
    for i, model in enumerate(["m-a", "m-b", "m-c", "m-d"]):
        e = entry(i, model=model, cost=None)
        e.call.has_usage, e.call.source = False, "openinference"
        entries.append(e)
    aggregator.add(entries)
    snap = aggregator.snapshot()
    assert snap.without_usage == {("openinference", "openai", "m-a"): 1, ("openinference", "openai", "m-b"): 1,
                                  ("openinference", "openai", OVERFLOW): 2}
    assert "source" not in snap.overflows and snap.overflows["model"] >= 2


def test_rare_units_are_counted_only_for_calls_marked_rare_and_sparse():
    aggregator = SeriesAggregator(LABELS, 100, [1.0])
    plain, rare = entry(1), entry(2, team="ads")
    rare.call.input_audio_tokens, rare.call.web_searches, rare.call.rare = 40, 2, True
    aggregator.add([plain, rare])
    snap = aggregator.snapshot()
    assert snap.rare[Counts.INPUT_AUDIO_TOKENS] == {1: 40} and snap.rare[Counts.WEB_SEARCHES] == {1: 2}
    assert not snap.rare[Counts.OUTPUT_AUDIO_TOKENS]
    series = aggregator.series()
    assert series[("openai", "gpt-4o-mini-2024-07-18", "chat", "acme", "ads", "")]["INPUT_AUDIO_TOKENS"] == 40
