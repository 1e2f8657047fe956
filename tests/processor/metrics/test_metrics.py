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
    text = exposition(tmp_path, [Entry(call, owner, usd_to_pico(Decimal("0.1")), call_keys(call))])
    result = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
