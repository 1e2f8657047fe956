"""`costline chargeback --format focus`: a FOCUS 1.2 dataset the FinOps Foundation's `focus-validator` accepts, whose
costs are the ledger's and whose chargeback columns are the statement's."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from costline.processor.clock import system_clock
from costline.processor.reports.chargeback.report import chargeback_document, close_period
from costline.processor.reports.chargeback.statement import Period
from costline.processor.service import build_pipeline
from tests.processor.conftest import at, make_call
from tests.processor.reports.chargeback.test_command import CONFIG, calls
from tests.processor.reports.chargeback.test_periods import december, late

ROOT = Path(__file__).resolve().parents[4]
VALIDATOR = ROOT / ".venv-focus" / "bin" / "focus-validator"
CRITERIA = "TAGGING_SUPPORTED,USAGE_MEASUREMENT_SUPPORTED,SUB_ACCOUNT_SUPPORTED,ACCOUNT_NAMING_SUPPORTED"
"""What Costline's dataset supports (owner tags, token quantities, org as account and team as sub-account)."""


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """November (closed, with a price missing for one model) and December (open, with corrections of November's
    late spans), as FOCUS, JSON, and the ledger's own usage."""
    tmp = tmp_path_factory.mktemp("focus")
    (tmp / "c.yaml").write_text(CONFIG)
    pipeline = build_pipeline(str(tmp / "c.yaml"), f"sqlite:///{tmp / 'ledger.db'}")
    try:
        pipeline.ingest_calls(calls() + december() + rare_calls())
        close_period(pipeline.config, pipeline.ledger, Period(2026, 11),
                     now=lambda: datetime(2026, 12, 2, tzinfo=timezone.utc))
        pipeline.ingest_calls(late(1000))
        out = {}
        for period in (Period(2026, 11), Period(2026, 12)):
            doc = lambda fmt, p=period: chargeback_document(pipeline.config, pipeline.ledger,  # noqa: E731
                                                            p, None, fmt, clock=system_clock)[1]
            out[str(period)] = (doc("focus"), json.loads(doc("json")))
    finally:
        pipeline.close()
    return tmp, out


def rare_calls():
    """November: an engineering call with every rarer unit, at the flex tier, with a reported cost that disagrees
    with the price, and one of its calls without usage."""
    rare = make_call(9001, model="gpt-4o", team="engineering", input_tokens=5000, output=700, cache_write=400,
                     start=at(2026, 11, 12))
    rare.cache_write_1h_tokens, rare.input_audio_tokens, rare.input_image_tokens = 300, 2000, 1000
    rare.input_video_tokens, rare.output_audio_tokens, rare.output_image_tokens, rare.output_video_tokens = 9, 500, 7, 3
    rare.web_searches, rare.code_executions, rare.service_tier = 4, 2, "flex"
    rare.reported_cost_usd, rare.rare = 5.0, True
    missing = make_call(9002, model="gpt-4o", team="engineering", input_tokens=0, output=0, start=at(2026, 11, 12))
    missing.has_usage = False
    return [rare, missing]


def test_every_billable_unit_calls_without_usage_and_reported_costs_have_columns(exports):
    _, out = exports
    usage = [r for r in rows(out["2026-11"][0]) if r["ChargeCategory"] == "Usage"]
    flex = [r for r in usage if r["x_ServiceTier"] == "flex"]
    assert len(flex) == 1
    assert {k: flex[0][k] for k in ("x_CacheWrite1hTokens", "x_InputAudioTokens", "x_InputImageTokens",
                                    "x_InputVideoTokens", "x_OutputAudioTokens", "x_OutputImageTokens",
                                    "x_OutputVideoTokens", "x_WebSearches", "x_CodeExecutions",
                                    "x_ReportedCostRequests", "x_ReportedCost", "x_CostDisagreements")} == {
        "x_CacheWrite1hTokens": "300", "x_InputAudioTokens": "2000", "x_InputImageTokens": "1000",
        "x_InputVideoTokens": "9", "x_OutputAudioTokens": "500", "x_OutputImageTokens": "7",
        "x_OutputVideoTokens": "3", "x_WebSearches": "4", "x_CodeExecutions": "2", "x_ReportedCostRequests": "1",
        "x_ReportedCost": "5.0", "x_CostDisagreements": "1"}
    assert [r["x_UsageMissingRequests"] for r in usage if r["x_UsageMissingRequests"] != "0"] == ["1"]


def rows(body: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body.decode(), newline="")))


def test_focus_validator_accepts_the_dataset(exports):
    if not VALIDATOR.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{VALIDATOR} missing in CI: `make test-deps` installs it with Python 3.12")
        pytest.skip(f"{VALIDATOR} missing: `make venv-focus` needs a Python 3.12")
    tmp, out = exports
    november, december_ = out["2026-11"][0], out["2026-12"][0]
    data = tmp / "usage.csv"  # both months in one dataset: a closed one and an open one with corrections
    data.write_bytes(november + december_.split(b"\r\n", 1)[1])
    assert b",Correction," in data.read_bytes()
    # The validator reads its currency list from a path relative to the working directory: run it from where
    # that path exists (its own package directory). --block-download: the rules bundled with it, no network.
    site = next(VALIDATOR.parent.parent.glob("lib/python3*/site-packages"))
    run = subprocess.run([str(VALIDATOR), "--block-download", "--validate-version", "1.2.0.1", "--data-file",
                          str(data), "--applicability-criteria", CRITERIA], cwd=site, capture_output=True,
                         text=True, timeout=300)
    report = run.stdout + run.stderr
    assert run.returncode == 0, report[-3000:]
    for dataset_rule in ("CostAndUsage-D-001-M", "CostAndUsage-D-002-M"):  # every column present; every column rule
        assert re.search(rf"{dataset_rule}: .*msg={dataset_rule}: AND passed", report), report[-3000:]
    failed = set(re.findall(r"(\S+): FAIL", report))
    # InvoiceId-C-003-C is "null when not invoiced (C-004) OR not null when invoiced (C-005)": the validator
    # reports the branch not taken as failed while the rule itself passes.
    assert failed <= {"InvoiceId-C-004-C"}, report[-3000:]
    assert re.search(r"InvoiceId-C-003-C: PASS", report), report[-3000:]


