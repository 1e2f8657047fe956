"""The admin API's changes as an overlay on the YAML baseline (`governance`), on the ledger's real store (SQLite and
PostgreSQL): a reload never drops them, a change that no longer applies is skipped whole and reported, a refused
change stores nothing, versions collide across two processors, and a project is the system admin's."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from costline.processor.config.core import parse_config
from costline.processor.governance.changes import Actor, AdminError, Administration
from costline.processor.governance.export import export_yaml
from costline.processor.governance.scope import Role
from costline.processor.ledger import Ledger
from costline.processor.ownership import Hierarchy

NOW = datetime(2026, 11, 10, tzinfo=timezone.utc)
BASE = {"orgs": [{"name": "acme", "budget": {"monthly_usd": 3000},
                  "teams": [{"name": "search", "budget": {"monthly_usd": 1000}, "users": [{"name": "sam"}]}]}]}
ROOT = Actor("root", Role.parse("admin"))
ACME = Actor("acme-admin", Role.parse("org-admin:acme"))
SEARCH = Actor("search-admin", Role.parse("team-admin:acme/search"))


def admin_on(ledger: Ledger, baseline: dict = BASE) -> Administration:
    return Administration(parse_config(baseline), ledger.admin, clock=lambda: NOW)


def test_a_reload_keeps_the_api_changes_and_skips_what_no_longer_applies(db_url):
    ledger = Ledger(db_url)
    admin = admin_on(ledger)
    admin.change(ACME, "team", {"action": "create", "name": "ads", "org": "acme"}, None)
    admin.change(SEARCH, "user", {"action": "update", "name": "sam", "budget": {"monthly_usd": 10}}, '"0"')
    admin.change(ACME, "user", {"action": "create", "name": "ann", "team": "ads"}, None)
    admin.change(SEARCH, "token", {"action": "create", "name": "sam-token", "role": "member:acme/search/sam",
                                   "sha256": "sha256:" + "0" * 64}, None)
    # The YAML now gives search more budget and drops sam: sam's change no longer applies, nor does the token that
    # names him (the merged config would be invalid with it); ads and ann stay.
    reloaded = admin.set_baseline(parse_config({"orgs": [{"name": "acme", "teams": [
        {"name": "search", "budget": {"monthly_usd": 2000}}]}]}))
    teams = {t.name: t for t in reloaded.config.orgs[0].teams}
    assert set(teams) == {"search", "ads"} and [u.name for u in teams["ads"].users] == ["ann"]
    assert teams["search"].budget.monthly_usd == 2000
    assert reloaded.conflicts[0] == "user:sam: changed through the API, but no longer in the baseline"
    assert reloaded.conflicts[1].startswith("token:sam-token: api.tokens[0].role: no user 'sam'"), reloaded.conflicts
    assert reloaded.config.api.tokens == []
    # A second processor on the same ledger makes the same merged config; the export is a config it accepts.
    other = admin_on(ledger, {"orgs": [{"name": "acme", "teams": [{"name": "search"}]}]})
    assert Hierarchy(other.merged().config).user_parent == Hierarchy(reloaded.config).user_parent
    import yaml

    assert parse_config(yaml.safe_load(export_yaml(reloaded.config))) == reloaded.config


def test_a_refused_change_stores_nothing_and_a_stale_version_is_a_409(db_url):
    ledger = Ledger(db_url)
    one, two = admin_on(ledger), admin_on(ledger)
    with pytest.raises(AdminError) as err:
        one.change(SEARCH, "user", {"action": "update", "name": "sam", "budget": {"monthly_usd": 1001}}, '"0"')
    assert err.value.status == 422 and "team acme/search" in str(err.value)
    with pytest.raises(AdminError) as err:
        one.change(ACME, "project", {"action": "create", "name": "labs"}, None)
    assert err.value.status == 403 and "project labs" in str(err.value)
    assert ledger.admin.rows() == []
    one.change(SEARCH, "user", {"action": "update", "name": "sam", "budget": {"monthly_usd": 5}}, '"0"')
    # `two` (another processor) sends the version read before `one`'s change: 409, and nothing stored.
    with pytest.raises(AdminError) as err:
        two.change(SEARCH, "user", {"action": "update", "name": "sam", "budget": {"monthly_usd": 6}}, '"0"')
    assert err.value.status == 409
    assert [row["version"] for row in ledger.admin.rows()] == [1]
    assert one.change(ROOT, "project", {"action": "create", "name": "labs"}, None)["version"] == 1
