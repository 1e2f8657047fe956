"""The guard's local spend estimate: what this process has spent against each budget since the processor's figure.

Local spend is counted per budget, not per caller: the processor names every budget a caller counts against (key,
user, team, org, project, customer, feature, model) and each keeps its spend in a `BudgetSpend` of its own, shared by every caller the budget
binds, so a new `costline.owner(user=...)` per call still spends its key's and team's budget. Each GenAI span ending
in this process adds its tokens at the rates the processor sent (a token budget adds its input and output tokens as
they are; a model's budget only its model's calls); rates are kept for the whole process, and a model
without rates yet has its calls' tokens wait to be priced. A processor figure is taken to include only the local
spend older than `hold_s` (the exporter's batch delay plus the processor's budget read), so a refresh never forgets
spend the ledger has not seen. Written under the guard's lock; read by the call path without it.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING

from costline.instrumentation.policy_guard.callers import MAX_MODELS_PER_CALLER
from costline.instrumentation.policy_guard.document import Limit, Policy, Rate

if TYPE_CHECKING:
    from costline.instrumentation.policy_guard.callers import Caller

MAX_SCOPES = 4096
"""Budgets whose local spend is kept; beyond this the one refreshed longest ago goes."""
MAX_RATES = 1024
"""Models whose rates are kept for the whole process."""
EARLY_REFRESH_S = 1.0
"""A budget half spent by local calls is asked about again at once, but at most this often."""
_MARK_EVERY_S = 0.25
"""How often a budget notes its running local total (`BudgetSpend.marks`), to know what it was `hold_s` ago."""

Model = tuple[str, str]
"""(provider, model)."""


class BudgetSpend:
    """Local spend against one budget (`key acme/search/alice/laptop daily`), shared by every caller it binds."""

    __slots__ = ("name", "remaining_usd", "fetched_at", "total_usd", "seen_usd", "marks", "pending", "early_at", "via",
                 "tokens", "soft", "model")

    def __init__(self, name: str, hold_s: float) -> None:
        self.name = name
        self.tokens = False
        """A token budget: every amount here counts tokens, not USD."""
        self.soft = False
        self.model: str | None = None
        """A model's budget: only the calls requesting it count, and are checked."""
        self.remaining_usd = math.inf
        """The processor's figure, as last fetched (tokens for a token budget)."""
        self.fetched_at = -math.inf
        self.total_usd = 0.0
        """Every cost this process has added to this budget: only grows."""
        self.seen_usd = 0.0
        """The part of `total_usd` the processor's figure is taken to include (what had been spent `hold_s` before
        the figure was asked for)."""
        self.marks: deque[tuple[float, float]] = deque(maxlen=int(hold_s / _MARK_EVERY_S) + 8)
        """(time, `total_usd` then), at most one per `_MARK_EVERY_S`, reaching `hold_s` back: what the total was
        then."""
        self.pending: dict[Model, list[int]] = {}
        """(provider, model) -> [input, output] tokens of calls ended before the model's rates were known."""
        self.early_at = -math.inf
        self.via: Caller | None = None
        """The caller whose refresh last brought this budget's figure: the one to refresh early."""

    def left_usd(self) -> float:
        """The processor's figure less what this process spent that the figure does not include yet."""
        return self.remaining_usd - (self.total_usd - self.seen_usd)

    def add(self, cost: float, now: float) -> None:
        self.total_usd += cost
        marks = self.marks
        if not marks or now - marks[-1][0] >= _MARK_EVERY_S:
            marks.append((now, self.total_usd))

    def total_at(self, when: float) -> float:
        """A lower bound of `total_usd` at `when`: the last mark at or before it (else what is known seen)."""
        found = self.seen_usd
        for at, total in self.marks:
            if at > when:
                break
            found = total
        return found


class LocalSpend:
    """Every budget's `BudgetSpend`, and the rates that price what calls used."""

    def __init__(self, hold_s: float, lock: threading.Lock) -> None:
        self._hold_s = hold_s
        self._lock = lock
        self._scopes: dict[str, BudgetSpend] = {}
        self.rates: dict[Model, Rate] = {}
        """(provider, model) -> `Rate`, from every answer: prices are the same for all callers."""
        self._unpriced: set[BudgetSpend] = set()
        """Budgets holding tokens of models whose rates have not come yet."""

    def add(self, policy: Policy, model: Model, input_tokens: int, output_tokens: int, now: float) -> bool:
        """Add a finished call's cost to each budget of `policy`; whether one of them should be asked about again
        at once (`early`)."""
        rate = self.rates.get(model)
        with self._lock:
            early = False
            priced = []
            for scope in policy.scopes:
                if scope.model is not None and scope.model != model[1]:
                    continue
                if scope.tokens:
                    scope.add(input_tokens + output_tokens, now)
                    early |= _early(scope, now)
                else:
                    priced.append(scope)
            if rate is None:  # priced when the rates come (asked for when the call started)
                for scope in priced:
                    if model in scope.pending or len(scope.pending) < MAX_MODELS_PER_CALLER:
                        held = scope.pending.setdefault(model, [0, 0])
                        held[0] += input_tokens
                        held[1] += output_tokens
                        self._unpriced.add(scope)
                return early
            cost = rate.cost(input_tokens, output_tokens)
            for scope in priced:
                scope.add(cost, now)
                early |= _early(scope, now)
        return early

    def scope_of(self, limit: Limit, fetched_at: float, seen_before: float, via: Caller) -> BudgetSpend:
        """The budget's `BudgetSpend`, with the processor's new figure (under the lock)."""
        scopes = self._scopes
        scope = scopes.get(limit.name)
        if scope is None:
            if len(scopes) >= MAX_SCOPES:
                del scopes[min(scopes, key=lambda n: scopes[n].fetched_at)]
            scope = scopes[limit.name] = BudgetSpend(limit.name, self._hold_s)
        scope.tokens, scope.soft, scope.model = limit.tokens, limit.soft, limit.model
        scope.remaining_usd = limit.remaining
        scope.fetched_at = fetched_at
        scope.seen_usd = max(scope.seen_usd, scope.total_at(seen_before))
        if via.pinned or scope.via is None or not scope.via.pinned:
            scope.via = via  # a key's own entry is never evicted: the surest one to refresh early
        return scope

    def learn_rates(self, rates: Mapping[Model, Rate], now: float) -> None:
        """Keep an answer's rates and price the tokens that waited for them (under the lock)."""
        known = self.rates
        for model, rate in rates.items():
            if model in known or len(known) < MAX_RATES:
                known[model] = rate
        for scope in list(self._unpriced):
            for model in [m for m in scope.pending if m in known]:
                scope.add(known[model].cost(*scope.pending.pop(model)), now)
            if not scope.pending:
                self._unpriced.discard(scope)


def _early(scope: BudgetSpend, now: float) -> bool:
    """Once local spend passes half of what the processor said was left, ask it again at once (rate-limited):
    other processes' spend and the exact figure arrive sooner. Under the lock."""
    if (scope.total_usd - scope.seen_usd) * 2 < scope.remaining_usd or now - scope.early_at < EARLY_REFRESH_S:
        return False
    via = scope.via
    if via is None or via.due_at <= now:
        return False
    scope.early_at = now
    via.due_at = now
    return True
