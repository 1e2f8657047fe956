"""Closing a period (SQLite and PostgreSQL): the stored statement stays byte-identical whatever arrives later, and
what arrives later (late spans, re-pricing) is billed once, as corrections in the first open period."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from costline.cli import main
from costline.processor.clock import system_clock
from costline.processor.ledger import Ledger
from costline.processor.reports.chargeback.report import close_period
from costline.processor.reports.chargeback.statement import Period
from costline.processor.service import build_pipeline
from tests.processor.conftest import at, db_url, make_call  # noqa: F401 - db_url: the fixture
from tests.processor.reports.chargeback.test_command import CONFIG, calls

PRICED = CONFIG.replace("prices:\n", "prices:\n  - {provider: openai, model: no-such-model, input_per_mtok: 3, "
                                     "output_per_mtok: 9}\n")
"""The config once the unpriced model has a price (re-pricing a closed month)."""


def late(first: int, day: int = 20) -> list:
    """Spans of November that arrive after it was closed: a known team, a new one, and untagged ones."""
    return [make_call(first, team="engineering", input_tokens=70_001, output=3_003, start=at(2026, 11, day)),
            make_call(first + 1, team="latecomer", input_tokens=5_000, output=500, start=at(2026, 11, day)),
            make_call(first + 2, team="", org="", input_tokens=9_999, output=99, start=at(2026, 11, day))]


def december() -> list:
    return [make_call(500 + i, team=team, input_tokens=1_000, output=100, start=at(2026, 12, 1, 12))
            for i, team in enumerate(("engineering", "marketing"))]


def run(capsysbinary, *args: str) -> tuple[int, bytes, bytes]:
    code = main(list(args))
    out = capsysbinary.readouterr()
    return code, out.out, out.err


def exact_totals(doc: dict, *, component: str | None = None, name: str | None = None) -> dict[str, Decimal]:
    """Each team's exact charges (all lines, or only those of `component` named `name`)."""
    return {t["team"]: sum((Decimal(x["exact_usd"]) for x in t["lines"]
                            if component is None or (x["component"], x["name"]) == (component, name)), Decimal(0))
            for t in doc["teams"]}


def statement(capsysbinary, config, db, period, fmt="json") -> bytes:
    code, out, err = run(capsysbinary, "chargeback", "--config", str(config), "--db", db, "--period", period,
                         "--format", fmt)
    assert code == 0, err.decode()
    return out


def oracle(tmp_path, name, spans) -> dict[str, Decimal]:
    """November's exact charges per team from a ledger that got every span in time, priced at once."""
    (tmp_path / "oracle.yaml").write_text(PRICED)
    pipeline = build_pipeline(str(tmp_path / "oracle.yaml"), f"sqlite:///{tmp_path / name}.db")
    try:
        pipeline.ingest_calls(spans)
        from costline.processor.reports.chargeback.report import statement_for

        return exact_totals(statement_for(pipeline.config, pipeline.ledger, Period(2026, 11),
                                          clock=system_clock).as_dict())
    finally:
        pipeline.close()


def test_a_closed_period_stays_identical_and_late_spans_are_corrected_once(tmp_path, db_url, capsysbinary):  # noqa: F811
    config = tmp_path / "costline.yaml"
    config.write_text(CONFIG)
    pipeline = build_pipeline(str(config), db_url)
    pipeline.ingest_calls(calls() + december())
    pipeline.close()
    db = db_url

    code, out, err = run(capsysbinary, "close-period", "--config", str(config), "--db", db, "2026-11")
    assert code == 0, err.decode()
    frozen = statement(capsysbinary, config, db, "2026-11")
    frozen_table = statement(capsysbinary, config, db, "2026-11", "table")
    digest = out.decode().split("sha256 ")[1].strip()
    assert hashlib.sha256(frozen).hexdigest() == digest
    frozen_doc = json.loads(frozen)
    assert frozen_doc["closed_at"] and "closed " in frozen_table.decode().splitlines()[0]

    code, _, err = run(capsysbinary, "close-period", "--config", str(config), "--db", db, "2026-11")
    assert code == 2 and b"period 2026-11 is already closed" in err and digest.encode() in err
    code, _, err = run(capsysbinary, "close-period", "--config", str(config), "--db", db, "2026-12")
    assert code == 2 and b"period 2026-12 has not ended yet" in err

    # After the close: late spans for November, and the unpriced model gets a price and is re-priced.
    pipeline = build_pipeline(str(config), db)
    pipeline.ingest_calls(late(1000))
    pipeline.close()
    config.write_text(PRICED)
    code, out, err = run(capsysbinary, "reprice", "--config", str(config), "--db", db, "--since", "2026-11-01")
    assert code == 0 and out.startswith(b"repriced 1 ledger rows"), err.decode()

    assert statement(capsysbinary, config, db, "2026-11") == frozen
    assert statement(capsysbinary, config, db, "2026-11", "table") == frozen_table
    open_doc = json.loads(statement(capsysbinary, config, db, "2026-12"))
    assert open_doc["closed_at"] is None
    corrections = exact_totals(open_doc, component="correction", name="2026-11")
    frozen_exact = exact_totals(frozen_doc)
    in_time = oracle(tmp_path, "in-time", calls() + late(1000))
    assert set(in_time) - set(frozen_exact) == {"acme/latecomer"}
    for team, exact in in_time.items():
        assert frozen_exact.get(team, Decimal(0)) + corrections.get(team, Decimal(0)) == exact, team
    assert Decimal(open_doc["components"]["correction"]) != 0
    latecomer = next(t for t in open_doc["teams"] if t["team"] == "acme/latecomer")
    assert latecomer["model"] == "correction" and [x["component"] for x in latecomer["lines"]] == ["correction"]

    # December closed in January (with its corrections), then more November spans: January bills only those.
    pipeline = build_pipeline(str(config), db)
    try:
        close_period(pipeline.config, pipeline.ledger, Period(2026, 12),
                     now=lambda: datetime(2027, 1, 2, tzinfo=timezone.utc))
        pipeline.ingest_calls(late(2000, day=25))
    finally:
        pipeline.close()
    assert statement(capsysbinary, config, db, "2026-11") == frozen
    december_doc = json.loads(statement(capsysbinary, config, db, "2026-12"))
    assert exact_totals(december_doc, component="correction", name="2026-11") == {
        t: corrections.get(t, Decimal(0)) for t in exact_totals(december_doc)}
    january = exact_totals(json.loads(statement(capsysbinary, config, db, "2027-01")),
                           component="correction", name="2026-11")
    in_time = oracle(tmp_path, "in-time-2", calls() + late(1000) + late(2000, day=25))
    for team, exact in in_time.items():
        billed = frozen_exact.get(team, Decimal(0)) + corrections.get(team, Decimal(0)) + january.get(team, Decimal(0))
        assert billed == exact, team


