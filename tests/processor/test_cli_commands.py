"""The commands that read or write the ledger open a ledger and its stores, never a pipeline (no pricer and
hierarchy of the ingest path, no budgets thread to print a statement), and `costline cost-changes` reads the audit
trail that `costline reprice --all` writes, money as exact decimal text."""

from __future__ import annotations

import csv
import io
import json
import threading
from datetime import date

import pytest

from costline.cli import main
from costline.processor.formats import usd_text
from costline.processor.ingest.pipeline import Pipeline
from costline.processor.ledger import Ledger
from costline.processor.reports.budgets import Budgets
from costline.processor.service import build_pipeline
from costline.processor.units import pico_to_usd
from costline.testing.admin_reports import Served, openai_usage_buckets
from tests.processor.conftest import db_url  # noqa: F401 - the fixture: SQLite and PostgreSQL
from tests.processor.reports.chargeback.test_command import CONFIG, calls

NEGOTIATED = CONFIG.replace("prices:\n", "prices:\n  - {provider: openai, model: gpt-4o, input_per_mtok: 1, "
                                         "output_per_mtok: 4, effective_from: 2026-11-05}\n")
"""gpt-4o at half its price from November 5th: `reprice --all` re-rates every November row."""


@pytest.fixture
def filled(tmp_path, db_url):  # noqa: F811
    config = tmp_path / "costline.yaml"
    config.write_text(CONFIG)
    pipeline = build_pipeline(str(config), db_url)
    pipeline.ingest_calls(calls())
    pipeline.close()
    return config, db_url


def run(capsysbinary, *args: str) -> tuple[int, bytes, bytes]:
    code = main(list(args))
    out = capsysbinary.readouterr()
    return code, out.out, out.err


def test_the_ledger_commands_build_no_pipeline_and_start_no_budgets_thread(filled, tmp_path, monkeypatch,
                                                                         capsysbinary):
    config, db = filled
    report = tmp_path / "usage.json"
    report.write_text(json.dumps({"object": "page", "has_more": False, "next_page": None, "data": openai_usage_buckets(
        [Served(date(2026, 11, 10), "gpt-4o", "key_1", "proj_1", 1000, 0, 0, 100)], date(2026, 11, 1),
        date(2026, 12, 1))}))
    started: list[str] = []
    start = threading.Thread.start
    monkeypatch.setattr(threading.Thread, "start", lambda self: (started.append(self.name), start(self))[1])

    def refuse(*_args, **_kwargs):
        raise AssertionError("a ledger command built the ingest pipeline")

    monkeypatch.setattr(Pipeline, "__init__", refuse)
    monkeypatch.setattr(Budgets, "__init__", refuse)
    ledger = ["--config", str(config), "--db", db]
    for command in (["chargeback", "--period", "2026-11", "--format", "json"],
                    ["chargeback", "--period", "2026-11", "--format", "html"],
                    ["usage", "--from", "2026-11-01"],
                    ["reprice", "--since", "2026-11-01", "--all"],
                    ["cost-changes", "--format", "json"],
                    ["reconcile", "--provider", "openai", "--from", "2026-11-01", "--to", "2026-11-30",
                     "--file", str(report)],
                    ["close-period", "2026-11"]):
        code, _, err = run(capsysbinary, *command, *ledger)
        assert code == 0, (command, err.decode())
    assert "costline-budgets" not in started and started == []


