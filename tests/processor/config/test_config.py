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
