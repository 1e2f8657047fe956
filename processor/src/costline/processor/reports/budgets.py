"""Budget state, computed from the ledger so it is exact and survives restarts, and the one computation of what
remains for an owner.

Budgets exist for every scope of `model.BUDGET_SCOPES`: the org hierarchy (org, team, user, key, under `orgs:`),
projects (under `projects:` or in `budgets:`), and customers, features, environments and models (in `budgets:`).
Each is an amount per period — daily, ISO-weekly, monthly, quarterly, yearly (calendar periods in the configured
time zone) or a rolling window of N days (the last N×24 ledger hours) — in USD or in tokens, hard (the guard blocks
once it is spent) or soft (reported and alerted on only).

Tokens are `BUDGET_TOKEN_UNITS`: every billable unit counted per token that is not part of another (uncached input,
output, cache reads, cache writes; reasoning is part of output, audio/image/video of input or output, one-hour cache
writes of cache writes, so each token counts once). Unpriced calls' tokens count: a token budget holds without a
price.

`applicable` is the one computation of which budgets bind an owner, and `effective_of` of what remains: the minimum
over the hard budgets that bind (per unit; the most restrictive wins). The budgets endpoint's `effective` rows, the
guard's `GET /api/v1/policy` and the demo's report all read them.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections import defaultdict
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from costline.processor.clock import Clock
from costline.processor.config.core import Budget, CostlineConfig
from costline.processor.ledger import Ledger, LedgerUnavailable
from costline.processor.model import BILLABLE_UNITS, BUDGET_CALL_SCOPES, BUDGET_SCOPES
from costline.processor.refresher import Refresher
from costline.processor.units import period_window, pico_to_usd, rolling_days

log = logging.getLogger("costline.processor.reports.budgets")

BUDGET_TOKEN_UNITS = tuple(u for u in BILLABLE_UNITS if u.per == "token" and u.part_of is None)
"""The billable units a token budget counts: those counted per token and not part of another unit."""
_SUMS = ("cost_pico_usd", *(u.slot.column for u in BUDGET_TOKEN_UNITS))
"""The ledger counters a budget read sums: the cost, then the token units."""


@dataclass(frozen=True, slots=True)
class BudgetState:
    scope: str
    period: str
    owner: tuple[tuple[str, str], ...]
    """The owner labels of the scope, e.g. (("org", "acme"), ("team", "search"))."""
    limit: Decimal | int
    spent: Decimal | int
    unit: str = "usd"
    """`usd` (limit and spent are exact `Decimal` USD) or `tokens` (integers)."""
    mode: str = "hard"

    @property
    def remaining(self) -> Decimal | int:
        return self.limit - self.spent

    @property
    def limit_usd(self) -> Decimal:
        return self._usd(self.limit)

    @property
    def spent_usd(self) -> Decimal:
        return self._usd(self.spent)

    @property
    def remaining_usd(self) -> Decimal:
        return self._usd(self.remaining)

    def _usd(self, value: Decimal | int) -> Decimal:
        if self.unit != "usd":
            raise ValueError(f"{self.name} is a budget in {self.unit}")
        return value  # type: ignore[return-value]

    @property
    def owner_name(self) -> str:
        return "/".join(v for _, v in self.owner)

    @property
    def name(self) -> str:
        """`team acme/search weekly`, with ` tokens` for a token budget and ` soft` for a soft one: unique per
        budget, the guard's key for its local spend and the `bound_by` of what remains."""
        return " ".join((self.scope, self.owner_name, self.period, *(("tokens",) if self.unit == "tokens" else ()),
                         *(("soft",) if self.mode == "soft" else ())))

    def binds(self, owner: Mapping[str, str], models: Collection[str] = ()) -> bool:
        """Whether a call of `owner` counts against this budget; a model budget binds the calls of the `models`
        given (a caller's owner has no model: its calls do)."""
        return all(models and value in models if column in BUDGET_CALL_SCOPES else owner.get(column) == value
                   for column, value in self.owner)

    def as_dict(self) -> dict:
        used = float(self.spent / self.limit) if self.limit else None
        return {"scope": self.scope, "period": self.period, "owner": self.owner_name, **dict(self.owner),
                "unit": self.unit, "mode": self.mode, f"limit_{self.unit}": self.limit,
                f"spent_{self.unit}": self.spent, f"remaining_{self.unit}": self.remaining, "used_ratio": used}