def test_cost_changes_lists_each_rerate_with_exact_costs(filled, capsysbinary):
    config, db = filled
    code, out, _ = run(capsysbinary, "cost-changes", "--config", str(config), "--db", db)
    assert code == 0 and out.decode().splitlines() == [
        "changed_at,hour,provider,model,old_cost_usd,new_cost_usd,price_source,row_id"]  # nothing re-rated yet
    config.write_text(NEGOTIATED)
    code, out, err = run(capsysbinary, "reprice", "--all", "--since", "2026-11-01", "--config", str(config),
                         "--db", db)
    assert code == 0, err.decode()

    ledger = Ledger(db, create=False)
    try:
        trail = ledger.reader.cost_changes()
    finally:
        ledger.close()
    assert trail and all(c["new_cost_pico_usd"] * 2 == c["old_cost_pico_usd"] for c in trail)  # half the price
    code, out, err = run(capsysbinary, "cost-changes", "--format", "json", "--config", str(config), "--db", db)
    assert code == 0, err.decode()
    rows = json.loads(out)["rows"]
    assert [(r["row_id"], r["old_cost_usd"], r["new_cost_usd"], r["price_source"]) for r in rows] == [
        (c["row_id"], usd_text(pico_to_usd(c["old_cost_pico_usd"])), usd_text(pico_to_usd(c["new_cost_pico_usd"])),
         c["price_source"]) for c in trail]
    assert all(r["price_source"] == "override from 2026-11-05 gpt-4o" for r in rows)

    code, out, _ = run(capsysbinary, "cost-changes", "--config", str(config), "--db", db)
    table = list(csv.reader(io.StringIO(out.decode())))
    assert code == 0 and [row[4:6] for row in table[1:]] == [[r["old_cost_usd"], r["new_cost_usd"]] for r in rows]

    code, out, _ = run(capsysbinary, "cost-changes", "--from", "9000-01-01", "--to", "9000-12-31", "--format",
                       "json", "--config", str(config), "--db", db)
    assert code == 0 and json.loads(out)["rows"] == []  # --from bounds when the re-rate was made
    code, _, err = run(capsysbinary, "cost-changes", "--from", "2026-12-02", "--to", "2026-12-01", "--config",
                       str(config), "--db", db)
    assert code == 2 and b"must be after from" in err


def test_usage_shows_every_billable_unit_missing_usage_reported_cost_and_groups_by_price_context(
        tmp_path, capsysbinary):
    """`costline usage` (one function with `/api/v1/usage`): the columns of the rarer units, calls without usage and
    reported costs, grouped by service tier and processing."""
    from tests.processor.conftest import at, make_call
    config = tmp_path / "costline.yaml"
    config.write_text(CONFIG)
    db = f"sqlite:///{tmp_path / 'l.db'}"
    flex = make_call(1, model="gpt-4o", team="engineering", start=at(2026, 11, 10))
    flex.service_tier, flex.input_audio_tokens, flex.web_searches = "flex", 300, 2
    flex.reported_cost_usd, flex.rare = 1.0, True  # nowhere near the price: a disagreement
    batch = make_call(2, model="gpt-4o", team="engineering", start=at(2026, 11, 10))
    batch.processing, batch.rare = "batch", True
    missing = make_call(3, model="gpt-4o", team="engineering", input_tokens=0, output=0, start=at(2026, 11, 10))
    missing.has_usage = False
    pipeline = build_pipeline(str(config), db)
    pipeline.ingest_calls([flex, batch, missing])
    pipeline.close()
    code, out, err = run(capsysbinary, "usage", "--config", str(config), "--db", db, "--from", "2026-11-01",
                         "--group-by", "team,service_tier,processing", "--format", "csv")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out.decode())))
    header = list(rows[0])
    assert header[:3] == ["team", "service_tier", "processing"] and header[-1] == "cost_usd"
    for column in ("cache_write_1h_tokens", "input_audio_tokens", "output_video_tokens", "web_searches",
                   "code_executions", "usage_missing_requests", "reported_cost_requests", "reported_cost_usd",
                   "cost_disagreements"):
        assert column in header
    by_group = {(r["service_tier"], r["processing"]): r for r in rows}
    assert by_group["flex", ""]["input_audio_tokens"] == "300" and by_group["flex", ""]["web_searches"] == "2"
    assert by_group["flex", ""]["reported_cost_usd"] == "1.000000000000"
    assert by_group["flex", ""]["cost_disagreements"] == "1"
    assert by_group["", "batch"]["requests"] == "1"
    assert by_group["", ""]["usage_missing_requests"] == "1"
