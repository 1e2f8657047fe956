"""Who a call belongs to: the org → team → user → key hierarchy and projects from the config.

A registered API-key fingerprint is the durable identity: it wins over the team, user or org a span declares
(those come from code, baggage or resource attributes, which anyone can set). A call that declares an owner that
disagrees with its registered key is a conflict, counted so that someone can fix the app's attributes. A user or
team known to the config brings its parents. No owner at all is team `unattributed`.
"""

from __future__ import annotations

from dataclasses import dataclass

from costline import attributes as A
from costline.processor.config.core import CostlineConfig
from costline.processor.model import MAX_LABEL_LENGTH, OWNER_DIMENSIONS, Owner

__all__ = ["UNATTRIBUTED", "Hierarchy", "Owner"]

UNATTRIBUTED = "unattributed"

_DECLARED_AS_IS = tuple((d.name, d.attribute) for d in OWNER_DIMENSIONS if d.attribute and not d.hierarchy)
"""Dimensions taken from the span as declared (project, feature, ...): the hierarchy's are resolved below."""


@dataclass(frozen=True, slots=True)
class _KeyEntry:
    org: str
    team: str
    user: str
    name: str




def _usable(value: object) -> str:
    """An owner value as a label and ledger value, or "" when it cannot be one: not a string, control characters
    (NUL, newlines), or longer than a ledger column. Such a value is treated as absent, so the call falls back to
    the next source or to `unattributed`, instead of minting a garbage owner."""
    if type(value) is not str or len(value) > MAX_LABEL_LENGTH or not value.isprintable():
        return ""
    return value


def _as_is(value: str | None) -> str:
    return value or ""


_MEMO_LIMIT = 50_000


class Hierarchy:
    """Immutable lookup tables built from one config. Replace the object to reload."""

    def __init__(self, config: CostlineConfig) -> None:
        self.keys: dict[str, _KeyEntry] = {}
        self.user_parent: dict[str, tuple[str, str]] = {}
        self.team_org: dict[str, str] = {}
        self._memo: dict[tuple, tuple[Owner, bool]] = {}
        for org in config.orgs:
            for team in org.teams:
                self.team_org[team.name] = org.name
                for user in team.users:
                    self.user_parent[user.name] = (org.name, team.name)
                    for key in user.keys:
                        self.keys[key.fingerprint] = _KeyEntry(org.name, team.name, user.name, key.name)

    def resolve(self, owner_attrs: dict[str, str], fingerprint: str | None, environment: str | None
                ) -> tuple[Owner, bool]:
        """(owner, conflict). `owner_attrs` are the `costline.*` keys of the span, then its resource.

        Memoised: a batch repeats the same few owners, and the result depends on nothing else (`Owner` is frozen).
        """
        memo_key = (*owner_attrs.items(), fingerprint, environment)
        found = self._memo.get(memo_key)
        if found is None:
            if len(self._memo) >= _MEMO_LIMIT:  # bounded: a flood of distinct owners cannot exhaust memory
                self._memo.clear()
            found = self._memo[memo_key] = self._resolve(owner_attrs, fingerprint, environment)
        return found

    def _resolve(self, owner_attrs: dict[str, str], fingerprint: str | None, environment: str | None
                 ) -> tuple[Owner, bool]:
        usable = _usable
        if all(type(v) is str for v in owner_attrs.values()):
            # The usual owner, checked at once (a concatenation is printable exactly when each part is): then every
            # value is usable as it is, and each is only looked up.
            joined = "".join(owner_attrs.values())
            if joined.isprintable() and max(map(len, owner_attrs.values()), default=0) <= MAX_LABEL_LENGTH:
                usable = _as_is
        org = usable(owner_attrs.get(A.COSTLINE_ORG))
        team = usable(owner_attrs.get(A.COSTLINE_TEAM))
        user = usable(owner_attrs.get(A.COSTLINE_USER))
        key = ""
        conflict = False
        entry = self.keys.get(fingerprint) if fingerprint else None
        if entry is not None:
            conflict = bool(
                (org and org != entry.org) or (team and team != entry.team) or (user and user != entry.user)
            )
            org, team, user, key = entry.org, entry.team, entry.user, entry.name
        else:
            if fingerprint:
                key = _usable(fingerprint)  # unregistered keys are still told apart, by their (non-secret) fingerprint
            # The config's hierarchy is authoritative for the names it knows: a span that names a configured user
            # or team belongs under that user's team and that team's org, whatever parents it declares, so that
            # budgets up the chain see the spend.
            if user in self.user_parent:
                org, team = self.user_parent[user]
            elif team in self.team_org:
                org = self.team_org[team]
        return Owner(
            org=org or UNATTRIBUTED,
            team=team or UNATTRIBUTED,
            user=user,
            key=key,
            environment=_usable(environment),
            **{name: usable(owner_attrs.get(attribute)) for name, attribute in _DECLARED_AS_IS},
        ), conflict