def test_costs_are_the_ledgers_and_chargeback_columns_the_statements(exports):
    tmp, out = exports
    body, statement = out["2026-12"]
    dataset = rows(body)
    usage = [r for r in dataset if r["ChargeCategory"] == "Usage"]
    lines = [r for r in dataset if r["ChargeCategory"] == "Adjustment"]
    # Provider costs only on usage rows: one per day x provider x model x owner, owner dimensions in Tags.
    assert {r["BilledCost"] for r in lines} == {"0.0"}
    assert sum(Decimal(r["BilledCost"]) for r in usage) == sum(
        Decimal(t["usage"]["cost_usd"]) for t in statement["teams"] if t["model"] != "correction")
    # December 1st in Berlin: two teams' calls, and research's of Nov 30 23:30 UTC.
    mini = "gpt-4o-mini-2024-07-18"
    assert sorted((r["ChargePeriodStart"], r["ChargePeriodEnd"], json.loads(r["Tags"])["team"], r["x_Model"])
                  for r in usage) == [("2026-11-30T23:00:00Z", "2026-12-01T23:00:00Z", team, model)
                                      for team, model in (("engineering", mini), ("marketing", mini),
                                                          ("research", "gpt-4o"))]
    assert all(r["EffectiveCost"] == r["BilledCost"] == r["ListCost"] for r in usage)
    # The statement's lines, billed amounts in x_ columns, adding up to its total; corrections as Correction.
    assert sum(Decimal(r["x_ChargebackAmount"]) for r in lines) == Decimal(statement["total_usd"])
    assert [(r["x_ChargebackTeam"], r["x_ChargebackComponent"], r["x_ChargebackLine"],
             Decimal(r["x_ChargebackAmount"]), Decimal(r["x_ChargebackExact"])) for r in lines] == [
        (t["team"], x["component"], x["name"], Decimal(x["amount_usd"]), Decimal(x["exact_usd"]))
        for t in statement["teams"] for x in t["lines"]]
    corrections = [r for r in lines if r["x_ChargebackComponent"] == "correction"]
    assert corrections and {r["ChargeClass"] for r in corrections} == {"Correction"}
    assert {r["InvoiceId"] for r in dataset} == {"chargeback-2026-12"}
    november = rows(out["2026-11"][0])
    unpriced = [r for r in november if r["x_UnpricedTokens"] not in ("", "0")]
    assert [(r["x_Model"], r["x_UnpricedTokens"], r["BilledCost"]) for r in unpriced] == [
        ("no-such-model", "1100", "0.0")]


def test_the_statement_shows_calls_without_usage_unpriced_calls_and_reported_costs(tmp_path):
    """Table, CSV, JSON and HTML: per team, the calls whose cost is unknown (never $0) and the comparison with the
    cost others reported."""
    (tmp_path / "c.yaml").write_text(CONFIG)
    pipeline = build_pipeline(str(tmp_path / "c.yaml"), f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        pipeline.ingest_calls(calls() + rare_calls())
        doc = {fmt: chargeback_document(pipeline.config, pipeline.ledger, Period(2026, 11), None, fmt,
                                        clock=system_clock)[1] for fmt in ("table", "csv", "json", "html")}
    finally:
        pipeline.close()
    teams = {t["team"]: t["usage"] for t in json.loads(doc["json"])["teams"]}
    engineering, marketing = teams["acme/engineering"], teams["acme/marketing"]
    assert engineering["usage_missing_requests"] == 1 and marketing["usage_missing_requests"] == 0
    assert engineering["reported_cost"]["requests"] == 1 and engineering["reported_cost"]["disagreements"] == 1
    assert Decimal(engineering["reported_cost"]["reported_usd"]) == 5
    assert Decimal(engineering["reported_cost"]["priced_usd"]) > 0
    assert marketing["unpriced_requests"] == 1
    notes = {(r["team"], r["component"]): r for r in rows(doc["csv"]) if r["component"] in
             ("unpriced", "usage_missing", "reported_cost")}
    assert set(notes) == {("acme/marketing", "unpriced"), ("acme/engineering", "usage_missing"),
                          ("acme/engineering", "reported_cost")}
    assert all(r["amount_usd"] == "" for r in notes.values())  # cost unknown: no amount, never 0.00
    assert notes["acme/engineering", "usage_missing"]["quantity"] == "1"
    table = doc["table"].decode()
    assert "1 call without usage: cost unknown, not charged" in table
    assert "cost reported for 1 call: 5;" in table and "still unpriced" in table
    html = doc["html"].decode()
    assert 'data-field="usage_missing"' in html and 'data-field="reported_cost"' in html
