"""What the processor's `GET /api/v1/policy` answers for one caller, parsed and checked: its `models:` rules, every
budget it counts against (`limits`: hard or soft, in USD or tokens, for every call or one model's; from a processor
of an earlier release, `budgets`: hard USD ones), and the per-token rates of the models it called.

The rules are evaluated as the processor's `policy.ModelPolicy` does: case-insensitive shell globs, a `deny` match
or a miss on an `allow` list at any level refuses, and the rule is named `<level> <provider> deny <glob>`,
`<level> <provider> on approval <glob>` (a `deny` pattern the rule's `on_approval` lists: not approved for the caller)
or `<level> <provider> allow`. Anything that is not such a document raises `GarbageResponse`.
"""

from __future__ import annotations

import math
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from costline.instrumentation.policy_guard.spend import BudgetSpend

_PER_MTOK = 1e-6
MAX_VERDICTS = 1024
"""(provider, model) verdicts a policy remembers."""


class GarbageResponse(ValueError):
    """The policy endpoint answered something that is not a policy document."""


class Rate(NamedTuple):
    """USD per input and per output token of one model. The guard's only price arithmetic: it estimates in floats
    between refreshes (the ledger prices exactly); cache reads at the input rate, which errs on the budget's side."""

    input_usd: float
    output_usd: float

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        return input_tokens * self.input_usd + output_tokens * self.output_usd


class Limit(NamedTuple):
    """One budget the caller counts against, as the processor named it."""

    name: str
    remaining: float
    """USD, or tokens for a token budget."""
    tokens: bool = False
    soft: bool = False
    """Spent, it is warned about and never blocks."""
    model: str | None = None
    """Only calls requesting this model count against it, and only they are checked."""


class _Rule:
    __slots__ = ("provider", "level", "allow", "deny", "on_approval")

    def __init__(self, document: Any) -> None:
        if not isinstance(document, dict):
            raise GarbageResponse("a rule is not an object")
        self.provider = _text(document.get("provider"), "provider")
        self.level = _text(document.get("level"), "level")
        allow = document.get("allow")
        self.allow = None if allow is None else tuple(_text(p, "allow").lower() for p in _list(allow, "allow"))
        self.deny = tuple(_text(p, "deny").lower() for p in _list(document.get("deny") or [], "deny"))
        # The `deny` patterns that wait for an approval (the processor's `on_approval`): named as the processor names
        # them, so the app's error and the violation counted for the call say the same rule.
        self.on_approval = frozenset(_text(p, "on_approval").lower()
                                     for p in _list(document.get("on_approval") or [], "on_approval"))

    def refuses(self, provider: str, model: str) -> str | None:
        if self.provider != provider and self.provider != "*":
            return None
        for pattern in self.deny:
            if fnmatchcase(model, pattern):
                verb = "on approval" if pattern in self.on_approval else "deny"
                return f"{self.level} {self.provider} {verb} {pattern}"
        if self.allow is not None and not any(fnmatchcase(model, p) for p in self.allow):
            return f"{self.level} {self.provider} allow"
        return None


class Policy:
    """One caller's policy as the processor sent it."""

    __slots__ = ("rules", "budgets", "scopes", "rates", "refresh_s", "_verdicts")

    def __init__(self, document: Any) -> None:
        if not isinstance(document, dict):
            raise GarbageResponse("not a JSON object")
        self.rules = tuple(_Rule(r) for r in _list(document.get("models"), "models"))
        limits = document.get("limits")
        if limits is not None:
            self.budgets = tuple(_limit(b) for b in _list(limits, "limits"))
        else:  # a processor of an earlier release: hard USD budgets only
            budgets = document.get("budgets")
            if budgets is None:  # a processor that names only the tightest budget
                budget = document.get("budget")
                budgets = [] if budget is None else [budget]
            self.budgets = tuple(_budget(b) for b in _list(budgets, "budgets"))
        """`Limit` of every budget the caller counts against, as the processor sent them."""
        self.scopes: tuple[BudgetSpend, ...] = ()
        """The local spend of each budget (`spend.BudgetSpend`), attached when the policy is installed."""
        rates = document.get("rates") or {}
        if not isinstance(rates, dict):
            raise GarbageResponse("rates is not an object")
        self.rates = {tuple(_text(name, "rates").partition("/")[::2]): _rate(r)
                      for name, r in rates.items() if isinstance(r, dict)}
        """(provider, model) -> `Rate`."""
        refresh = document.get("refresh_s")
        self.refresh_s = _number(refresh, "refresh_s") if refresh is not None else None
        self._verdicts: dict[tuple[str, str], str | None] = {}
        """(provider, model) -> refusing rule or None: the rules are fixed for this policy's life, and a process
        calls a handful of models, so each is matched once (bounded all the same)."""

    def model_refusal(self, provider: str, model: str) -> str | None:
        key = (provider, model)
        try:
            return self._verdicts[key]
        except KeyError:
            pass
        lowered = model.lower()
        verdict = None
        for rule in self.rules:
            verdict = rule.refuses(provider, lowered)
            if verdict is not None:
                break
        if len(self._verdicts) < MAX_VERDICTS:
            self._verdicts[key] = verdict
        return verdict


def _rate(document: dict) -> Rate:
    return Rate(_number(document.get("input_per_mtok"), "input_per_mtok") * _PER_MTOK,
                _number(document.get("output_per_mtok"), "output_per_mtok") * _PER_MTOK)


def _budget(document: Any) -> Limit:
    if not isinstance(document, dict):
        raise GarbageResponse("a budget is not an object")
    return Limit(_text(document.get("bound_by"), "bound_by"), _number(document.get("remaining_usd"), "remaining_usd"))


def _limit(document: Any) -> Limit:
    if not isinstance(document, dict):
        raise GarbageResponse("a limit is not an object")
    unit, mode, model = document.get("unit"), document.get("mode", "hard"), document.get("model")
    if unit not in ("usd", "tokens"):
        raise GarbageResponse("a limit's unit is not usd or tokens")
    if mode not in ("hard", "soft"):
        raise GarbageResponse("a limit's mode is not hard or soft")
    return Limit(_text(document.get("bound_by"), "bound_by"), _number(document.get("remaining"), "remaining"),
                 unit == "tokens", mode == "soft", None if model is None else _text(model, "model"))


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise GarbageResponse(f"{name} is not a string")
    return value


def _list(value: Any, name: str) -> list:
    if not isinstance(value, list):
        raise GarbageResponse(f"{name} is not a list")
    return value


def _number(value: Any, name: str) -> float:
    """A number of the policy document. Money comes as an exact decimal string (`"12.500000000000"`, the processor
    API's rule for amounts of USD); a JSON number is accepted too. The guard compares in floats: it estimates."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise GarbageResponse(f"{name} is not a finite number") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise GarbageResponse(f"{name} is not a finite number")
    return float(value)