@pytest.mark.parametrize("text", ["", "chargeback: {}\n"])
def test_closing_without_rules_or_with_nothing_in_the_ledger(tmp_path, capsysbinary, text):
    (tmp_path / "c.yaml").write_text("timezone: UTC\n" + text)
    Ledger(f"sqlite:///{tmp_path / 'l.db'}").close()  # an empty ledger; close-period never creates one
    code, out, err = run(capsysbinary, "close-period", "--config", str(tmp_path / "c.yaml"), "--db",
                         f"sqlite:///{tmp_path / 'l.db'}", "2026-10")
    if not text:
        assert code == 2 and b"no `chargeback:` section in the config" in err
    else:  # an empty month closes too: its statement (nothing to charge) is what was billed
        assert code == 0 and b"closed 2026-10" in out and b"total 0.00 USD over 0 teams" in out, err.decode()


def test_rerating_a_closed_month_is_a_correction_in_the_first_open_period(tmp_path, db_url, capsysbinary):  # noqa: F811
    """A negotiated gpt-4o rate from 15 November, configured after November was closed: `reprice --all` re-rates
    November's rows from that day on; November stays frozen and December bills the difference as corrections."""
    config = tmp_path / "costline.yaml"
    config.write_text(CONFIG)
    pipeline = build_pipeline(str(config), db_url)
    pipeline.ingest_calls(calls() + late(1000, day=10) + late(2000, day=20) + december())
    pipeline.close()
    code, _, err = run(capsysbinary, "close-period", "--config", str(config), "--db", db_url, "2026-11")
    assert code == 0, err.decode()
    frozen = statement(capsysbinary, config, db_url, "2026-11")

    negotiated = CONFIG.replace("prices:\n", "prices:\n  - {provider: openai, model: gpt-4o-mini, input_per_mtok: 0.1, "
                                             "output_per_mtok: 0.3, effective_from: 2026-11-15}\n")
    config.write_text(negotiated)
    code, out, err = run(capsysbinary, "reprice", "--all", "--config", str(config), "--db", db_url,
                         "--since", "2026-11-01")
    assert code == 0 and out.startswith(b"repriced "), err.decode()

    assert statement(capsysbinary, config, db_url, "2026-11") == frozen
    corrections = exact_totals(json.loads(statement(capsysbinary, config, db_url, "2026-12")),
                               component="correction", name="2026-11")
    (tmp_path / "oracle.yaml").write_text(negotiated)
    pipeline = build_pipeline(str(tmp_path / "oracle.yaml"), f"sqlite:///{tmp_path / 'negotiated'}.db")
    try:  # the same calls, priced in time at the negotiated rate
        pipeline.ingest_calls(calls() + late(1000, day=10) + late(2000, day=20))
        from costline.processor.reports.chargeback.report import statement_for

        in_time = exact_totals(statement_for(pipeline.config, pipeline.ledger, Period(2026, 11),
                                             clock=system_clock).as_dict())
    finally:
        pipeline.close()
    frozen_exact = exact_totals(json.loads(frozen))
    assert any(corrections.values())  # the late spans of the 20th were billed at the list price, now re-rated
    for team, exact in in_time.items():
        assert frozen_exact.get(team, Decimal(0)) + corrections.get(team, Decimal(0)) == exact, team
