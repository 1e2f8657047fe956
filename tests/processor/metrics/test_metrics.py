"""Exposition: golden text, promtool check metrics (the aggregator's own tests: test_aggregate.py)."""

from __future__ import annotations

import shutil
import subprocess
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from costline.processor.config.core import load_config
from costline.processor.ledger import Ledger
from costline.processor.metrics.aggregate import SeriesAggregator
from costline.processor.metrics.collector import CostlineCollector
from costline.processor.model import Entry, Owner, call_keys
from costline.processor.reports.budgets import Budgets
from costline.processor.units import usd_to_pico
from tests.processor.clock import now_s
from tests.processor.conftest import EXAMPLE_CONFIG, at, make_call

LABELS = ("provider", "model", "operation", "org", "team", "project")
NOW = datetime(2026, 11, 20, 15, tzinfo=timezone.utc)


def exposition(tmp_path, entries, limit=1000, writer=generate_latest):
    """The exposition text of a registry holding these entries, written by `writer` (prometheus_client's by default)."""
    aggregator = SeriesAggregator(LABELS, limit, [0.5, 1.0])
    aggregator.add(entries, conflicts=1)
    ledger = Ledger(f"sqlite:///{tmp_path / 'l.db'}")
    ledger.record(entries, now=now_s())
    budgets = Budgets(load_config(EXAMPLE_CONFIG), ledger, clock=lambda: NOW)
    registry = CollectorRegistry()
    registry.register(CostlineCollector(lambda: aggregator, lambda: budgets, lambda: {"billed": len(entries)}))
    return writer(registry).decode()


def line(name: str, labels: dict[str, str], value: str) -> str:
    """One exposition line as prometheus_client writes it (labels sorted by name)."""
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{name}{{{inner}}} {value}"


def test_golden_exposition(tmp_path):
    owner = Owner("acme", "marketing", "campaigns", "", "", "", "", "")
    ok = make_call(1, start=at(2026, 11, 20, 9), input_tokens=600, cache_read=400, output=50)
    ok.time_to_first_token_s = 0.7
    failed = make_call(2, start=at(2026, 11, 20, 9), input_tokens=0, output=0, error="rate_limit_error")
    failed.retries = 2
    unpriced = make_call(3, start=at(2026, 11, 20, 9), model="acme-llama-70b", input_tokens=10, output=5)
    text = exposition(tmp_path, [Entry(ok, owner, usd_to_pico(Decimal("0.25")), call_keys(ok)),
                                 Entry(failed, owner, 0, call_keys(failed)),
                                 Entry(unpriced, owner, None, call_keys(unpriced))])
    base = {"provider": "openai", "operation": "chat", "org": "acme", "team": "marketing", "project": "campaigns"}
    mini = {**base, "model": "gpt-4o-mini-2024-07-18"}
    llama = {**base, "model": "acme-llama-70b"}
    others = {"feature": "", "environment": "", "customer": "", "model": ""}
    team = {"scope": "team", "period": "monthly", "mode": "hard", "org": "acme", "team": "marketing", "user": "",
            "key": "", "project": "", **others}
    project = {"scope": "project", "period": "monthly", "mode": "hard", "org": "", "team": "", "user": "", "key": "",
               "project": "campaigns", **others}
    alice_key = {"scope": "key", "org": "acme", "team": "engineering", "user": "alice", "key": "alice-laptop",
                 "project": ""}
    expected = [
        line("costline_cost_usd_total", mini, "0.25"),
        line("costline_tokens_total", {**mini, "type": "input"}, "600.0"),
        line("costline_tokens_total", {**mini, "type": "cache_read"}, "400.0"),
        line("costline_requests_total", {**mini, "outcome": "success"}, "1.0"),
        line("costline_requests_total", {**mini, "outcome": "error"}, "1.0"),
        line("costline_retries_total", mini, "2.0"),
        line("costline_retries_total", llama, "0.0"),  # always there: no retries is an answer, not missing data
        line("costline_unpriced_requests_total", llama, "1.0"),
        line("costline_time_to_first_token_seconds_bucket", {**mini, "le": "0.5"}, "0.0"),
        line("costline_time_to_first_token_seconds_bucket", {**mini, "le": "1.0"}, "1.0"),
        line("costline_time_to_first_token_seconds_bucket", {**mini, "le": "+Inf"}, "1.0"),
        "costline_ownership_conflicts_total 1.0",
        line("costline_budget_limit_usd", team, "500.0"),
        line("costline_budget_spent_usd", team, "0.25"),
        line("costline_budget_remaining_usd", project, "199.75"),
        line("costline_budget_effective_remaining_usd", alice_key, "5.0"),
    ]
    lines = set(text.splitlines())
    missing = [line for line in expected if line not in lines]
    assert not missing, "\n".join(missing) + "\n---\n" + text
    assert line("costline_cost_usd_total", llama, "0.0") not in lines  # unpriced is never $0