@dataclass(frozen=True, slots=True)
class Effective:
    scope: str  # key or user
    owner: tuple[tuple[str, str], ...]
    remaining_usd: Decimal | None
    bound_by: str | None
    """The `BudgetState.name` of the USD budget that binds (None: no hard USD budget applies)."""
    remaining_tokens: int | None = None
    tokens_bound_by: str | None = None

    def as_dict(self) -> dict:
        return {"scope": self.scope, **dict(self.owner), "remaining_usd": self.remaining_usd,
                "bound_by": self.bound_by, "remaining_tokens": self.remaining_tokens,
                "tokens_bound_by": self.tokens_bound_by}


def applicable(states: Collection[BudgetState], owner: Mapping[str, str], models: Collection[str] = ()
               ) -> list[BudgetState]:
    """Every budget a call of `owner` (to one of `models`) counts against, hard and soft, tightest first (least
    remaining; USD before tokens)."""
    return sorted((s for s in states if s.binds(owner, models)), key=lambda s: (s.unit != "usd", s.remaining))


def effective_of(scope: str, owner: Mapping[str, str], states: Collection[BudgetState]) -> Effective | None:
    """What remains for `owner`: per unit, the least remaining over the hard budgets that bind it (the most
    restrictive wins; soft budgets never bind). None when no hard budget applies."""
    binding = [s for s in applicable(states, owner) if s.mode == "hard"]
    usd = next((s for s in binding if s.unit == "usd"), None)
    tokens = next((s for s in binding if s.unit == "tokens"), None)
    if usd is None and tokens is None:
        return None
    return Effective(scope, tuple((k, v) for k, v in owner.items() if v),
                     usd.remaining if usd else None, usd.name if usd else None,
                     tokens.remaining if tokens else None, tokens.name if tokens else None)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class BudgetSnapshot:
    states: tuple[BudgetState, ...]
    effective: tuple[Effective, ...]
    elapsed: tuple[tuple[str, float, float], ...] = ()
    """(period, seconds elapsed when read, its length in seconds) of each calendar period some budget is set for, in
    the configured zone (PromQL's calendar is UTC): the forecast divides by the elapsed share. A rolling window has
    no end to forecast and is not listed."""

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
        periods: set[str] = set()
        for scope, values, budget in _budgeted(config):
            scopes[BUDGET_SCOPES[scope]].add(values[-1])
            periods.update(period for period, *_ in budget.amounts())
        self._scopes = {columns: names for columns, names in scopes.items() if names}
        self._periods = sorted(periods)
        """The periods some budget is set for: only those are read."""
        self._read_lock = threading.Lock()  # one ledger read at a time, so a later read never loses to an earlier
        self._commits_lock = threading.Lock()
        self._commits = 0  # commits announced so far
        self._covered = 0  # commits the snapshot's read covers (it started after them)
        self._starts: dict[str, tuple[datetime, datetime]] = {}
        """The windows of the periods the snapshot was read for: another window now (a new day, week, hour of a
        rolling window) asks for a read."""
        self._snapshot = BudgetSnapshot((), ())
        self.refresh()
        # The refresher holds this object weakly and is stopped when it goes: a reload makes a new one and drops
        # this one, and its thread must not keep it (and itself) alive.
        self._refresher = Refresher(_weakly(self.refresh), "costline-budgets", interval_s=ttl,
                                    min_gap_s=min_interval, first_read=False).start()
        weakref.finalize(self, self._refresher.stop, 0.0)

    def stop(self, timeout_s: float = 1.0) -> None:
        """Stop reading the ledger (a stopped service: its ledger is about to close, and may be dropped)."""
        self._refresher.stop(timeout_s)

    def committed(self) -> None:
        """After a ledger commit: the next read (soon, in the refresher thread) includes it. Never blocks."""
        with self._commits_lock:  # receivers' threads commit concurrently
            self._commits += 1
        self._refresher.changed()

    def snapshot(self) -> BudgetSnapshot:
        """The budgets as last read, without reading the ledger (a scrape). When the clock shows a new period,
        the refresher is woken and the next snapshot has it."""
        if self._starts and self._windows() != self._starts:
            self._refresher.changed()
        return self._snapshot

    def current(self) -> BudgetSnapshot:
        """The budgets including every commit announced so far and the current period (reads the ledger if the
        last read does not)."""
        if self._covered < self._commits or self._windows() != self._starts:
            self.refresh()
        return self._snapshot

    def refresh(self) -> None:
        """Read the spend from the ledger. While the ledger cannot be read, the last good state stays (a scrape
        must still serve the in-memory series, and budgets only move when the ledger takes writes anyway)."""
        with self._read_lock:
            commits = self._commits  # the read below starts after these commits: it includes them
            starts = self._windows()
            try:
                spent = {period: self._read(start, end) for period, (start, end) in starts.items()}
            except LedgerUnavailable as err:
                log.warning("budgets not refreshed: %s", err)
                return
            self._snapshot, self._starts, self._covered = self._build(spent, starts), starts, commits

    def _windows(self) -> dict[str, tuple[datetime, datetime]]:
        now, zone = self._clock(), self._config.zone
        return {period: period_window(period, now, zone) for period in self._periods}

    def _read(self, since: datetime, until: datetime) -> dict[tuple[str, tuple], tuple[int, int]]:
        """(cost in pico-dollars, tokens) of the period from `since` to `until`: bounded above, so that a call dated
        later (clock skew within `limits.max_span_future_seconds`) counts in its own period, not this one."""
        by_scope = self._ledger.reader.sums_since(since, self._scopes, until, _SUMS) if self._scopes else {}
        return {(scope, values): (sums[0], sum(sums[1:])) for scope, columns in BUDGET_SCOPES.items()
                for values, sums in by_scope.get(columns, {}).items()}

    def _build(self, spent: dict[str, dict[tuple[str, tuple], tuple[int, int]]],
               windows: dict[str, tuple[datetime, datetime]]) -> BudgetSnapshot:
        config = self._config
        states: list[BudgetState] = []
        for scope, values, budget in _budgeted(config):
            owner = tuple(zip(BUDGET_SCOPES[scope], values, strict=True))
            for period, unit, limit, _ in budget.amounts():
                cost, tokens = spent[period].get((scope, values), (0, 0))
                states.append(BudgetState(scope, period, owner, limit,
                                          pico_to_usd(cost) if unit == "usd" else tokens, unit, budget.mode))
        now = self._clock()
        elapsed = tuple((period, (now - start).total_seconds(), (end - start).total_seconds())
                        for period, (start, end) in windows.items() if rolling_days(period) is None)
        return BudgetSnapshot(tuple(states), tuple(_effective(config, states)), elapsed)


def _weakly(method: Callable[[], None]) -> Callable[[], None]:
    """`method`, called only while its object lives (the refresher's thread must not keep it alive)."""
    ref = weakref.WeakMethod(method)

    def call() -> None:
        bound = ref()
        if bound is not None:
            bound()

    return call


def _budgeted(config: CostlineConfig) -> Iterator[tuple[str, tuple[str, ...], Budget]]:
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
    for scoped in config.budgets:
        yield scoped.scope, (scoped.name,), scoped


def _effective(config: CostlineConfig, states: list[BudgetState]) -> Iterator[Effective]:
    """What remains for every user and key of the hierarchy (`effective_of`), alone and in each project that has a
    budget: a call declaring that project counts against it too, as the guard's policy for it says."""
    projects = [""] + sorted({dict(s.owner)["project"] for s in states if s.scope == "project"})
    for org in config.orgs:
        for team in org.teams:
            for user in team.users:
                for project in projects:
                    owners = [("user", {"org": org.name, "team": team.name, "user": user.name})]
                    owners += [("key", {**owners[0][1], "key": key.name}) for key in user.keys]
                    for scope, owner in owners:
                        found = effective_of(scope, {**owner, "project": project}, states)
                        if found is not None:
                            yield found
