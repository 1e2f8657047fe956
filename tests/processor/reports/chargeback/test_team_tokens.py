"""`GET /api/v1/chargeback` with a team token (real service, real sockets): the team sees its own lines and its own
untracked spend, never another team's name, and a month without its charges is an empty statement for it."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import date

import pytest

from costline.processor.config.settings import Address, Settings
from costline.processor.http.auth import hash_token
from costline.processor.ledger.reconciliation import ReconciliationStore
from costline.processor.reports.reconcile.compare import Result
from costline.processor.reports.reconcile.store import save
from costline.processor.service import Service
from tests.processor.clock import now_s
from tests.processor.reports.chargeback.test_command import CONFIG, calls
from tests.processor.reports.chargeback.test_untracked import rows

TOKENS = {"admin": "tok-admin-7", "eng": "tok-eng-7", "billing": "tok-billing-7"}
ORGS = """orgs:
  - name: acme
    teams: [{name: engineering}, {name: marketing}, {name: support}, {name: billing}]
  - name: globex
    teams: [{name: research}]
api:
  tokens:
""" + "".join(f"    - {{name: {name}, sha256: \"{hash_token(token)}\", role: {role}}}\n" for name, token, role in (
    ("ops", TOKENS["admin"], "admin"), ("eng", TOKENS["eng"], '"team:acme/engineering"'),
    ("billing", TOKENS["billing"], '"team:acme/billing"')))
OTHERS = (b"marketing", b"support", b"billing", b"globex", b"research")
"""Names of the other teams and orgs: none may appear in what engineering's token reads."""


def get(url: str, token: str) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


@pytest.fixture
def service(tmp_path):
    (tmp_path / "costline.yaml").write_text(CONFIG.replace("prices:", ORGS + "prices:", 1) + "  untracked: show\n")
    settings = Settings(config_path=tmp_path / "costline.yaml", db_url=f"sqlite:///{tmp_path / 'l.db'}",
                        otlp_http=None, otlp_grpc=None, http=Address("127.0.0.1", 0))
    service = Service(settings).start()
    service.pipeline.ingest_calls(calls())
    save(ReconciliationStore(service.pipeline.ledger.engine),
         Result("openai", date(2026, 11, 1), date(2026, 12, 2), rows(), None, ["test"]), now=now_s())
    try:
        yield service
    finally:
        service.stop(1)


@pytest.mark.parametrize("fmt", ["json", "table", "csv", "html"])
def test_a_team_token_reads_its_own_lines_and_untracked_spend_only(service, fmt):
    base = f"{service.admin.url}/api/v1/chargeback?period=2026-11&format={fmt}"
    status, body = get(base, TOKENS["eng"])
    assert status == 200, body
    assert b"acme/engineering" in body
    assert not [name for name in OTHERS if name in body], body.decode()
    if fmt == "json":
        doc = json.loads(body)
        assert [t["team"] for t in doc["teams"]] == ["acme/engineering"]
        assert doc["untracked"]["teams"] == {"acme/engineering": "0.012345678901"}
        assert doc["untracked"]["unmapped_usd"] == "0"
    # The admin still reads every team (and, in JSON and the table, every untracked owner).
    status, everything = get(base, TOKENS["admin"])
    assert status == 200 and b"acme/marketing" in everything and b"globex/research" in everything
    assert fmt in ("csv", "html") or b"acme/billing" in everything


def test_a_month_without_the_teams_charges_is_empty_and_names_no_one(service):
    """Billing made no call in November (its spend there was untracked, shown, not charged): its token gets an
    empty statement with its own untracked spend, not a 400 listing the teams that were charged."""
    url = f"{service.admin.url}/api/v1/chargeback?period=2026-11"
    for fmt in ("json", "table", "csv", "html"):
        status, body = get(f"{url}&format={fmt}", TOKENS["billing"])
        assert status == 200, body
        others = (b"engineering", b"marketing", b"support", b"globex", b"research")
        assert not [name for name in others if name in body], body.decode()
    doc = json.loads(get(url, TOKENS["billing"])[1])
    assert doc["teams"] == [] and doc["total_usd"] == "0.00"
    assert doc["untracked"]["teams"] == {"acme/billing": "0.04176"} and doc["untracked"]["unmapped_usd"] == "0"
    # An admin asking for a team without charges is told which teams have some (it may read them all).
    status, body = get(url + "&team=billing", TOKENS["admin"])
    assert status == 400 and b"has no charges in 2026-11" in body and b"acme/engineering" in body
