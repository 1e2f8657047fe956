"""Untracked spend (stored by `costline reconcile`) in the statement (SQLite and PostgreSQL): always shown per
owning team and unmapped; with `chargeback.untracked: charge` billed at cost, the unmapped spend spread like the
unattributed, every total still adding up to the cent; a closed period freezes it and its document round-trips."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from decimal import ROUND_HALF_UP, Decimal

from costline.processor.clock import system_clock
from costline.processor.ledger.reconciliation import ReconciliationStore
from costline.processor.reports.chargeback.periods import document_bytes
from costline.processor.reports.chargeback.render import render
from costline.processor.reports.chargeback.report import close_period, statement_for
from costline.processor.reports.chargeback.statement import Period, Statement
from costline.processor.reports.reconcile.compare import UNTRACKED_OWNER, OwnerRef, Result, Row
from costline.processor.reports.reconcile.store import save
from costline.processor.service import build_pipeline
from tests.processor.clock import now_s
from tests.processor.conftest import db_url  # noqa: F401 - db_url: the fixture
from tests.processor.reports.chargeback.test_command import CONFIG, calls

NOVEMBER = Period(2026, 11)
PICO = 10**12
ENGINEERING = 12_345_678_901   # $0.012345678901: a key of engineering's, seen by no span
BILLING = 41_760_000_000       # a team with no span at all this month
UNMAPPED = 34_500_000_005      # identities no one owns


def rows() -> list[Row]:
    key = OwnerRef("key", "eng-cron", "acme", "engineering")
    billing = OwnerRef("team", "billing", "acme", "billing")
    return [Row("openai", date(2026, 11, 3), "gpt-4o", key, "api_key_id:k1", provider_cost_pico=ENGINEERING),
            Row("openai", date(2026, 11, 4), "gpt-4o", billing, "project_id:p1", provider_cost_pico=BILLING // 2),
            Row("openai", date(2026, 11, 30), "gpt-4o", billing, "project_id:p1", provider_cost_pico=BILLING // 2),
            Row("openai", date(2026, 11, 5), "gpt-4o", UNTRACKED_OWNER, "api_key_id:nb", provider_cost_pico=UNMAPPED),
            # Seen by spans: drift, not untracked spend; and a December day: another month's.
            Row("openai", date(2026, 11, 6), "gpt-4o", key, "api_key_id:k1", ledger_requests=3,
                provider_cost_pico=10**12, ledger_cost_pico=10**12),
            Row("openai", date(2026, 12, 1), "gpt-4o", billing, "project_id:p1", provider_cost_pico=7 * PICO)]


def made(tmp_path, db_url, rule: str):  # noqa: F811
    config = tmp_path / "costline.yaml"
    config.write_text(CONFIG + f"  untracked: {rule}\n")
    pipeline = build_pipeline(str(config), db_url)
    pipeline.ingest_calls(calls())
    return pipeline


def exact_sum(doc: dict) -> Decimal:
    return sum((Decimal(x["exact_usd"]) for t in doc["teams"] for x in t["lines"]), Decimal(0))


def assert_adds_up(doc: dict) -> None:
    total = Decimal(doc["total_usd"])
    assert sum(Decimal(t["total_usd"]) for t in doc["teams"]) == total
    assert sum(Decimal(v) for v in doc["components"].values()) == total
    for t in doc["teams"]:
        assert sum(Decimal(x["amount_usd"]) for x in t["lines"]) == Decimal(t["total_usd"])
    assert total == exact_sum(doc).quantize(Decimal("0.01"), ROUND_HALF_UP)


def test_untracked_spend_is_shown_and_not_charged_by_default(tmp_path, db_url):  # noqa: F811
    pipeline = made(tmp_path, db_url, "show")
    try:
        before = statement_for(pipeline.config, pipeline.ledger, NOVEMBER, clock=system_clock).as_dict()
        assert before["untracked"] == {"rule": "show", "teams": {}, "unmapped_usd": "0", "total_usd": "0"}
        save(ReconciliationStore(pipeline.ledger.engine), Result("openai", date(2026, 11, 1), date(2026, 12, 2),
                                                                 rows(), None, ["test"]), now=now_s())
        statement = statement_for(pipeline.config, pipeline.ledger, NOVEMBER, clock=system_clock)
        doc = statement.as_dict()
        assert doc["untracked"] == {
            "rule": "show", "teams": {"acme/billing": "0.04176", "acme/engineering": "0.012345678901"},
            "unmapped_usd": "0.034500000005", "total_usd": "0.088605678906"}
        # Shown only: the charges are those of the statement without it.
        assert {k: v for k, v in doc.items() if k != "untracked"} == \
            {k: v for k, v in before.items() if k != "untracked"}
        assert doc["components"]["untracked"] == "0.00"
        table = render(statement, "table")[1].decode()
        assert "Untracked spend (billed by providers, seen by no span; shown, not charged)" in table
        assert "acme/billing" in table and "unmapped provider identities" in table
        assert Statement.from_dict(doc).as_dict() == doc
    finally:
        pipeline.close()


def test_charged_untracked_spend_goes_to_its_team_and_totals_add_up(tmp_path, db_url):  # noqa: F811
    pipeline = made(tmp_path, db_url, "charge")
    try:
        before = statement_for(pipeline.config, pipeline.ledger, NOVEMBER, clock=system_clock).as_dict()
        save(ReconciliationStore(pipeline.ledger.engine), Result("openai", date(2026, 11, 1), date(2026, 12, 2),
                                                                 rows(), None, ["test"]), now=now_s())
        doc = statement_for(pipeline.config, pipeline.ledger, NOVEMBER, clock=system_clock).as_dict()
        assert_adds_up(doc)
        teams = {t["team"]: t for t in doc["teams"]}

        def lines(team: str, name: str = "") -> list[dict]:
            return [x for x in teams[team]["lines"] if (x["component"], x["name"]) == ("untracked", name)]

        assert [x["exact_usd"] for x in lines("acme/engineering")] == ["0.012345678901"]
        # A team whose only spend was untracked is charged like any other: its spend, the fee, its shares.
        fee = [x["amount_usd"] for x in teams["acme/billing"]["lines"] if x["component"] == "platform_fee"]
        assert [x["exact_usd"] for x in lines("acme/billing")] == ["0.04176"] and fee == ["200.00"]
        assert "acme/billing" not in {t["team"] for t in before["teams"]}
        # The unmapped spend, rounded to the cent once, spread in whole cents over the teams.
        spread = [Decimal(x["amount_usd"]) for t in teams for x in lines(t, "untracked")]
        assert len(spread) == len(teams) and sum(spread) == Decimal("0.03")
        # Everything the statement without it charged, plus the untracked spend and the new team's fee, exactly.
        added = Decimal(ENGINEERING + BILLING) / PICO + Decimal("0.03") + 200
        assert exact_sum(doc) == exact_sum(before) + added
        assert Decimal(doc["components"]["untracked"]) == sum(
            Decimal(x["amount_usd"]) for t in teams for x in teams[t]["lines"] if x["component"] == "untracked")
    finally:
        pipeline.close()


def test_a_closed_period_freezes_the_untracked_spend_and_round_trips(tmp_path, db_url):  # noqa: F811
    pipeline = made(tmp_path, db_url, "charge")
    try:
        store = ReconciliationStore(pipeline.ledger.engine)
        save(store, Result("openai", date(2026, 11, 1), date(2026, 12, 2), rows(), None, ["test"]), now=now_s())
        closed = close_period(pipeline.config, pipeline.ledger, NOVEMBER,
                              now=lambda: datetime(2026, 12, 2, tzinfo=timezone.utc))
        doc = json.loads(closed.document)
        assert doc["untracked"]["rule"] == "charge" and doc["untracked"]["teams"]["acme/billing"] == "0.04176"
        assert document_bytes(closed.statement) == closed.document
        assert Statement.from_dict(doc).as_dict() == doc
        # A later run that finds the notebook's spend gone leaves the closed month as it was.
        save(store, Result("openai", date(2026, 11, 1), date(2026, 12, 1), rows()[:3], None, ["later"]), now=now_s())
        frozen = statement_for(pipeline.config, pipeline.ledger, NOVEMBER, clock=system_clock)
        assert frozen.as_dict() == doc
        # ... and bills the difference once, as corrections in the first open month.
        december = statement_for(pipeline.config, pipeline.ledger, NOVEMBER.next(), clock=system_clock).as_dict()
        assert sum(Decimal(x["exact_usd"]) for t in december["teams"] for x in t["lines"]
                   if x["component"] == "correction") == Decimal("-0.03")
    finally:
        pipeline.close()
