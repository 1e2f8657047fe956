"""`costline check-config` on the reconcile section, and `costline reconcile`'s errors: each names the key or the
input and the rule, exits 2, and stores nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date

from costline.processor.ledger import Ledger
from tests.processor.reports.reconcile.admin_server import Served, openai_usage_buckets


def _costline(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([sys.executable, "-m", "costline.cli", *args], capture_output=True, text=True,
                          timeout=60, env={**os.environ, **(env or {})})


def test_check_config_names_key_and_rule(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("""\
orgs: [{name: acme, teams: [{name: search}]}]
reconcile:
  providers:
    openai: {admin_key_env: "sk-admin-AAAAAAAAAAAAAAAA"}
    mistral: {admin_key_env: MISTRAL_KEY}
  identities:
    - {provider: openai, api_key_id: key_1, team: search}
    - {provider: openai, api_key_id: key_1, team: search}
    - {provider: openai, project_id: proj_1, team: nobody}
""")
    result = _costline("check-config", str(path))
    assert result.returncode == 1
    assert "reconcile.providers: 'mistral': providers are openai, anthropic" in result.stderr
    path.write_text(path.read_text().replace("    mistral: {admin_key_env: MISTRAL_KEY}\n", ""))
    result = _costline("check-config", str(path))
    assert "reconcile.providers.openai.admin_key_env: must be the name of an environment variable" in result.stderr
    assert "sk-admin-AAAAAAAAAAAAAAAA" not in result.stderr
    path.write_text(path.read_text().replace('"sk-admin-AAAAAAAAAAAAAAAA"', "OPENAI_ADMIN_KEY"))
    lines = _costline("check-config", str(path)).stderr.splitlines()
    assert any("reconcile.identities[1].api_key_id: openai api_key_id 'key_1' is already mapped at "
               "reconcile.identities[0]" in line for line in lines), lines
    assert any("reconcile.identities[2].team: team 'nobody' is not defined under orgs" in line for line in lines), lines


def test_reconcile_errors_exit_2_and_store_nothing(tmp_path):
    db = f"sqlite:///{tmp_path / 'l.db'}"
    Ledger(db).close()  # reconcile reads an existing ledger; it never creates one
    common = ["reconcile", "--provider", "openai", "--from", "2026-11-01", "--to", "2026-11-30", "--db", db]
    result = _costline(*common, "--admin-key-env", "NOT_SET_ANYWHERE_12")
    assert result.returncode == 2
    assert "environment variable NOT_SET_ANYWHERE_12 is not set" in result.stderr
    bad = tmp_path / "usage.json"
    buckets = openai_usage_buckets([Served(date(2026, 11, 3), "gpt-4o", "k", "p", 1, 0, 0, 1)],
                                   date(2026, 11, 1), date(2026, 12, 1))
    bad.write_text(json.dumps({"object": "page", "data": buckets, "has_more": False, "next_page": None})[:-40])
    result = _costline(*common, "--file", str(bad))
    assert result.returncode == 2
    assert "usage.json: not valid JSON" in result.stderr and "nothing was stored" in result.stderr
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"object": "page", "data": buckets, "has_more": False, "next_page": None}))
    result = _costline(*common, "--file", str(good), "--format", "csv")
    assert result.returncode == 0, result.stderr
    header, row = result.stdout.splitlines()
    assert header.startswith("provider,day,model,owner_kind,owner,org,team,identity,provider_uncached_input_tokens")
    assert ",untracked,untracked,,untracked,api_key_id:k," in row


def test_reconcile_stores_the_priced_rows_and_names_an_unpriced_model(tmp_path):
    db = f"sqlite:///{tmp_path / 'l.db'}"
    report = tmp_path / "usage.json"
    buckets = openai_usage_buckets([Served(date(2026, 11, 3), "gpt-4o", "k", "p", 1, 0, 0, 1),
                                    Served(date(2026, 11, 4), "gpt-9-imaginary", "k", "p", 7, 0, 0, 3)],
                                   date(2026, 11, 1), date(2026, 12, 1))
    report.write_text(json.dumps({"object": "page", "data": buckets, "has_more": False, "next_page": None}))
    from costline.processor.ledger import Ledger

    Ledger(db).close()  # reconcile reads an existing ledger; it never creates one
    result = _costline("reconcile", "--provider", "openai", "--from", "2026-11-01", "--to", "2026-11-30", "--db", db,
                       "--file", str(report), "--format", "json")
    assert result.returncode == 0, result.stderr
    assert "unpriced: 1 row(s) of 'gpt-9-imaginary' not in the price table" in result.stderr
    doc = json.loads(result.stdout)
    assert [u["model"] for u in doc["unpriced"]] == ["gpt-9-imaginary"]
    assert [r["model"] for r in doc["rows"]] == ["gpt-4o"]
    from costline.processor.ledger.reconciliation import ReconciliationStore

    ledger = Ledger(db)
    try:
        stored = ReconciliationStore(ledger.engine).rows("openai", date(2026, 11, 1), date(2026, 12, 1))
    finally:
        ledger.close()
    assert [(r["day"], r["model"]) for r in stored] == [("2026-11-03", "gpt-4o")]
