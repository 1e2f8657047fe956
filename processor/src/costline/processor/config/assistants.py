"""The `assistants:` section of the config: whose coding-assistant spend a tool's account identity is.

    assistants:
      identities:
        - {email: alice@acme.com, user: alice, team: search, org: acme}
        - {account_id: 5f0c9d1e-..., user: bob}            # bob's team and org come from `orgs:`
      default_team: platform                               # unmapped identities; none: `unattributed`
      default_org: acme

Claude Code, Gemini CLI, Codex CLI and Copilot Chat report the developer's account with each API request (an
e-mail, an account id: docs/coding-assistants.md says which tool sends which). An identity listed here bills its
requests to `user` (and `team`, `org`: given, or the user's own in `orgs:`); any other lands in `default_team` (or
team `unattributed`), where it stays visible and is counted (`costline_assistant_requests_total{outcome="unmapped"}`).
The e-mail is matched case-insensitively and never becomes a label: only the mapped `user` does.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field, field_validator, model_validator

from costline.processor.config.validators import NAME, NAME_RULE, Strict, matching

_EMAIL = re.compile(r"^[^\s@]{1,64}@[^\s@]{1,255}$")
_ACCOUNT = re.compile(r"^[^\s]{1,255}$")
Name = Annotated[str, matching(NAME, f"must be {NAME_RULE}")]


class AssistantIdentity(Strict):
    """One account of a coding assistant and the owner its requests are billed to."""

    email: Annotated[str, matching(_EMAIL, "must be an e-mail address (name@domain)")] | None = None
    account_id: Annotated[str, matching(_ACCOUNT, "must be 1-255 characters without spaces (the tool's account "
                                                  "id: Claude Code's user.account_uuid, Codex's user.account_id)")
                          ] | None = None
    user: Name
    team: Name | None = None
    org: Name | None = None

    @field_validator("user", "team", "org")
    @classmethod
    def _not_reserved(cls, value: str | None) -> str | None:
        if value in ("unattributed", "__overflow__"):
            raise ValueError("is a reserved name (unattributed, __overflow__)")
        return value

    @model_validator(mode="after")
    def _one_identity(self) -> AssistantIdentity:
        if self.email is None and self.account_id is None:
            raise ValueError("give email or account_id (or both): the identity the tool reports")
        return self


class AssistantsConfig(Strict):
    """Coding assistants' account identities → owners (docs/coding-assistants.md)."""

    identities: list[AssistantIdentity] = Field(default_factory=list)
    default_team: Name | None = None
    """Where requests of an identity not listed go; none: team `unattributed`."""
    default_org: Name | None = None

    def validate_against(self, teams: dict[str, str], users: dict[str, str]) -> list[str]:
        """`key: rule` errors: an identity listed twice, a user or team that `orgs:` (when given) does not define, a
        team that contradicts the configured user's own. `teams`/`users`: name → where `orgs:` defines it."""
        errors: list[str] = []
        seen: dict[tuple[str, str], int] = {}
        for i, entry in enumerate(self.identities):
            for kind, value in (("email", entry.email), ("account_id", entry.account_id)):
                if value is None:
                    continue
                key = (kind, value.lower() if kind == "email" else value)
                if key in seen:
                    errors.append(f"assistants.identities[{i}].{kind}: {value!r} is already mapped at "
                                  f"assistants.identities[{seen[key]}]")
                seen.setdefault(key, i)
            if teams or users:  # with a hierarchy, names must be its names: a typo would mint an owner
                if entry.team is not None and entry.team not in teams:
                    errors.append(f"assistants.identities[{i}].team: team {entry.team!r} is not defined under orgs")
        if self.default_team is not None and teams and self.default_team not in teams:
            errors.append(f"assistants.default_team: team {self.default_team!r} is not defined under orgs")
        return errors

    def lookup(self) -> dict[tuple[str, str], AssistantIdentity]:
        """(`email` lower-cased | `account_id`, value) → identity: what ingest matches a request's account against."""
        table: dict[tuple[str, str], AssistantIdentity] = {}
        for entry in self.identities:
            if entry.email is not None:
                table.setdefault(("email", entry.email.lower()), entry)
            if entry.account_id is not None:
                table.setdefault(("account_id", entry.account_id), entry)
        return table
