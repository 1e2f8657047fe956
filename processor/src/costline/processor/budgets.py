"""Budget state, computed from the ledger so it is exact and survives restarts.

Budgets exist for orgs, teams, users, keys and projects, monthly and daily (calendar periods in the configured
time zone). For every key and user, the *effective* remaining budget is the minimum over every budget above it —
its own, its user's, its team's and its org's: the most restrictive one wins.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from costline.processor.clock import Clock, system_clock
from costline.processor.config import CostlineConfig
from costline.processor.ledger import Entry, Ledger, LedgerUnavailable, from_pico, period_starts

log = logging.getLogger("costline.processor.budgets")

SCOPE_LABELS = {
    "org": ("org",),
    "team": ("org", "team"),
    "user": ("org", "team", "user"),
    "key": ("org", "team", "user", "key"),
    "project": ("project",),
}


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
                "used_ratio": (self.spent_usd / self.limit_usd) if self.limit_usd else None}


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
    """Budget state kept current without reading the ledger when it is read (a scrape, the API).

    Spend per budgeted owner is read from the ledger when the object is made (startup, reload) and, after a commit,
    again when the last read is older than `ttl` seconds (other processors sharing the ledger bill too) or a period
    has rolled over; after the other commits, the committed entries' costs are added in memory, so what is read
    right after a commit includes it. A read (`snapshot`) only looks at the injected clock: when a period rolls over,
    it moves to the spend read for the next period (the entries dated in it that were already billed).
    """

    def __init__(self, config: CostlineConfig, ledger: Ledger, clock: Clock = system_clock, ttl: float = 5.0) -> None:
        self._config = config
        self._ledger = ledger
        self._clock = clock
        self._ttl = ttl
        self._lock = threading.Lock()
        scopes: dict[tuple[str, ...], set[str]] = defaultdict(set)
        for scope, values, _ in _budgeted(config):
            scopes[SCOPE_LABELS[scope]].add(values[-1])
        self._scopes = {columns: names for columns, names in scopes.items() if names}
        # Per period: (start, spend per (scope, owner values)) for the current period and the next one, pico-USD.
        self._current: dict[str, tuple[datetime, dict[tuple[str, tuple], int]]] = {}
        self._next: dict[str, tuple[datetime, dict[tuple[str, tuple], int]]] = {}
        self._read_at = -math.inf
        self._snapshot = BudgetSnapshot((), ())
        self.refresh()

    def refresh(self) -> None:
        """Read the spend from the ledger. While the ledger cannot be read, the last good state stays (a scrape
        must still serve the in-memory series, and budgets only move when the ledger takes writes anyway)."""
        starts = period_starts(self._clock(), self._config.zone)
        try:
            current = {period: (start, self._read(start)) for period, start in starts.items()}
            following = {period: (start, self._read(start)) for period, start in _next_starts(starts, self._config)}
        except LedgerUnavailable as err:
            log.warning("budgets not refreshed: %s", err)
            return
        with self._lock:
            self._current, self._next, self._read_at = current, following, time.monotonic()
            self._snapshot = self._build()

    def committed(self, entries: Iterable[Entry]) -> None:
        """After a ledger commit of `entries` (those billed): the snapshot includes them."""
        rolled = period_starts(self._clock(), self._config.zone) != {p: s for p, (s, _) in self._current.items()}
        if rolled or time.monotonic() - self._read_at > self._ttl:
            self.refresh()
            return
        with self._lock:
            for e in entries:
                if e.cost_pico:
                    hour = e.call.start_time_unix_nano // 3_600_000_000_000 * 3600
                    for periods in (self._current, self._next):
                        for start, spent in periods.values():
                            if hour >= _first_hour(start):  # the ledger's rule: whole hours from the start's
                                self._add(spent, e)
            self._snapshot = self._build()

    def snapshot(self) -> BudgetSnapshot:
        """The current budgets, without reading the ledger."""
        starts = period_starts(self._clock(), self._config.zone)
        with self._lock:
            if starts != {period: start for period, (start, _) in self._current.items()} and self._current:
                self._roll_over(starts)
            return self._snapshot

    def _roll_over(self, starts: dict[str, datetime]) -> None:
        """A period ended since the last read: its successor's spend is what was read (and added) for it; a period
        further on starts from nothing, as nothing billed so far was dated in it but spans dated ahead of this
        clock by more than a period (the next commit reads the ledger again and counts them)."""
        for period, start in starts.items():
            if self._current[period][0] == start:
                continue
            following = self._next.get(period)
            self._current[period] = following if following and following[0] == start else (start, {})
            self._next[period] = (_next_start(start, period, self._config), {})
        self._snapshot = self._build()

    def _read(self, since: datetime) -> dict[tuple[str, tuple], int]:
        by_scope = self._ledger.spend_since(since, self._scopes) if self._scopes else {}
        return {(scope, values): cost for scope, columns in SCOPE_LABELS.items()
                for values, cost in by_scope.get(columns, {}).items()}

    def _add(self, spent: dict[tuple[str, tuple], int], e: Entry) -> None:
        for scope, columns in SCOPE_LABELS.items():
            names = self._scopes.get(columns)
            values = tuple(getattr(e.owner, c) for c in columns)
            if names and values[-1] in names:
                spent[(scope, values)] = spent.get((scope, values), 0) + e.cost_pico

    def _build(self) -> BudgetSnapshot:
        config = self._config
        spent = {period: periods for period, (_, periods) in self._current.items()}
        states: list[BudgetState] = []
        for scope, values, budget in _budgeted(config):
            for period, limit in budget.periods():
                states.append(BudgetState(scope, period, tuple(zip(SCOPE_LABELS[scope], values, strict=True)), limit,
                                          from_pico(spent[period].get((scope, values), 0))))

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


def _budgeted(config: CostlineConfig) -> Iterator[tuple[str, tuple[str, ...], Any]]:
    """(scope, owner values, budget) of every owner with a budget, in the order the snapshot lists them."""
    for org in config.orgs:
        if org.budget:
            yield "org", (org.name,), org.budget
        for team in org.teams:
            if team.budget:
                yield "team", (org.name, team.name), team.budget
            for user in team.users:
                if user.budget:
                    yield "user", (org.name, team.name, user.name), user.budget
                for key in user.keys:
                    if key.budget:
                        yield "key", (org.name, team.name, user.name, key.name), key.budget
    for project in config.projects:
        if project.budget:
            yield "project", (project.name,), project.budget


def _first_hour(start: datetime) -> int:
    """The first ledger hour (unix seconds) `spend_since(start)` counts: the one holding `start`."""
    seconds = int(start.timestamp())
    return seconds - seconds % 3600


def _next_start(start: datetime, period: str, config: CostlineConfig) -> datetime:
    """The start of the period after the one starting at `start` (past any DST change: a day later plus margin)."""
    ahead = start + (timedelta(days=32) if period == "monthly" else timedelta(hours=26))
    return period_starts(ahead, config.zone)[period]


def _next_starts(starts: dict[str, datetime], config: CostlineConfig) -> Iterator[tuple[str, datetime]]:
    for period, start in starts.items():
        yield period, _next_start(start, period, config)


def _effective(out: list[Effective], scope: str, owner: tuple, chain: list[BudgetState]) -> None:
    if not chain:
        return
    binding = min(chain, key=lambda s: s.remaining_usd)
    out.append(Effective(scope, owner, binding.remaining_usd,
                         f"{binding.scope} {binding.owner_name} {binding.period}"))
