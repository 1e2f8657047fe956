"""The config's `reconcile.identities`, resolved to owners located in the org hierarchy (org and team, for the
chargeback's roll-ups)."""

from __future__ import annotations

from costline.processor.config.core import CostlineConfig
from costline.processor.reports.reconcile.compare import OwnerRef


def identities_for(config: CostlineConfig, provider: str) -> dict[tuple[str, str], OwnerRef]:
    """(identity kind, id) -> owner, for one provider."""
    where: dict[tuple[str, str], tuple[str, str]] = {}
    for org in config.orgs:
        for team in org.teams:
            where[("team", team.name)] = (org.name, team.name)
            for user in team.users:
                where[("user", user.name)] = (org.name, team.name)
                for key in user.keys:
                    where.setdefault(("key", key.name), (org.name, team.name))
    out: dict[tuple[str, str], OwnerRef] = {}
    for entry in config.reconcile.identities:
        if entry.provider == provider:
            kind, name = entry.owner
            org, team = where.get((kind, name), ("", ""))
            out[entry.identity] = OwnerRef(kind, name, org, team)
    return out
