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

The processor checks every billed call (`PolicyViolations`, whether or not the app runs the guard); the guard in
the application gets the caller's rules from `GET /api/v1/policy` and applies the same test before a request
leaves the process.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fnmatch import translate

from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from costline.processor.aggregate import OVERFLOW, CardinalityLimiter
from costline.processor.config import ANY_PROVIDER, CostlineConfig, MetricsConfig, ModelRule

MAX_VIOLATION_SERIES = 10_000
"""Distinct series before every further one counts as (`__overflow__`, `__overflow__`, `__overflow__`, rule): a
backstop behind the per-label limits, whose product can still be large."""


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

    @classmethod
    def of(cls, level: str, provider: str, rule: ModelRule) -> LevelRule:
        allow = tuple(rule.allow) if rule.allow is not None else None
        allow_re = re.compile("|".join(translate(p) for p in allow), re.IGNORECASE) if allow else None
        if allow == ():
            allow_re = re.compile(r"(?!)")  # `allow: []` admits nothing
        deny = tuple(rule.deny)
        return cls(level, provider, allow, deny, allow_re,
                   tuple((p, re.compile(translate(p), re.IGNORECASE)) for p in deny))

    def refuses(self, model: str) -> str | None:
        """The rule's name when it refuses `model`, else None."""
        for pattern, compiled in self._deny_res:
            if compiled.match(model):
                return f"{self.level} {self.provider} deny {pattern}"
        if self._allow_re is not None and not self._allow_re.match(model):
            return f"{self.level} {self.provider} allow"
        return None

    def as_dict(self) -> dict:
        return {"level": self.level, "provider": self.provider,
                "allow": list(self.allow) if self.allow is not None else None, "deny": list(self.deny)}


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

    def check(self, provider: str, model: str, chain: Iterable[LevelRule]) -> str | None:
        """The first rule of `chain` that refuses `provider`/`model`, or None when every level admits it."""
        for rule in chain:
            if rule.provider in (provider, ANY_PROVIDER):
                refused = rule.refuses(model)
                if refused is not None:
                    return refused
        return None


class PolicyViolations(Collector):
    """`costline_policy_violations_total{org, team, model, rule}`: billed calls to a model their owner may not use.
    Survives reloads (it belongs to the pipeline, not to one config).

    Org, team and model come from spans, so each folds to `__overflow__` past its `metrics.cardinality_limit(s)`,
    as on the other per-owner series: an app minting a team per call must not mint a series per call. The rule
    names a configured rule, so the config bounds it."""

    FOLDED = ("org", "team", "model")

    def __init__(self, metrics: MetricsConfig | None = None) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str, str, str]] = Counter()
        metrics = metrics or MetricsConfig()
        self._limiter = CardinalityLimiter(self.FOLDED, metrics.cardinality_limit, metrics.cardinality_limits)

    def configure(self, metrics: MetricsConfig) -> None:
        """New limits (a reload); values already admitted keep their series."""
        with self._lock:
            self._limiter.configure(metrics.cardinality_limit, metrics.cardinality_limits)

    def count(self, policy: ModelPolicy, entries: Iterable) -> None:
        """Count the entries (billed ledger entries: call and resolved owner) whose model their owner may not use.
        Never raises into the pipeline: the calls are billed already."""
        if policy.empty:
            return
        found: list[tuple[str, str, str, str]] = []
        for entry in entries:
            call, owner = entry.call, entry.owner
            model = call.request_model or call.response_model
            if not model:
                continue
            rule = policy.check(call.provider, model,
                                policy.chain(owner.org, owner.team, owner.user, owner.key, owner.project))
            if rule is not None:
                found.append((owner.org, owner.team, model, rule))
        if not found:
            return
        limiter = self._limiter
        with self._lock:
            for org, team, model, rule in found:
                labels = (*(value if limiter.admit(name, value) is not limiter.overflow_texts[name] else OVERFLOW
                            for name, value in zip(self.FOLDED, (org, team, model), strict=True)), rule)
                if labels not in self._counts and len(self._counts) >= MAX_VIOLATION_SERIES:
                    labels = (OVERFLOW, OVERFLOW, OVERFLOW, rule)
                self._counts[labels] += 1

    def describe(self) -> Iterator:
        return iter(())

    def collect(self) -> Iterator:
        family = CounterMetricFamily(
            "costline_policy_violations",
            "LLM calls to a model their owner's `models:` rules do not allow, by the rule that refuses it "
            "(counted for every app, guarded or not).",
            labels=["org", "team", "model", "rule"])
        with self._lock:
            items = sorted(self._counts.items())
        for labels, count in items:
            family.add_metric(list(labels), count)
        yield family
