"""Budget state, computed from the ledger so it is exact and survives restarts.

Budgets exist for orgs, teams, users, keys and projects, monthly and daily (calendar periods in the configured
time zone). For every key and user, the *effective* remaining budget is the minimum over every budget above it —
its own, its user's, its team's and its org's: the most restrictive one wins.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from costline.processor.clock import Clock
from costline.processor.config.core import CostlineConfig
from costline.processor.ledger import Ledger, LedgerUnavailable
from costline.processor.model import BUDGET_SCOPES
from costline.processor.refresher import Refresher
from costline.processor.units import period_starts, pico_to_usd

log = logging.getLogger("costline.processor.reports.budgets")



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
    """Budget state from the ledger, read off the scrape path.

    The ledger is read by `refresh()`, which runs on a `Refresher` of this object's own: woken after each commit
    (`committed`) and when the injected clock shows a new period, and every `ttl` seconds anyway (other processors
    sharing the ledger bill too); at most once per `min_interval` seconds, each read covering every commit made
    before it started. `snapshot()`, what a scrape reads, never touches the ledger; `current()`, what the API
    serves, first waits for a read that covers every commit made so far.
    """

    def __init__(self, config: CostlineConfig, ledger: Ledger, clock: Clock, ttl: float = 5.0,
                 min_interval: float = 1.0) -> None:
        self._config = config
        self._ledger = ledger
        self._clock = clock
        scopes: dict[tuple[str, ...], set[str]] = defaultdict(set)
        for scope, values, _ in _budgeted(config):
            scopes[BUDGET_SCOPES[scope]].add(values[-1])
        self._scopes = {columns: names for columns, names in scopes.items() if names}
        self._read_lock = threading.Lock()  # one ledger read at a time, so a later read never loses to an earlier
        self._commits_lock = threading.Lock()
        self._commits = 0  # commits announced so far
        self._covered = 0  # commits the snapshot's read covers (it started after them)
        self._starts: dict[str, datetime] = {}
        self._snapshot = BudgetSnapshot((), ())
        self.refresh()
        # The refresher holds this object weakly and is stopped when it goes: a reload makes a new one and drops
        # this one, and its thread must not keep it (and itself) alive.
        self._refresher = Refresher(_weakly(self.refresh), "costline-budgets", interval_s=ttl,
                                    min_gap_s=min_interval, first_read=False).start()
        weakref.finalize(self, self._refresher.stop, 0.0)

    def committed(self) -> None:
        """After a ledger commit: the next read (soon, in the refresher thread) includes it. Never blocks."""
        with self._commits_lock:  # receivers' threads commit concurrently
            self._commits += 1
        self._refresher.changed()

    def snapshot(self) -> BudgetSnapshot:
        """The budgets as last read, without reading the ledger (a scrape). When the clock shows a new period,
        the refresher is woken and the next snapshot has it."""
        if self._starts and period_starts(self._clock(), self._config.zone) != self._starts:
            self._refresher.changed()
        return self._snapshot

    def current(self) -> BudgetSnapshot:
        """The budgets including every commit announced so far and the current period (reads the ledger if the
        last read does not)."""
        if self._covered < self._commits or period_starts(self._clock(), self._config.zone) != self._starts:
            self.refresh()
        return self._snapshot

    def refresh(self) -> None:
        """Read the spend from the ledger. While the ledger cannot be read, the last good state stays (a scrape
        must still serve the in-memory series, and budgets only move when the ledger takes writes anyway)."""
        with self._read_lock:
            commits = self._commits  # the read below starts after these commits: it includes them
            starts = period_starts(self._clock(), self._config.zone)
            ends = _period_ends(starts, self._config.zone)
            try:
                spent = {period: self._read(start, ends[period]) for period, start in starts.items()}
            except LedgerUnavailable as err:
                log.warning("budgets not refreshed: %s", err)
                return
            self._snapshot, self._starts, self._covered = self._build(spent), starts, commits

    def _read(self, since: datetime, until: datetime) -> dict[tuple[str, tuple], int]:
        """The spend of the period from `since` to `until`: bounded above, so that a call dated later (clock skew
        within `limits.max_span_future_seconds`) counts in its own period, not this one."""
        by_scope = self._ledger.reader.spend_since(since, self._scopes, until) if self._scopes else {}
        return {(scope, values): cost for scope, columns in BUDGET_SCOPES.items()
                for values, cost in by_scope.get(columns, {}).items()}

    def _build(self, spent: dict[str, dict[tuple[str, tuple], int]]) -> BudgetSnapshot:
        config = self._config
        states: list[BudgetState] = []
        for scope, values, budget in _budgeted(config):
            for period, limit in budget.periods():
                states.append(BudgetState(scope, period, tuple(zip(BUDGET_SCOPES[scope], values, strict=True)), limit,
                                          pico_to_usd(spent[period].get((scope, values), 0))))

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


def _weakly(method: Callable[[], None]) -> Callable[[], None]:
    """`method`, called only while its object lives (the refresher's thread must not keep it alive)."""
    ref = weakref.WeakMethod(method)

    def call() -> None:
        bound = ref()
        if bound is not None:
            bound()

    return call


def _period_ends(starts: dict[str, datetime], tz: ZoneInfo) -> dict[str, datetime]:
    """The end of each current period: the start of the next, found from a moment surely inside it (a day lasts 23
    to 25 hours, a month 28 to 31 days; the addition is in local wall-clock time)."""
    return {"monthly": period_starts(starts["monthly"] + timedelta(days=32), tz)["monthly"],
            "daily": period_starts(starts["daily"] + timedelta(hours=26), tz)["daily"]}


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


def _effective(out: list[Effective], scope: str, owner: tuple, chain: list[BudgetState]) -> None:
    if not chain:
        return
    binding = min(chain, key=lambda s: s.remaining_usd)
    out.append(Effective(scope, owner, binding.remaining_usd,
                         f"{binding.scope} {binding.owner_name} {binding.period}"))
