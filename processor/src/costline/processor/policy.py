"""Model policy: which models an owner may call, from the `models:` rules of the config.

    orgs:
      - name: acme
        models: {openai: {deny: ["o1*", "o3*"]}}
        teams:
          - name: marketing
            models: {openai: {allow: ["gpt-4o-mini*"]}, anthropic: {allow: ["claude-*-haiku*"]}}

Rules sit at org, team, user, key and project level, per provider (`*`: every provider). The most restrictive wins:
a model denied at any level above or at the caller is denied, and every level with an `allow` list for the call's
provider admits only what it lists. Patterns are shell-style globs compared case-insensitively; a level without
rules admits everything.

The processor checks every billed call (`metrics.policy_violations.PolicyViolations`, whether or not the app runs the guard); the guard in
the application gets the caller's rules from `GET /api/v1/policy` and applies the same test before a request
leaves the process.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from fnmatch import translate

from costline.processor.config.core import ANY_PROVIDER, CostlineConfig, ModelRule


@dataclass(frozen=True, slots=True)
class LevelRule:
    """The rule of one owner level for one provider key (`openai` or `*`)."""

    level: str
    """`<scope> <owner>`, as budgets name their owners: `team acme/marketing`, `project campaigns`."""
    provider: str
    allow: tuple[str, ...] | None
    deny: tuple[str, ...]
    _allow_re: re.Pattern[str] | None
    _deny_res: tuple[tuple[str, re.Pattern[str]], ...]
    on_approval: tuple[tuple[str, re.Pattern[str]], ...] = ()
    """Patterns refused unless an approval covers the caller (`ModelPolicy.check` asks)."""
    members_may_request: bool = False

    @classmethod
    def of(cls, level: str, provider: str, rule: ModelRule) -> LevelRule:
        allow = tuple(rule.allow) if rule.allow is not None else None
        allow_re = re.compile("|".join(translate(p) for p in allow), re.IGNORECASE) if allow else None
        if allow == ():
            allow_re = re.compile(r"(?!)")  # `allow: []` admits nothing
        deny = tuple(rule.deny)
        return cls(level, provider, allow, deny, allow_re,
                   tuple((p, re.compile(translate(p), re.IGNORECASE)) for p in deny),
                   tuple((p, re.compile(translate(p), re.IGNORECASE)) for p in rule.on_approval),
                   rule.members_may_request)

    def refuses(self, model: str) -> str | None:
        """The rule's name when it refuses `model`, else None."""
        for pattern, compiled in self._deny_res:
            if compiled.match(model):
                return f"{self.level} {self.provider} deny {pattern}"
        if self._allow_re is not None and not self._allow_re.match(model):
            return f"{self.level} {self.provider} allow"
        return None

    def on_approval_pattern(self, model: str) -> str | None:
        """The `on_approval` pattern `model` falls under, if any."""
        return next((pattern for pattern, compiled in self.on_approval if compiled.match(model)), None)

    def as_dict(self, approved: Callable[[LevelRule, str], bool] | None = None) -> dict:
        """The rule as the guard reads it: an `on_approval` pattern not approved for the caller (`approved`) is a
        `deny` there, so a guard of any release refuses it, and listed in `on_approval` too; an approved one is left
        out."""
        waiting = [p for p, _ in self.on_approval if approved is None or not approved(self, p)]
        found = {"level": self.level, "provider": self.provider,
                 "allow": list(self.allow) if self.allow is not None else None, "deny": [*self.deny, *waiting]}
        if waiting:
            # Which of the `deny` patterns are waiting for an approval: the guard names its refusal as the
            # processor names the violation (`<level> <provider> on approval <pattern>`); earlier guards ignore it.
            found["on_approval"] = waiting
        return found


def _rules(level: str, models: dict[str, ModelRule]) -> tuple[LevelRule, ...]:
    return tuple(LevelRule.of(level, provider, rule) for provider, rule in models.items())


class ModelPolicy:
    """Immutable lookup of the rules of one config. Replace the object to reload."""

    def __init__(self, config: CostlineConfig) -> None:
        self._org: dict[str, tuple[LevelRule, ...]] = {}
        self._team: dict[tuple[str, str], tuple[LevelRule, ...]] = {}
        self._user: dict[tuple[str, str, str], tuple[LevelRule, ...]] = {}
        self._key: dict[tuple[str, str, str, str], tuple[LevelRule, ...]] = {}
        self._project: dict[str, tuple[LevelRule, ...]] = {}
        for org in config.orgs:
            self._org[org.name] = _rules(f"org {org.name}", org.models)
            for team in org.teams:
                self._team[(org.name, team.name)] = _rules(f"team {org.name}/{team.name}", team.models)
                for user in team.users:
                    path = (org.name, team.name, user.name)
                    self._user[path] = _rules(f"user {'/'.join(path)}", user.models)
                    for key in user.keys:
                        self._key[(*path, key.name)] = _rules(f"key {'/'.join((*path, key.name))}", key.models)
        for project in config.projects:
            self._project[project.name] = _rules(f"project {project.name}", project.models)
        self.empty = not any(rules for table in (self._org, self._team, self._user, self._key, self._project)
                             for rules in table.values())
        self._approvals = [(tuple(a.scope.split("/")), a.provider, a.model,
                            a.expires if a.expires.tzinfo else a.expires.replace(tzinfo=timezone.utc))
                           for a in config.approvals]

    def approved(self, rule: LevelRule, pattern: str, owner: tuple[str, ...], at: datetime) -> bool:
        """An approval of `rule`'s `on_approval` `pattern` covers `owner` (org, team, user) at `at`."""
        return any(scope == owner[: len(scope)] and provider == rule.provider and model == pattern and at < expires
                   for scope, provider, model, expires in self._approvals)

    def chain(self, org: str, team: str, user: str = "", key: str = "", project: str = "") -> list[LevelRule]:
        """Every rule that applies to an owner, from the org down, then the project's."""
        found: list[LevelRule] = [*self._org.get(org, ()), *self._team.get((org, team), ())]
        if user:
            found.extend(self._user.get((org, team, user), ()))
            if key:
                found.extend(self._key.get((org, team, user, key), ()))
        if project:
            found.extend(self._project.get(project, ()))
        return found

    def check(self, provider: str, model: str, chain: Iterable[LevelRule], *, owner: tuple[str, ...] = (),
              at: datetime | None = None) -> str | None:
        """The first rule of `chain` that refuses `provider`/`model`, or None when every level admits it. A model
        `on_approval` is refused (`<level> <provider> on approval <pattern>`) unless an approval covers `owner` at
        `at`."""
        return self.judge(provider, model, chain, owner=owner, at=at)[0]

    def judge(self, provider: str, model: str, chain: Iterable[LevelRule], *, owner: tuple[str, ...] = (),
              at: datetime | None = None) -> tuple[str | None, str | None]:
        """(the refusing rule or None, the approval that let the call through or None)."""
        approved_by = None
        for rule in chain:
            if rule.provider in (provider, ANY_PROVIDER):
                refused = rule.refuses(model)
                if refused is not None:
                    return refused, None
                pattern = rule.on_approval_pattern(model)
                if pattern is not None:
                    if at is None or not self.approved(rule, pattern, owner, at):
                        return f"{rule.level} {rule.provider} on approval {pattern}", None
                    approved_by = f"{rule.level} {rule.provider} on approval {pattern}"
        return None, approved_by
