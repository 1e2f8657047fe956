"""Every coding assistant's events, replayed through the real logs ingest into a fresh ledger: Claude Code's as the
real CLI exported them (`scripts/record_assistant_logs.py`), Gemini CLI's, Codex CLI's and Copilot Chat's as their
documentation specifies them (each fixture cites its format). Each request bills once with the tool's cache
semantics, to the developer its account maps to; the same exports sent again bill nothing more."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from costline.processor.config.core import parse_config
from costline.processor.http.otlp_http import decode_json
from costline.processor.ingest.assistants import AssistantLogs
from costline.processor.ledger import Ledger
from costline.processor.model import BILLABLE_UNITS
from costline.processor.service import assemble_pipeline

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "logs"
UNITS = tuple(unit.attribute for unit in BILLABLE_UNITS)
KEY = ("provider", "model", "operation")
EVERY = sorted(FIXTURES.glob("*/*.json"))


def last_time(fixture: dict) -> datetime:
    times = [int(r["timeUnixNano"]) for req in fixture["requests"] for rl in req["resourceLogs"]
             for sl in rl["scopeLogs"] for r in sl["logRecords"]]
    return datetime.fromtimestamp(max(times) / 1e9, tz=timezone.utc)


def replay(fixture: dict, db_url: str, config: dict, times: int = 1) -> tuple[Ledger, AssistantLogs, datetime]:
    now = last_time(fixture) + timedelta(minutes=1)
    ledger = Ledger(db_url)
    pipeline = assemble_pipeline(parse_config(config), ledger, clock=lambda: now)
    logs = AssistantLogs(pipeline, clock=lambda: now)
    for _ in range(times):
        for request in fixture["requests"]:
            result = logs.ingest(decode_json(json.dumps(request).encode(), ExportLogsServiceRequest))
            assert result.rejected_spans == 0, result.error_message
    return ledger, logs, now


def config_for(fixture: dict) -> dict:
    account = fixture["account"]
    return {"orgs": [{"name": "acme", "teams": [{"name": "search", "users": [{"name": "dev"}]},
                                                 {"name": "platform"}]}],
            "assistants": {"identities": [{**account, "user": "dev"}], "default_team": "platform"}}


@pytest.mark.parametrize("path", EVERY, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_each_request_bills_once_with_the_tools_semantics(path, tmp_path):
    fixture = json.loads(path.read_text())
    ledger, logs, now = replay(fixture, f"sqlite:///{tmp_path / 'ledger.db'}", config_for(fixture), times=2)
    rows = ledger.usage(now - timedelta(days=2), now + timedelta(hours=2), [*KEY, "org", "team", "user", "service"])
    billed: dict[tuple, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in rows:
        assert (row["org"], row["team"], row["user"]) == ("acme", "search", "dev")  # the mapped developer
        target = billed[tuple(row[k] for k in KEY)]
        target["requests"] += row["requests"]
        for unit in BILLABLE_UNITS:
            target[unit.attribute] += row[unit.slot.column]
    expected: dict[tuple, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for call in fixture["expected"]:
        target = expected[tuple(call[k] for k in KEY)]
        target["requests"] += 1
        for unit in UNITS:
            target[unit] += call.get(unit, 0)
    assert {k: dict(v) for k, v in billed.items()} == {k: dict(v) for k, v in expected.items()}
    counts = logs.counts()
    source = fixture["source"]
    assert counts[(source, "billed")] == len(fixture["expected"])  # the first delivery
    assert counts[(source, "duplicate")] == len(fixture["expected"])  # the exporter's retry: nothing billed twice
    assert (source, "unmapped") not in counts
    reported = [c["reported_cost_usd"] for c in fixture["expected"] if "reported_cost_usd" in c]
    total_reported = sum(Decimal(r["reported_cost_usd"]) for r in rows)
    assert total_reported == sum((Decimal(repr(r)) for r in reported), Decimal(0))
    if reported:  # the tool's own cost beside Costline's price: the same list price, the same figure
        assert sum(Decimal(r["cost_usd"]) for r in rows) == total_reported


def test_an_unmapped_account_bills_the_default_team_without_its_email(tmp_path):
    fixture = json.loads((FIXTURES / "claude-code" / "chat.json").read_text())
    config = config_for(fixture)
    config["assistants"]["identities"] = [{"email": "someone-else@acme.com", "user": "dev"}]
    ledger, logs, now = replay(fixture, f"sqlite:///{tmp_path / 'ledger.db'}", config)
    rows = ledger.usage(now - timedelta(days=2), now + timedelta(hours=2), ["org", "team", "user"])
    assert [(r["org"], r["team"], r["user"], r["requests"]) for r in rows] == [("acme", "platform", "", 1)]
    assert logs.counts()[("claude-code", "unmapped")] == 1
    with ledger.engine.connect() as conn:  # the e-mail is nowhere in the ledger
        dump = "\n".join(conn.connection.driver_connection.iterdump())
    assert "alice@acme.com" not in dump.lower()


def test_without_a_default_team_an_unmapped_account_is_unattributed(tmp_path):
    fixture = json.loads((FIXTURES / "codex-cli" / "sse_event.json").read_text())
    ledger, _, now = replay(fixture, f"sqlite:///{tmp_path / 'ledger.db'}", {})
    rows = ledger.usage(now - timedelta(days=2), now + timedelta(hours=2), ["org", "team", "user"])
    assert [(r["org"], r["team"], r["user"], r["requests"]) for r in rows] == [("unattributed", "unattributed", "", 2)]
