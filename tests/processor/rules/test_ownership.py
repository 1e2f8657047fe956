from __future__ import annotations

import pytest

from costline.processor.config.core import load_config
from costline.processor.ownership import Hierarchy
from tests.processor.conftest import EXAMPLE_CONFIG

ALICE_KEY = "b3180bc5c5db03d7"


def resolve(attrs, fingerprint=None):
    return Hierarchy(load_config(EXAMPLE_CONFIG)).resolve(
        {f"costline.{k}": v for k, v in attrs.items()}, fingerprint, None)


def test_registered_key_is_the_durable_identity():
    owner, conflict = resolve({}, ALICE_KEY)
    assert (owner.org, owner.team, owner.user, owner.key) == ("acme", "engineering", "alice", "alice-laptop")
    assert conflict is False


def test_key_wins_over_self_declared_owner_and_counts_a_conflict():
    owner, conflict = resolve({"team": "marketing", "project": "campaigns"}, ALICE_KEY)
    assert (owner.team, owner.user, owner.project) == ("engineering", "alice", "campaigns")
    assert conflict is True


def test_known_user_brings_team_and_org():
    owner, _ = resolve({"user": "alice"})
    assert (owner.org, owner.team, owner.user) == ("acme", "engineering", "alice")


def test_known_team_brings_org_and_unknown_key_keeps_its_fingerprint():
    owner, _ = resolve({"team": "marketing"}, "0123456789abcdef")
    assert (owner.org, owner.team, owner.key) == ("acme", "marketing", "0123456789abcdef")


def test_no_owner_is_unattributed():
    owner, conflict = resolve({})
    assert (owner.org, owner.team, owner.project, owner.user) == ("unattributed", "unattributed", "", "")
    assert conflict is False


def test_unknown_declared_team_is_kept():
    owner, _ = resolve({"team": "skunkworks", "org": "acme"})
    assert (owner.org, owner.team) == ("acme", "skunkworks")


def test_configured_names_bring_their_configured_parents_over_declared_ones():
    owner, conflict = resolve({"user": "alice", "team": "marketing", "org": "other"})
    assert (owner.org, owner.team, owner.user) == ("acme", "engineering", "alice")
    owner, _ = resolve({"team": "marketing", "org": "other"})
    assert (owner.org, owner.team) == ("acme", "marketing")
    assert conflict is False  # conflicts count disagreements with a registered key only


@pytest.mark.parametrize("garbage", ["\x00\n\"}", "t" * 256, "tab\there", 7])
def test_values_that_cannot_be_names_count_as_absent(garbage):
    owner, _ = resolve({"team": garbage, "project": garbage, "feature": garbage})
    assert (owner.org, owner.team, owner.project, owner.feature) == ("unattributed", "unattributed", "", "")
