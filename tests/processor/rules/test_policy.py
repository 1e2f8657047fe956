"""Model policy: `models:` rules in config (check-config names key and rule), the most restrictive level wins,
and every billed call to a refused model is counted in `costline_policy_violations_total`."""

from __future__ import annotations

import subprocess
import sys

import pytest
from prometheus_client import CollectorRegistry

from costline.processor.clock import system_clock
from costline.processor.config.core import ConfigError, parse_config
from costline.processor.ingest.pipeline import Pipeline
from costline.processor.ledger import Ledger
from costline.processor.policy import ModelPolicy
from costline.processor.service import assemble_pipeline
from tests.processor.conftest import make_call

POLICY = {
    "orgs": [{
        "name": "acme",
        "models": {"openai": {"deny": ["o3*"]}},
        "teams": [
            {"name": "marketing",
             "models": {"openai": {"allow": ["gpt-4o-mini*", "o3-mini"]}, "anthropic": {"allow": ["claude-*-haiku*"]}},
             "users": [{"name": "bob", "keys": [
                 {"name": "bob-ci", "fingerprint": "0123456789abcdef", "models": {"*": {"deny": ["*-preview"]}}}]}]},
            {"name": "search"},
        ],
    }],
    "projects": [{"name": "labs", "models": {"openai": {"deny": ["gpt-4o"]}}}],
}


@pytest.fixture(scope="module")
def policy() -> ModelPolicy:
    return ModelPolicy(parse_config(POLICY))


@pytest.mark.parametrize(("owner", "provider", "model", "rule"), [
    # An org's deny reaches every team, even where the team's allow list names the model.
    (("acme", "marketing"), "openai", "o3-mini", "org acme openai deny o3*"),
    (("acme", "search"), "openai", "O3-2025-04-16", "org acme openai deny o3*"),  # case-insensitive
    (("acme", "search"), "openai", "gpt-4o", None),
    # A team's allow list admits only what it lists, per provider.
    (("acme", "marketing"), "openai", "gpt-4o", "team acme/marketing openai allow"),
    (("acme", "marketing"), "openai", "gpt-4o-mini-2024-07-18", None),
    (("acme", "marketing"), "anthropic", "claude-3-5-haiku-latest", None),
    (("acme", "marketing"), "anthropic", "claude-opus-4-1", "team acme/marketing anthropic allow"),
    (("acme", "marketing"), "groq", "llama-3.1-8b", None),  # no rule for the provider
    # Key rules for every provider, below the team's.
    (("acme", "marketing", "bob", "bob-ci"), "openai", "gpt-4o-mini-preview", "key acme/marketing/bob/bob-ci * deny *-preview"),
    # Projects cut across teams.
    (("acme", "search", "", "", "labs"), "openai", "gpt-4o", "project labs openai deny gpt-4o"),
    (("acme", "search", "", "", "labs"), "openai", "gpt-4o-2024-08-06", None),  # a glob is needed for snapshots
    # Owners the config does not know have no rules.
    (("other", "x"), "openai", "o3", None),
])
def test_most_restrictive_level_wins(policy, owner, provider, model, rule):
    assert policy.check(provider, model, policy.chain(*owner)) == rule


@pytest.mark.parametrize(("glob", "message"), [
    ("gpt-4o[", "'gpt-4o[': '[' at position 6 opens a set that is never closed or empty"),
    ("claude-{haiku,sonnet}", "braces"),
    ("gpt-4o]", "']' at position 6 closes no '['"),
    ("", "an empty pattern matches nothing"),
    ("gpt 4o", "whitespace"),
])
def test_a_malformed_glob_is_named_with_its_key(glob, message):
    data = {"orgs": [{"name": "acme", "teams": [{"name": "t", "models": {"openai": {"deny": ["o3*", glob]}}}]}]}
    with pytest.raises(ConfigError) as err:
        parse_config(data)
    assert len(err.value.errors) == 1
    assert err.value.errors[0].startswith("orgs[0].teams[0].models.openai.deny[1]: ")
    assert message in err.value.errors[0]


