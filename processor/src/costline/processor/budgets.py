"""Budget state, computed from the ledger so it is exact and survives restarts.

Budgets exist for orgs, teams, users, keys and projects, monthly and daily (calendar periods in the configured
time zone). For every key and user, the *effective* remaining budget is the minimum over every budget above it —
its own, its user's, its team's and its org's: the most restrictive one wins.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from costline.processor.clock import Clock, system_clock
from costline.processor.config import CostlineConfig
from costline.processor.ledger import Ledger, LedgerUnavailable
from costline.processor.model import BUDGET_SCOPES
from costline.processor.units import period_starts, pico_to_usd

log = logging.getLogger("costline.processor.budgets")

SCOPE_LABELS = BUDGET_SCOPES
"""Scope -> the owner columns naming one budget's owner (`model.BUDGET_SCOPES`)."""


@dataclass(frozen=True, slots=True)
class BudgetState:
    scope: str
    period: str
    owner: tuple[tuple[str, str], ...]
    """The owner labels of the scope, e.g. (("org", "acme"), ("team", "search"))."""
    limit_usd: Decimal
    spent_usd: Decimal

    @property
    def remaining_usd(self) -> Decimal:
        return self.limit_usd - self.spent_usd

    @property
    def owner_name(self) -> str:
        return "/".join(v for _, v in self.owner)

    def as_dict(self) -> dict:
        return {"scope": self.scope, "period": self.period, "owner": self.owner_name, **dict(self.owner),
                "limit_usd": self.limit_usd, "spent_usd": self.spent_usd, "remaining_usd": self.remaining_usd,
                "used_ratio": float(self.spent_usd / self.limit_usd) if self.limit_usd else None}


@dataclass(frozen=True, slots=True)
class Effective:
    scope: str  # key or user
    owner: tuple[tuple[str, str], ...]
    remaining_usd: Decimal
    bound_by: str
    """`<scope> <owner> <period>` of the budget that binds."""

    def as_dict(self) -> dict:
        return {"scope": self.scope, **dict(self.owner), "remaining_usd": self.remaining_usd,
                "bound_by": self.bound_by}


@dataclass(frozen=True, slots=True)
class BudgetSnapshot:
    states: tuple[BudgetState, ...]
    effective: tuple[Effective, ...]

    def as_dict(self) -> dict:
        return {"budgets": [s.as_dict() for s in self.states], "effective": [e.as_dict() for e in self.effective]}


class Budgets:
    """Cached budget snapshot: recomputed from the ledger at most every `ttl` seconds or after `invalidate()`."""

    def __init__(self, config: CostlineConfig, ledger: Ledger, clock: Clock = system_clock, ttl: float = 5.0) -> None:
        self._config = config
        self._ledger = ledger
        self._clock = clock
        self._ttl = ttl
        self._lock = threading.Lock()
        self._cached: BudgetSnapshot | None = None
        self._last_good = BudgetSnapshot((), ())
        self._computed_at = 0.0

    def reload(self, config: CostlineConfig) -> None:
        with self._lock:
            self._config = config
            self._cached = None

    def invalidate(self) -> None:
        self._cached = None

    def snapshot(self) -> BudgetSnapshot:
        """The current budgets. While the ledger cannot be read, the last good snapshot (or none): a scrape must
        still serve the in-memory series, and budgets only move when the ledger takes writes anyway."""
        with self._lock:
            if self._cached is None or time.monotonic() - self._computed_at > self._ttl:
                try:
                    self._cached = self._compute()
                    self._last_good = self._cached
                except LedgerUnavailable as err:
                    log.warning("budgets not refreshed: %s", err)
                    return self._last_good
                self._computed_at = time.monotonic()
            return self._cached

    def _compute(self) -> BudgetSnapshot:
        config = self._config
        starts = period_starts(self._clock(), config.zone)
        names: dict[tuple[str, ...], set[str]] = defaultdict(set)
        for org in config.orgs:
            if org.budget:
                names[SCOPE_LABELS["org"]].add(org.name)
            for team in org.teams:
                if team.budget:
                    names[SCOPE_LABELS["team"]].add(team.name)
                for user in team.users:
                    if user.budget:
                        names[SCOPE_LABELS["user"]].add(user.name)
                    names[SCOPE_LABELS["key"]].update(key.name for key in user.keys if key.budget)
        names[SCOPE_LABELS["project"]].update(p.name for p in config.projects if p.budget)
        scopes = {columns: found for columns, found in names.items() if found}
        spent: dict[str, dict[tuple[str, tuple], Decimal]] = {}
        for period, since in starts.items():
            by_scope = self._ledger.reader.spend_since(since, scopes) if scopes else {}
            spent[period] = {(scope, values): pico_to_usd(cost)
                             for scope, columns in SCOPE_LABELS.items()
                             for values, cost in by_scope.get(columns, {}).items()}

        states: list[BudgetState] = []

        def add(scope: str, values: tuple[str, ...], budget) -> None:
            if budget is None:
                return
            for period, limit in budget.periods():
                states.append(BudgetState(scope, period, tuple(zip(SCOPE_LABELS[scope], values, strict=True)), limit,
                                          spent[period].get((scope, values), Decimal(0))))

        for org in config.orgs:
            add("org", (org.name,), org.budget)
            for team in org.teams:
                add("team", (org.name, team.name), team.budget)
                for user in team.users:
                    add("user", (org.name, team.name, user.name), user.budget)
                    for key in user.keys:
                        add("key", (org.name, team.name, user.name, key.name), key.budget)
        for project in config.projects:
            add("project", (project.name,), project.budget)

        by_owner: dict[tuple[str, tuple], list[BudgetState]] = defaultdict(list)
        for s in states:
            by_owner[(s.scope, tuple(v for _, v in s.owner))].append(s)

        effective: list[Effective] = []
        for org in config.orgs:
            chain_org = by_owner.get(("org", (org.name,)), [])
            for team in org.teams:
                chain_team = chain_org + by_owner.get(("team", (org.name, team.name)), [])
                for user in team.users:
                    chain_user = chain_team + by_owner.get(("user", (org.name, team.name, user.name)), [])
                    _effective(effective, "user", (("org", org.name), ("team", team.name), ("user", user.name)),
                               chain_user)
                    for key in user.keys:
                        chain_key = chain_user + by_owner.get(("key", (org.name, team.name, user.name, key.name)), [])
                        _effective(effective, "key", (("org", org.name), ("team", team.name), ("user", user.name),
                                                      ("key", key.name)), chain_key)
        return BudgetSnapshot(tuple(states), tuple(effective))


def _effective(out: list[Effective], scope: str, owner: tuple, chain: list[BudgetState]) -> None:
    if not chain:
        return
    binding = min(chain, key=lambda s: s.remaining_usd)
    out.append(Effective(scope, owner, binding.remaining_usd,
                         f"{binding.scope} {binding.owner_name} {binding.period}"))
