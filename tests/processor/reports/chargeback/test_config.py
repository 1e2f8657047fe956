"""The `chargeback:` section: the specified block loads as it is, and every mistake names its key and its rule."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from costline.processor.config.core import ConfigError, parse_config
from costline.processor.config.core import load_config as load

ISSUE = Path(__file__).with_name("issue.yaml")


def test_the_specified_block_loads_as_it_is():
    config = load(ISSUE).chargeback
    assert config.default.markup_pct == 15 and config.default.platform_fee_usd == 200
    assert [t.up_to_mtok for t in config.tiers] == [10, 100, None]
    assert config.teams["support"].per_outcome_usd == {"ticket_resolved": Decimal("0.50")}
    assert config.shared_costs[1].split == {"engineering": 60, "marketing": 40}
    assert config.unattributed == "proportional"


def test_check_config_accepts_it(tmp_path):
    from costline.processor.config.core import check_config

    assert check_config(ISSUE) == []


def errors(section: dict) -> list[str]:
    with pytest.raises(ConfigError) as err:
        parse_config({"chargeback": section})
    return err.value.errors


@pytest.mark.parametrize(("section", "expected"), [
    ({"shared_costs": [{"name": "x", "monthly_usd": 10, "split": {"a": 60, "b": 30}}]},
     "chargeback.shared_costs[0].split: a fixed split's percentages must add up to 100, not 90"),
    ({"tiers": [{"up_to_mtok": 10, "markup_pct": 5}]},
     "chargeback.tiers: the last tier takes every volume above the others: leave out its up_to_mtok"),
    ({"tiers": [{"up_to_mtok": 10, "markup_pct": 5}, {"up_to_mtok": 5, "markup_pct": 1}, {"markup_pct": 1}]},
     "chargeback.tiers: up_to_mtok must increase from one tier to the next"),
    ({"tiers": [{"markup_pct": 5}, {"markup_pct": 1}]}, "chargeback.tiers: only the last tier may leave out up_to_mtok"),
    ({"shared_costs": [{"name": "x", "monthly_usd": 1, "split": "prop"}]},
     "chargeback.shared_costs[0].split: must be proportional, even, or fixed percentages per team"),
    ({"shared_costs": [{"name": "x", "monthly_usd": 1, "split": {"a": "lots"}}]},
     "chargeback.shared_costs[0].split: a: a percentage above 0 and at most 100, not 'lots'"),
    ({"default": {"platform_fee_usd": "200.005"}}, "chargeback.default.platform_fee_usd: Decimal input should have no more than 2 decimal places"),
    ({"default": {"markup_pct": -1}}, "chargeback.default.markup_pct: Input should be greater than or equal to 0"),
    ({"default": {"markup_pct": "Infinity"}}, "chargeback.default.markup_pct: Input should be a finite number"),
    ({"teams": {"a/b/c": {}}}, "chargeback.teams: 'a/b/c' is not a team: write `team` or `org/team`"),
    ({"teams": {"unattributed": {}}}, "chargeback.teams: the unattributed spend is spread by"),
    ({"teams": {"support": {"per_outcome_usd": {}}}}, "chargeback.teams.support.per_outcome_usd: must name at least one outcome"),
    ({"unattributed": "everyone"}, "chargeback.unattributed: must be proportional, even, or {team: NAME}"),
    ({"unattributed": {"team": "x y"}}, "chargeback.unattributed: 'x y' is not a team"),
    ({"untracked": "bill"}, "chargeback.untracked: must be show or charge, not 'bill'"),
    ({"shared_costs": [{"name": "x", "monthly_usd": 1, "split": "even"},
                       {"name": "x", "monthly_usd": 2, "split": "even"}]},
     "chargeback: shared_costs[1].name: duplicate name 'x'"),
    ({"teems": {}}, "chargeback.teems: unknown key"),
])
def test_mistakes_name_the_key_and_the_rule(section, expected):
    found = errors(section)
    assert len(found) == 1 and found[0].startswith(expected), found


HIERARCHY = """timezone: UTC
orgs:
  - name: acme
    teams: [{name: search}, {name: research}]
chargeback:
  shared_costs:
    - {name: gpu, monthly_usd: 1000, split: {search: 60, reserch: 40}}
  unattributed: {team: acme/serch}
"""


def test_a_fixed_split_names_teams_of_the_hierarchy(tmp_path):
    """A typo in a split target would bill a phantom team: with an `orgs:` hierarchy, it is a config error naming
    the key and the rule, from the loader and from `costline check-config`."""
    import subprocess
    import sys

    from costline.processor.config.core import check_config

    path = tmp_path / "costline.yaml"
    path.write_text(HIERARCHY)
    expected = ["chargeback.shared_costs[0].split: team 'reserch' is not defined under orgs; a fixed split and "
                "unattributed.team charge teams of the hierarchy",
                "chargeback.unattributed.team: team 'acme/serch' is not defined under orgs; a fixed split and "
                "unattributed.team charge teams of the hierarchy"]
    assert all(any(e in line for line in check_config(path)) for e in expected), check_config(path)
    run = subprocess.run([sys.executable, "-m", "costline.cli", "check-config", str(path)], capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 1 and all(e in run.stderr for e in expected), run.stderr
    path.write_text(HIERARCHY.replace("reserch", "acme/research").replace("acme/serch", "search"))
    assert check_config(path) == []
