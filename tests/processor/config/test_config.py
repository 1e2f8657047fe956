from __future__ import annotations

import pytest

from costline.processor.config.core import ConfigError, check_config, load_config, parse_config
from tests.processor.conftest import EXAMPLE_CONFIG


def test_issue_example_loads_as_it_is():
    config = load_config(EXAMPLE_CONFIG)
    key = config.orgs[0].teams[0].users[0].keys[0]
    assert (key.name, key.fingerprint, str(key.budget.daily_usd)) == ("alice-laptop", "b3180bc5c5db03d7", "5")
    assert config.prices[0].model == "gpt-4o"
    assert config.metrics.user_label is False and config.metrics.key_label is False


def test_no_config_is_valid():
    assert load_config(None).orgs == []
    assert parse_config(None).timezone == "UTC"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"timezon": "UTC"}, "timezon: unknown key"),
        ({"timezone": "Mars/Olympus"}, "timezone: must be an IANA time zone"),
        ({"orgs": [{"name": "acme", "budget": {"monthly_usd": -5}}]}, "orgs[0].budget.monthly_usd: Input should be greater than or equal to 0"),
        ({"orgs": [{"name": "acme", "teams": [{"name": "a", "users": [{"name": "u", "keys": [{"name": "k", "fingerprint": "XYZ"}]}]}]}]},
         "orgs[0].teams[0].users[0].keys[0].fingerprint: must be 16 lowercase hex characters"),
        ({"orgs": [{"name": "acme"}, {"name": "acme"}]}, "orgs[1].name: duplicate name 'acme'"),
        ({"prices": [{"provider": "openai", "model": "gpt-4o", "input_per_mtok": 1}]}, "prices[0].output_per_mtok: required key is missing"),
        ({"orgs": [{"name": "unattributed"}]}, "orgs[0].name: must be 1-63 letters"),
        ({"metrics": {"cardinality_limit": 0}}, "metrics.cardinality_limit: Input should be greater than or equal to 1"),
        ([1, 2], "(top level): must be a mapping"),
    ],
)
def test_errors_name_the_key_and_the_rule(data, message):
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    assert any(message in e for e in info.value.errors), info.value.errors


def test_shared_fingerprint_is_refused():
    key = {"name": "k", "fingerprint": "b3180bc5c5db03d7"}
    data = {"orgs": [{"name": "acme", "teams": [{"name": "a", "users": [
        {"name": "u1", "keys": [key]}, {"name": "u2", "keys": [{**key, "name": "k2"}]}]}]}]}
    with pytest.raises(ConfigError, match=r"orgs\[0\]\.teams\[0\]\.users\[1\]\.keys\[0\]\.fingerprint: already registered"):
        parse_config(data)


def test_check_config_reports_yaml_errors_with_position(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("orgs:\n  - name: acme\n   teams: []\n")
    errors = check_config(bad)
    assert len(errors) == 1 and "not valid YAML at line 3" in errors[0]
    assert check_config(EXAMPLE_CONFIG) == []


def test_per_label_cardinality_limits_name_real_labels():
    assert parse_config({"metrics": {"cardinality_limits": {"team": 50}}}).metrics.cardinality_limits == {"team": 50}
    with pytest.raises(ConfigError) as err:
        parse_config({"metrics": {"cardinality_limits": {"squad": 50}}})
    assert err.value.errors[0].startswith("metrics.cardinality_limits: 'squad' is not a metric label")


def test_budget_periods_units_modes_and_scopes_load():
    config = parse_config({"orgs": [{"name": "acme", "budget": {
        "weekly_usd": 50, "quarterly_usd": 900, "rolling": [{"days": 7, "usd": 60}], "monthly_tokens": 5_000_000}}],
        "budgets": [{"scope": "customer", "name": "globex", "monthly_usd": 100, "mode": "hard"},
                    {"scope": "model", "name": "gpt-5", "weekly_usd": 20, "mode": "soft"}]})
    assert [a[:3] for a in config.orgs[0].budget.amounts()] == [
        ("weekly", "usd", 50), ("quarterly", "usd", 900), ("monthly", "tokens", 5_000_000), ("rolling_7d", "usd", 60)]
    assert config.orgs[0].budget.mode == "hard"  # the default: budgets of earlier releases still block
    assert [(b.scope, b.name, b.mode) for b in config.budgets] == [("customer", "globex", "hard"),
                                                                    ("model", "gpt-5", "soft")]


def test_check_config_names_the_key_and_rule_of_bad_budgets(tmp_path):
    bad = tmp_path / "budgets.yaml"
    bad.write_text("""
orgs:
  - name: acme
    budget: {weekly_usd: 50, fortnightly_usd: 10}
    teams:
      - name: t
        budget: {rolling: [{days: 0, usd: 1}, {days: 367, tokens: 5}, {days: 7}], mode: firm}
budgets:
  - {scope: planet, name: mars, monthly_usd: 1}
  - {scope: team, name: t, monthly_usd: 1}
""")
    errors = check_config(bad)
    for expected in (
        "orgs[0].budget: fortnightly_usd: 'fortnightly' is not a budget period; periods are daily, weekly, monthly, "
        "quarterly, yearly",
        "orgs[0].teams[0].budget.rolling[0].days: must be between 1 and 366 days",
        "orgs[0].teams[0].budget.rolling[1].days: must be between 1 and 366 days",
        "orgs[0].teams[0].budget.rolling[2]: give exactly one of usd or tokens",
        "orgs[0].teams[0].budget.mode: must be hard (the guard blocks once spent) or soft",
        "budgets[0].scope: 'planet' is not a budget scope; scopes are project, feature, environment, customer, model",
        "budgets[1].scope: team budgets are set under orgs",
    ):
        assert any(e.startswith(expected) for e in errors), (expected, errors)


def test_a_budget_over_its_parents_is_refused_naming_both(tmp_path):
    bad = tmp_path / "over.yaml"
    bad.write_text("""
orgs:
  - name: acme
    budget: {weekly_usd: 50, monthly_tokens: 1000}
    teams:
      - name: t
        budget: {monthly_usd: 10}
        users:
          - name: u
            budget: {weekly_usd: 60, monthly_usd: 10, monthly_tokens: 1001}
""")
    assert check_config(bad) == [
        "orgs[0].teams[0].users[0].budget.weekly_usd: 60 is over its parent's budget orgs[0].budget.weekly_usd (50); "
        "a budget at one level covers those below it, so a child's may not exceed it",
        "orgs[0].teams[0].users[0].budget.monthly_tokens: 1001 is over its parent's budget "
        "orgs[0].budget.monthly_tokens (1000); a budget at one level covers those below it, so a child's may not "
        "exceed it"]
