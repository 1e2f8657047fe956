"""`GET /api/v1/policy`: what the guard in an application needs to know about one caller, in one answer.

The guard asks once per refresh (not per call) with the API key's fingerprint and the owner keys the call carries;
the caller is resolved exactly as its spans will be (`ownership.Hierarchy`: a registered key wins). The answer:

    {"owner": {"org": "acme", "team": "search", "user": "alice", "key": "alice-laptop", "project": ""},
     "models": [{"level": "org acme", "provider": "openai", "allow": null, "deny": ["o3*"]}, ...],
     "budget": {"remaining_usd": "12.500000000000", "bound_by": "key acme/search/alice/alice-laptop daily"},
     "budgets": [{"remaining_usd": "12.500000000000", "bound_by": "key acme/search/alice/alice-laptop daily"},
                 {"remaining_usd": "840.000000000000", "bound_by": "team acme/search monthly"}],
     "rates": {"openai/gpt-4o": {"input_per_mtok": 2.0, "output_per_mtok": 8.0}},
     "refresh_s": 30}

`models` are the caller's rules from the org down (then its project's): the guard refuses what any of them refuses
(`policy.ModelPolicy.check`); a model a rule allows `on_approval` is in its `deny` list unless an approval covers the
caller now. `budget` is the most restrictive remaining budget over key, user, team, org and
project (null when none applies); `budgets` lists every budget the caller counts against, tightest first, so the
guard can count its local spend against each of them (a caller's spend is also its team's, whoever the user is).
`rates` price the models the guard asked about (`models=openai/gpt-4o,...`), so
it can estimate its own spend between refreshes without a price table of its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from costline import attributes as A
from costline.processor.ownership import Hierarchy, Owner
from costline.processor.policy import ModelPolicy
from costline.processor.pricing import Pricer
from costline.processor.reports.budgets import Budgets, BudgetState
from costline.processor.units import NS_PER_S

REFRESH_S = 30
"""How often the guard should ask again (it may ask more often; budgets are recomputed at most every few seconds)."""
MAX_RATED_MODELS = 64
"""Models priced per answer: a process calls a handful; the bound keeps one request from pricing a flood."""

_DECLARED = {"org": A.COSTLINE_ORG, "team": A.COSTLINE_TEAM, "project": A.COSTLINE_PROJECT, "user": A.COSTLINE_USER}


def _binds(state: BudgetState, owner: Owner) -> bool:
    return all(getattr(owner, name) == value for name, value in state.owner)


def _budget(state: BudgetState) -> dict[str, Any]:
    return {"remaining_usd": state.remaining_usd, "bound_by": f"{state.scope} {state.owner_name} {state.period}"}


def policy_document(hierarchy: Hierarchy, policy: ModelPolicy, budgets: Budgets, pricer: Pricer,
                    fingerprint: str | None, declared: Mapping[str, str], models: Sequence[str], *,
                    now_ns: int) -> dict[str, Any]:
    """The answer for one caller; `now_ns` (the service's clock) picks the prices in effect."""
    attrs = {_DECLARED[name]: value for name, value in declared.items() if name in _DECLARED}
    owner, _ = hierarchy.resolve(attrs, fingerprint or None, None)
    rules = policy.chain(owner.org, owner.team, owner.user, owner.key, owner.project)
    path, now = (owner.org, owner.team, owner.user), datetime.fromtimestamp(now_ns / NS_PER_S, timezone.utc)
    binding = sorted((s for s in budgets.snapshot().states if _binds(s, owner)), key=lambda s: s.remaining_usd)
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
        "budget": _budget(binding[0]) if binding else None,
        "budgets": [_budget(state) for state in binding],
        "rates": rates,
        "refresh_s": REFRESH_S,
    }