def test_check_config_names_the_malformed_glob(tmp_path):
    path = tmp_path / "costline.yaml"
    path.write_text("orgs:\n  - name: acme\n    models:\n      anthropic: {allow: ['claude-[haiku']}\n")
    result = subprocess.run([sys.executable, "-m", "costline.cli", "check-config", str(path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert f"{path}: orgs[0].models.anthropic.allow[0]: 'claude-[haiku': '[' at position 7" in result.stderr


def test_unknown_rule_key_is_refused():
    with pytest.raises(ConfigError) as err:
        parse_config({"orgs": [{"name": "acme", "models": {"openai": {"alow": ["gpt-4o"]}}}]})
    assert err.value.errors == ["orgs[0].models.openai.alow: unknown key (check the spelling against "
                                "docs/configuration.md)"]


def violations(pipeline: Pipeline) -> dict[tuple[str, ...], float]:
    registry = CollectorRegistry()
    registry.register(pipeline.policy_violations)
    return {(s.labels["org"], s.labels["team"], s.labels["model"], s.labels["rule"]): s.value
            for family in registry.collect() for s in family.samples}


def test_every_billed_call_to_a_refused_model_is_counted_once(tmp_path):
    pipeline = assemble_pipeline(parse_config(POLICY), Ledger(f"sqlite:///{tmp_path / 'l.db'}"), clock=system_clock)
    calls = [
        make_call(1, model="gpt-4o", team="marketing"),
        make_call(2, model="gpt-4o", team="marketing"),
        make_call(3, model="gpt-4o-mini", team="marketing"),
        make_call(4, model="o3", team="search"),
        # The registered key wins over the declared team, as for billing.
        make_call(5, model="gpt-4o-mini-preview", team="search", fingerprint="0123456789abcdef"),
    ]
    pipeline.ingest_calls(calls)
    pipeline.ingest_calls(calls[:2])  # an exporter's retry: not billed again, not counted again
    assert violations(pipeline) == {
        ("acme", "marketing", "gpt-4o", "team acme/marketing openai allow"): 2.0,
        ("acme", "search", "o3", "org acme openai deny o3*"): 1.0,
        ("acme", "marketing", "gpt-4o-mini-preview", "key acme/marketing/bob/bob-ci * deny *-preview"): 1.0,
    }
    pipeline.close()


def test_violation_series_fold_every_owner_label_past_its_limit(tmp_path):
    # Teams minted by spans (the org's deny rule covers any team) and made-up model names: each label folds to
    # `__overflow__` past its cardinality limit, as on the cost series, and no call goes uncounted.
    config = parse_config({**POLICY, "metrics": {"cardinality_limit": 3, "cardinality_limits": {"model": 2}}})
    pipeline = assemble_pipeline(config, Ledger(f"sqlite:///{tmp_path / 'l.db'}"), clock=system_clock)
    pipeline.ingest_calls([make_call(n, model=f"o3-{n}", team=f"minted-{n}") for n in range(40)])
    counted = violations(pipeline)
    assert sum(counted.values()) == 40.0
    assert len({team for _, team, _, _ in counted}) == 4  # 3 teams, then __overflow__
    assert len({model for _, _, model, _ in counted}) == 3  # 2 models, then __overflow__
    assert counted[("acme", "__overflow__", "__overflow__", "org acme openai deny o3*")] == 37.0
    # A reload with a higher limit admits new values; the series already folded stay as they are.
    pipeline.reload(parse_config({**POLICY, "metrics": {"cardinality_limit": 5}}))
    pipeline.ingest_calls([make_call(100, model="o3-100", team="minted-100")])
    assert violations(pipeline)[("acme", "minted-100", "o3-100", "org acme openai deny o3*")] == 1.0
    pipeline.close()
