"""The `assistants:` section: a tool's account identities mapped to owners, each error naming its key and rule, and
`costline check-config` accepting a valid one."""

from __future__ import annotations

import subprocess
import sys

import pytest

from costline.processor.config.core import ConfigError, parse_config

ORGS = {"orgs": [{"name": "acme", "teams": [{"name": "search", "users": [{"name": "alice"}]}, {"name": "platform"}]}]}


def errors(assistants: dict, orgs: dict | None = None) -> list[str]:
    with pytest.raises(ConfigError) as refused:
        parse_config({**(ORGS if orgs is None else orgs), "assistants": assistants})
    return refused.value.errors


def test_a_valid_section_maps_emails_case_insensitively_and_account_ids_exactly():
    config = parse_config({**ORGS, "assistants": {
        "identities": [{"email": "Alice@Acme.com", "user": "alice"},
                       {"account_id": "5f0c9d1e-aaaa", "user": "bob", "team": "search", "org": "acme"}],
        "default_team": "platform", "default_org": "acme"}})
    table = config.assistants.lookup()
    assert table[("email", "alice@acme.com")].user == "alice"
    assert table[("account_id", "5f0c9d1e-aaaa")].team == "search"
    assert ("account_id", "5F0C9D1E-AAAA") not in table
    assert parse_config({}).assistants.identities == []


@pytest.mark.parametrize(("assistants", "expected"), [
    ({"identities": [{"user": "alice"}]},
     "assistants.identities[0]: give email or account_id (or both): the identity the tool reports"),
    ({"identities": [{"email": "not-an-email", "user": "alice"}]},
     "assistants.identities[0].email: must be an e-mail address (name@domain)"),
    ({"identities": [{"email": "a@acme.com", "user": "al ice"}]},
     "assistants.identities[0].user: must be 1-63 letters, digits, '_', '.', '-', starting with a letter or digit"),
    ({"identities": [{"email": "a@acme.com", "user": "unattributed"}]},
     "assistants.identities[0].user: is a reserved name (unattributed, __overflow__)"),
    ({"identities": [{"email": "a@acme.com", "user": "alice"}, {"email": "A@ACME.com", "user": "bob"}]},
     "assistants.identities[1].email: 'A@ACME.com' is already mapped at assistants.identities[0]"),
    ({"identities": [{"email": "a@acme.com", "user": "alice", "team": "serch"}]},
     "assistants.identities[0].team: team 'serch' is not defined under orgs"),
    ({"default_team": "nobody"}, "assistants.default_team: team 'nobody' is not defined under orgs"),
    ({"identities": [], "seats": 3}, "assistants.seats: unknown key (check the spelling against docs/configuration.md)"),
])
def test_each_error_names_its_key_and_rule(assistants, expected):
    assert expected in errors(assistants)


def test_without_orgs_any_team_name_is_accepted():
    parse_config({"assistants": {"identities": [{"email": "a@acme.com", "user": "alice", "team": "search"}],
                                 "default_team": "platform"}})


def test_check_config_accepts_the_section(tmp_path):
    path = tmp_path / "costline.yaml"
    path.write_text("assistants:\n  identities:\n    - {email: alice@acme.com, user: alice, team: search}\n"
                    "  default_team: platform\n")
    done = subprocess.run([sys.executable, "-m", "costline.cli", "check-config", str(path)], capture_output=True,
                          timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    path.write_text("assistants:\n  identities:\n    - {user: alice}\n")
    done = subprocess.run([sys.executable, "-m", "costline.cli", "check-config", str(path)], capture_output=True,
                          timeout=60)
    assert done.returncode != 0 and b"assistants.identities[0]" in done.stdout + done.stderr
