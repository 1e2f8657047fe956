"""`GET /api/v1/policy`: what the guard in an application needs to know about one caller, in one answer.

The guard asks once per refresh (not per call) with the API key's fingerprint and the owner keys the call carries;
the caller is resolved exactly as its spans will be (`ownership.Hierarchy`: a registered key wins; `environment`,
the guard's resource's `deployment.environment.name`, as the spans' resource gives it). The answer:

    {"owner": {"org": "acme", "team": "search", "user": "alice", "key": "alice-laptop", "project": ""},
     "models": [{"level": "org acme", "provider": "openai", "allow": null, "deny": ["o3*"]}, ...],
     "budget": {"remaining_usd": "12.500000000000", "bound_by": "key acme/search/alice/alice-laptop daily"},
     "budgets": [{"remaining_usd": "12.500000000000", "bound_by": "key acme/search/alice/alice-laptop daily"},
                 {"remaining_usd": "840.000000000000", "bound_by": "team acme/search monthly"}],
     "limits": [{"bound_by": "key acme/search/alice/alice-laptop daily", "unit": "usd", "mode": "hard",
                 "remaining": "12.500000000000"},
                {"bound_by": "team acme/search weekly tokens soft", "unit": "tokens", "mode": "soft",
                 "remaining": 120000},
                {"bound_by": "model gpt-5 monthly", "unit": "usd", "mode": "hard", "remaining": "80.000000000000",
                 "model": "gpt-5"}, ...],
     "rates": {"openai/gpt-4o": {"input_per_mtok": 2.0, "output_per_mtok": 8.0}},
     "refresh_s": 30}

`models` are the caller's rules from the org down (then its project's): the guard refuses what any of them refuses
(`policy.ModelPolicy.check`). `limits` lists every budget the caller counts against (`budgets.applicable`, the one
computation the budgets endpoint and the demo read too), tightest first, hard and soft, in USD (an exact decimal
string) or tokens (an integer): the guard counts its local spend against each, blocks on a spent hard one and warns
on a spent soft one; a budget with a `model` binds only the calls to that model (of the models asked about).
`budget` (the most restrictive hard USD budget, `budgets.effective_of`; null when none applies) and `budgets` (every
hard USD budget of the caller's owner) are what guards of earlier releases read: they know neither soft nor token
nor model budgets, and must not block on them.
A model a rule allows `on_approval` is in its `deny` list unless an approval covers the caller now.
`rates` price the models the guard asked about (`models=openai/gpt-4o,...`), so
it can estimate its own spend between refreshes without a price table of its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from costline import attributes as A
from costline.processor.ownership import Hierarchy
from costline.processor.policy import ModelPolicy
from costline.processor.pricing import Pricer
from costline.processor.reports.budgets import Budgets, BudgetState, applicable, effective_of
from costline.processor.units import NS_PER_S

REFRESH_S = 30
"""How often the guard should ask again (it may ask more often; budgets are recomputed at most every few seconds)."""
MAX_RATED_MODELS = 64
"""Models priced per answer: a process calls a handful; the bound keeps one request from pricing a flood."""

_DECLARED = {"org": A.COSTLINE_ORG, "team": A.COSTLINE_TEAM, "project": A.COSTLINE_PROJECT, "user": A.COSTLINE_USER,
             "customer": A.COSTLINE_CUSTOMER, "feature": A.COSTLINE_FEATURE}
"""Query parameters naming the caller's declared owner (as its spans will carry it)."""


def _budget(state: BudgetState) -> dict[str, Any]:
    return {"remaining_usd": state.remaining_usd, "bound_by": state.name}


def _limit(state: BudgetState) -> dict[str, Any]:
    found = {"bound_by": state.name, "unit": state.unit, "mode": state.mode, "remaining": state.remaining}
    model = dict(state.owner).get("model")
    if model is not None:
        found["model"] = model
    return found


def policy_document(hierarchy: Hierarchy, policy: ModelPolicy, budgets: Budgets, pricer: Pricer,
                    fingerprint: str | None, declared: Mapping[str, str], models: Sequence[str], *,
                    now_ns: int) -> dict[str, Any]:
    """The answer for one caller; `now_ns` (the service's clock) picks the prices in effect."""
    attrs = {_DECLARED[name]: value for name, value in declared.items() if name in _DECLARED}
    # The environment is the resource's (`deployment.environment.name`), not a `costline.*` key: resolved as spans are.
    owner, _ = hierarchy.resolve(attrs, fingerprint or None, declared.get("environment") or None)
    rules = policy.chain(owner.org, owner.team, owner.user, owner.key, owner.project)
    path, now = (owner.org, owner.team, owner.user), datetime.fromtimestamp(now_ns / NS_PER_S, timezone.utc)
    states = budgets.snapshot().states
    who = owner._asdict()
    asked = {name.partition("/")[2] for name in models[:MAX_RATED_MODELS]}
    limits = applicable(states, who, asked)
    effective = effective_of("key" if owner.key else "user", who, states)
    legacy = [s for s in limits if s.mode == "hard" and s.unit == "usd" and "model" not in dict(s.owner)]
    rates: dict[str, dict[str, float]] = {}
    for name in models[:MAX_RATED_MODELS]:
        provider, _, model = name.partition("/")
        found = pricer.rates(provider, model, now_ns) if provider and model else None
        if found is not None:
            flat = found.flat
            rates[name] = {"input_per_mtok": float(flat.input), "output_per_mtok": float(flat.output)}
    return {
        "owner": {"org": owner.org, "team": owner.team, "user": owner.user, "key": owner.key,
                  "project": owner.project},
        # An `on_approval` model is a `deny` for the guard until an approval covers the caller; the guard asks again
        # every `refresh_s`, so an approval that expires is refused again within that.
        "models": [rule.as_dict(lambda r, p: policy.approved(r, p, path, now)) for rule in rules],
        "budget": ({"remaining_usd": effective.remaining_usd, "bound_by": effective.bound_by}
                   if effective is not None and effective.bound_by is not None else None),
        "budgets": [_budget(state) for state in legacy],
        "limits": [_limit(state) for state in limits],
        "rates": rates,
        "refresh_s": REFRESH_S,
    }