@pytest.mark.skipif(shutil.which("promtool") is None, reason="make venv installs Debian's prometheus package")
def test_promtool_check_metrics(tmp_path):
    owner = Owner("acme", "marketing", "campaigns", "", "", "", "", "")
    call = make_call(1, start=at(2026, 11, 20, 9))
    call.time_to_first_token_s = 0.2
    text = exposition(tmp_path, [Entry(call, owner, usd_to_pico(Decimal("0.1")), call_keys(call)),
                                 *rare_entries()[1]])  # with the rarer units' lines, sparse and all
    assert 'type="input_audio"' in text
    result = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def rare_entries() -> tuple[Owner, list[Entry]]:
    """A text-only call, one with every rarer unit and a reported cost that disagrees, one whose reported cost
    agrees, and one without usage (a stream without `include_usage`)."""
    owner = Owner("acme", "marketing", "campaigns", "", "", "", "", "")
    text = make_call(1, start=at(2026, 11, 20, 9), input_tokens=600, output=50)
    audio = make_call(2, start=at(2026, 11, 20, 9), model="gpt-4o-audio-preview", input_tokens=900, output=300,
                      cache_write=200)
    audio.cache_write_1h_tokens, audio.input_audio_tokens, audio.output_audio_tokens = 150, 700, 250
    audio.input_image_tokens, audio.output_image_tokens, audio.input_video_tokens, audio.output_video_tokens = 1, 2, 3, 4
    audio.web_searches, audio.code_executions = 3, 1
    audio.reported_cost_usd, audio.rare = 0.02, True  # priced at 0.01 below: 100 % off
    agrees = make_call(3, start=at(2026, 11, 20, 9), model="gpt-4o-audio-preview")
    agrees.reported_cost_usd, agrees.rare = 0.01005, True  # within 1 %
    missing = make_call(4, start=at(2026, 11, 20, 9), model="gpt-4o", input_tokens=0, output=0)
    missing.has_usage, missing.source = False, "openinference"
    failed = make_call(5, start=at(2026, 11, 20, 9), model="gpt-4o", input_tokens=0, output=0, error="timeout")
    failed.has_usage = False  # a failed call without usage cost nothing: not counted as missing usage
    cent = usd_to_pico(Decimal("0.01"))
    return owner, [Entry(text, owner, cent, call_keys(text)), Entry(audio, owner, cent, call_keys(audio)),
                   Entry(agrees, owner, cent, call_keys(agrees)), Entry(missing, owner, None, call_keys(missing)),
                   Entry(failed, owner, 0, call_keys(failed))]


