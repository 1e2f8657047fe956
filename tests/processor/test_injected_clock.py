"""The service's clock is the one every part of it asks (issue 19): a `Service` built with a fixed clock answers as
if it were then — the API's default chargeback month, a usage window without `to`, a token's expiry — whatever
the system clock says."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from costline.processor.config.settings import Address, Settings
from costline.processor.http.auth import hash_token
from costline.processor.service import Service
from tests.processor.reports.chargeback.test_command import CONFIG, calls
from tests.processor.reports.chargeback.test_team_tokens import get

THEN = datetime(2026, 11, 20, 12, tzinfo=timezone.utc)
"""Inside November in Berlin; any system clock running the suite is later (the calls are dated November 2026)."""
TOKEN, EXPIRING = "tok-ops-19", "tok-then-19"
API = f"""api:
  tokens:
    - {{name: ops, sha256: "{hash_token(TOKEN)}", role: admin}}
    - {{name: then, sha256: "{hash_token(EXPIRING)}", role: admin, expires: 2026-11-21T00:00:00Z}}
"""
"""`then` expires the day after `THEN`: valid by the service's clock, expired by the system's."""


@pytest.fixture
def service(tmp_path):
    (tmp_path / "costline.yaml").write_text(CONFIG + API)
    settings = Settings(config_path=tmp_path / "costline.yaml", db_url=f"sqlite:///{tmp_path / 'l.db'}",
                        otlp_http=None, otlp_grpc=None, http=Address("127.0.0.1", 0))
    service = Service(settings, clock=lambda: THEN).start()
    service.pipeline.ingest_calls(calls())
    try:
        yield service
    finally:
        service.stop(1)


def test_the_default_chargeback_month_is_the_clocks(service):
    status, body = get(f"{service.admin.url}/api/v1/chargeback?format=json", TOKEN)
    assert status == 200, body
    document = json.loads(body)
    assert document["period"] == "2026-11"
    assert "acme/engineering" in [team["team"] for team in document["teams"]]


def test_a_usage_window_without_to_ends_at_the_clock(service):
    # Between Nov 15 and the clock's now nothing was called; the next call is research's, Nov 30 23:30 UTC.
    status, body = get(f"{service.admin.url}/api/v1/usage?from=2026-11-15&group_by=team&format=json", TOKEN)
    assert status == 200, body
    assert json.loads(body)["rows"] == []
    status, body = get(f"{service.admin.url}/api/v1/usage?from=2026-11-15&to=2026-11-30&group_by=team&format=json", TOKEN)
    assert [row["team"] for row in json.loads(body)["rows"]] == ["research"]


def test_a_token_expires_by_the_clock(service):
    status, body = get(f"{service.admin.url}/api/v1/budgets", EXPIRING)
    assert status == 200, body