def test_rare_units_reported_costs_and_calls_without_usage(tmp_path):
    _, entries = rare_entries()
    text = exposition(tmp_path, entries)
    base = {"provider": "openai", "operation": "chat", "org": "acme", "team": "marketing", "project": "campaigns"}
    audio = {**base, "model": "gpt-4o-audio-preview"}
    mini = {**base, "model": "gpt-4o-mini-2024-07-18"}
    expected = [
        line("costline_tokens_total", {**audio, "type": "input"}, "1900.0"),
        line("costline_tokens_total", {**audio, "type": "cache_write_1h"}, "150.0"),
        line("costline_tokens_total", {**audio, "type": "input_audio"}, "700.0"),
        line("costline_tokens_total", {**audio, "type": "output_audio"}, "250.0"),
        line("costline_tokens_total", {**audio, "type": "input_image"}, "1.0"),
        line("costline_tokens_total", {**audio, "type": "output_video"}, "4.0"),
        line("costline_tool_calls_total", {**audio, "type": "web_search"}, "3.0"),
        line("costline_tool_calls_total", {**audio, "type": "code_execution"}, "1.0"),
        line("costline_reported_cost_requests_total", audio, "2.0"),
        line("costline_reported_cost_usd_total", audio, "0.03005"),
        line("costline_cost_disagreements_total", audio, "1.0"),
        line("costline_calls_without_usage_total", {"source": "openinference", "provider": "openai",
                                                    "model": "gpt-4o"}, "1.0"),
    ]
    lines = set(text.splitlines())
    missing = [line for line in expected if line not in lines]
    assert not missing, "\n".join(missing) + "\n---\n" + text
    # The text-only series has the five token types it always had, and nothing of the rarer units.
    assert not [ln for ln in lines if 'model="gpt-4o-mini-2024-07-18"' in ln and (
        "tool_calls" in ln or "reported_cost" in ln or "disagreements" in ln or "audio" in ln or "_1h" in ln)]
    assert line("costline_tokens_total", {**mini, "type": "reasoning"}, "0.0") in lines
    assert sum("calls_without_usage_total{" in ln for ln in lines) == 1  # the failed call is not one


def test_a_text_only_workload_exposes_the_series_it_always_had(tmp_path):
    owner, entries = rare_entries()
    text = exposition(tmp_path, entries[:1])
    samples = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    assert len([ln for ln in samples if ln.startswith("costline_tokens_total")]) == 5
    for family in ("costline_tool_calls_total", "costline_reported_cost", "costline_cost_disagreements_total",
                   "costline_calls_without_usage_total"):
        assert not [ln for ln in samples if ln.startswith(family)], text


def test_spans_with_rarer_units_and_without_usage_reach_the_series_through_normalisation(tmp_path):
    """The whole path from OTLP: normalisation marks a call carrying a rarer unit (`LLMCall.rare`), so the series
    count it; a successful span without usage is counted by its source, provider and model."""
    from prometheus_client import CollectorRegistry

    from costline import attributes as A
    from costline.processor.clock import system_clock
    from costline.processor.config.core import parse_config
    from costline.processor.service import assemble_pipeline
    from tests.processor.otlp import llm_span, request_of

    # The spans start within the last hour of the real clock (`otlp.RECENT_NS`): inside the start-time window.
    pipeline = assemble_pipeline(parse_config({}), Ledger(f"sqlite:///{tmp_path / 'l.db'}"), clock=system_clock)
    try:
        audio = llm_span(model="gpt-4o", input_tokens=1000, output_tokens=200,
                         extra={A.GEN_AI_USAGE_AUDIO_INPUT_TOKENS: 400, A.COSTLINE_USAGE_WEB_SEARCHES: 2})
        missing = llm_span(model="gpt-4o-mini", input_tokens=None, output_tokens=None)
        pipeline.ingest(request_of([audio, missing]))
        registry = CollectorRegistry()
        registry.register(pipeline.collector)
        text = generate_latest(registry).decode()
    finally:
        pipeline.close()
    assert 'type="input_audio"' in text and ',type="input_audio"} 400.0' in text, text
    assert 'costline_tool_calls_total{' in text and 'type="web_search"} 2.0' in text, text
    assert ('costline_calls_without_usage_total{model="gpt-4o-mini",provider="openai",source="costline"} 1.0'
            in text), text
