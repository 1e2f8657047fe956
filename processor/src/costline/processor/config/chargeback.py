"""The `chargeback:` section of the config: how each team is charged for its LLM use.

    chargeback:
      default: {markup_pct: 15, platform_fee_usd: 200}
      tiers:                        # by the team's tokens in the period; the whole volume takes its tier's markup
        - {up_to_mtok: 10, markup_pct: 50}
        - {up_to_mtok: 100, markup_pct: 20}
        - {markup_pct: 10}
      teams:
        marketing: {markup_pct: 0, platform_fee_usd: 0}
        support: {per_outcome_usd: {ticket_resolved: 0.50}}
      shared_costs:
        - {name: platform-infra, monthly_usd: 1200, split: proportional}
        - {name: reserved-capacity, monthly_usd: 3000, split: {engineering: 60, marketing: 40}}
      unattributed: proportional    # or {team: NAME}, or even
      untracked: show               # or charge: bill untracked spend (`costline reconcile`) to its owner
      start: 2026-01                # fees and shared costs from this month on (default: each org's first month)
      # seats: default/teams.<team>.seat_usd: 2.00 charges each active member (a user with a call in the month)
      customers:                    # `costline customers`: cost, revenue and margin per customer (tenant)
        revenue:
          currency: USD             # the config's currency (the ledger's): anything else is refused
          per_outcome_usd: {ticket_resolved: 0.90}
          per_customer_usd: {acme: 500}
        budgets_usd: {acme: 300}    # monthly cost budget per customer (alert CostlineCustomerBudgetExceeded)

    fleets:                         # top level: self-hosted models priced by what the fleet costs (docs/chargeback.md)
      - {name: gpu-pool, models: [llama-3.1-70b], provider: vllm, cost: {monthly_usd: 3000}}
      - {name: batch, models: [qwen2.5-7b], cost: {gpu_hours: 720, usd_per_gpu_hour: 1.25}, allocate_by: tokens}

The models and the arithmetic are in docs/chargeback.md; every key in docs/configuration.md.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator

from costline.processor.config.validators import MAX_USD, NAME, NAME_PATTERN, NAME_RULE, Strict

MAX_MARKUP_PCT = Decimal(10_000)
MAX_TIER_MTOK = Decimal(10**9)

Usd = Annotated[Decimal, Field(ge=0, le=MAX_USD, allow_inf_nan=False)]
Cents = Annotated[Decimal, Field(ge=0, le=MAX_USD, allow_inf_nan=False, decimal_places=2)]
"""An amount billed as it is (a fee, a shared cost): whole cents, so that splitting it never needs rounding it."""
Pct = Annotated[Decimal, Field(ge=0, le=MAX_MARKUP_PCT, allow_inf_nan=False)]

TEAM_REF = re.compile(rf"^(?:{NAME_PATTERN}/)?{NAME_PATTERN}$")
"""`team` or `org/team`: `org/team` when the same team name exists in several orgs."""
MONTH = re.compile(r"^(19[7-9]\d|[2-9]\d{3})-(0[1-9]|1[0-2])$")
SPLITS = ("proportional", "even")
UNTRACKED_RULES = ("show", "charge")


def _team_ref(value: str) -> str:
    if not TEAM_REF.match(value):
        raise ValueError(f"{value!r} is not a team: write `team` or `org/team` (names of {NAME_RULE})")
    if value.rsplit("/", 1)[-1] == "unattributed":
        raise ValueError("the unattributed spend is spread by `chargeback.unattributed`, it is not a team to charge")
    return value


class Charging(Strict):
    """How one team (or, as `default`, every team) is charged. A key left out falls back to the default's."""

    markup_pct: Pct | None = None
    """Percent added to the token cost: 15 means token cost x 1.15."""
    platform_fee_usd: Cents | None = None
    """Fixed amount per period."""
    per_outcome_usd: dict[str, Usd] | None = None
    """Value-based: a rate per business outcome (`costline.outcome(name)`); the team is charged per outcome instead
    of for its tokens."""
    seat_usd: Cents | None = None
    """Per active member per month: each user with at least one call in the month (a `seats` line), beside whatever
    else the team is charged (tokens, outcomes, or neither with `markup_pct: 0` and no token cost)."""

    @field_validator("per_outcome_usd")
    @classmethod
    def _outcome_names(cls, value: dict[str, Decimal] | None) -> dict[str, Decimal] | None:
        return _outcome_rates(value)


def _outcome_rates(value: dict[str, Decimal] | None) -> dict[str, Decimal] | None:
    for name in value or {}:
        if not NAME.match(name):
            raise ValueError(f"{name!r} is not an outcome name (1-63 letters, digits, '_', '.', '-')")
    if value is not None and not value:
        raise ValueError("must name at least one outcome and its rate, e.g. {ticket_resolved: 0.50}")
    return value


CURRENCY = "USD"
"""The config's currency: the ledger's prices, budgets, fees and the statement are USD."""
ALLOCATE_BY = ("tokens", "request_seconds")


class FleetCost(Strict):
    """What a fleet costs per calendar month: `monthly_usd`, or `gpu_hours` x `usd_per_gpu_hour` (rounded half-up to
    the cent once, so that the allocation splits whole cents)."""

    monthly_usd: Cents | None = None
    gpu_hours: Annotated[Decimal, Field(gt=0, le=MAX_TIER_MTOK, allow_inf_nan=False)] | None = None
    usd_per_gpu_hour: Usd | None = None

    @model_validator(mode="after")
    def _one_way(self) -> FleetCost:
        gpu = (self.gpu_hours, self.usd_per_gpu_hour)
        if self.monthly_usd is not None and any(v is not None for v in gpu):
            raise ValueError("give either monthly_usd or gpu_hours with usd_per_gpu_hour, not both")
        if self.monthly_usd is None and None in gpu:
            raise ValueError("must be {monthly_usd: AMOUNT} or {gpu_hours: HOURS, usd_per_gpu_hour: RATE}")
        return self

    @property
    def usd(self) -> Decimal:
        """The month's cost in whole cents."""
        if self.monthly_usd is not None:
            return self.monthly_usd.quantize(Decimal("0.01"))
        exact = self.gpu_hours * self.usd_per_gpu_hour  # type: ignore[operator]
        return exact.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)

    def how(self) -> str:
        if self.monthly_usd is not None:
            return f"${self.monthly_usd:,.2f} per month"
        return f"{self.gpu_hours} GPU-hours x ${self.usd_per_gpu_hour} = ${self.usd:,.2f}"


class Fleet(Strict):
    """A self-hosted fleet (vLLM, TGI, Ollama servers): the models it serves are fleet-priced (their calls are
    recorded priced at $0 marginal, never unpriced), and its monthly cost is allocated over the teams by their
    consumption of those models (`allocate_by`)."""

    name: Annotated[str, Field(pattern=NAME.pattern)]
    models: list[Annotated[str, Field(min_length=1, max_length=255)]] = Field(min_length=1)
    provider: str | None = None
    """Only that provider's calls of the models (e.g. `vllm`); none: any provider's."""
    cost: FleetCost
    allocate_by: str = "tokens"

    @field_validator("allocate_by")
    @classmethod
    def _valid_allocate_by(cls, value: str) -> str:
        if value not in ALLOCATE_BY:
            raise ValueError(f"must be {' or '.join(ALLOCATE_BY)}, not {value!r}: what a team's share of the fleet "
                             "is proportional to")
        return value

    def serves(self, provider: str, model: str) -> bool:
        """Whether a call of `model` from `provider` runs on this fleet (model names compared case-insensitively)."""
        return (self.provider is None or self.provider == provider) and model.lower() in {
            m.lower() for m in self.models}


def check_fleets(fleets: list[Fleet]) -> list[str]:
    """Names unique; a model (of a provider) served by one fleet only, or its calls' share would be counted twice."""
    errors: list[str] = []
    names: set[str] = set()
    served: dict[tuple[str | None, str], int] = {}
    for i, fleet in enumerate(fleets):
        if fleet.name in names:
            errors.append(f"fleets[{i}].name: duplicate name {fleet.name!r}")
        names.add(fleet.name)
        for model in fleet.models:
            for (provider, other), j in served.items():
                if other == model.lower() and (provider is None or fleet.provider is None
                                               or provider == fleet.provider) and j != i:
                    errors.append(f"fleets[{i}].models: {model!r} is already served by fleets[{j}]; a model is "
                                  "fleet-priced by one fleet")
            served[(fleet.provider, model.lower())] = i
    return errors


class Revenue(Strict):
    """What customers pay: per outcome (`costline.outcome(name)` with a `customer`) and/or a fixed amount per customer
    per month. In the config's currency."""

    currency: str = CURRENCY
    per_outcome_usd: dict[str, Usd] | None = None
    per_customer_usd: dict[str, Cents] = Field(default_factory=dict)

    @field_validator("currency")
    @classmethod
    def _config_currency(cls, value: str) -> str:
        if value != CURRENCY:
            raise ValueError(f"must be the config's currency, {CURRENCY}, not {value!r}: revenue is set against "
                             "costs priced in USD and no exchange rate is applied")
        return value

    @field_validator("per_outcome_usd")
    @classmethod
    def _outcome_names(cls, value: dict[str, Decimal] | None) -> dict[str, Decimal] | None:
        return _outcome_rates(value)

    @field_validator("per_customer_usd")
    @classmethod
    def _customer_names(cls, value: dict[str, Decimal]) -> dict[str, Decimal]:
        for name in value:
            if not name or len(name) > 255:
                raise ValueError(f"{name!r} is not a customer (the `costline.customer` attribute, 1-255 characters)")
        return value


class Customers(Strict):
    revenue: Revenue = Field(default_factory=Revenue)
    budgets_usd: dict[str, Cents] = Field(default_factory=dict)
    """Monthly cost budget per customer: `costline_customer_budget_usd`, alerted on by CostlineCustomerOverBudget."""


class Tier(Strict):
    up_to_mtok: Annotated[Decimal, Field(gt=0, le=MAX_TIER_MTOK, allow_inf_nan=False)] | None = None
    """Upper bound, exclusive, in millions of tokens in the period; none on the last tier (it takes the rest)."""
    markup_pct: Pct


class UnattributedTo(Strict):
    team: str


class SharedCost(Strict):
    name: Annotated[str, Field(pattern=NAME.pattern)]
    monthly_usd: Cents
    split: Any
    """`proportional` (by each team's token cost), `even`, or `{team: percent, ...}` adding up to 100."""

    @field_validator("split")
    @classmethod
    def _valid_split(cls, value: Any) -> str | dict[str, Decimal]:
        if isinstance(value, str) and value in SPLITS:
            return value
        if not isinstance(value, dict) or not value:
            raise ValueError("must be proportional, even, or fixed percentages per team such as "
                             "{engineering: 60, marketing: 40}")
        shares: dict[str, Decimal] = {}
        for team, pct in value.items():
            _team_ref(str(team))
            try:
                share = Decimal(str(pct)) if isinstance(pct, (int, float, str, Decimal)) and not isinstance(
                    pct, bool) else None
            except ArithmeticError:
                share = None
            if share is None or not share.is_finite() or not 0 < share <= 100:
                raise ValueError(f"{team}: a percentage above 0 and at most 100, not {pct!r}")
            shares[str(team)] = share
        total = sum(shares.values(), Decimal(0))
        if total != 100:
            raise ValueError(f"a fixed split's percentages must add up to 100, not {total}")
        return shares


class ChargebackConfig(Strict):
    default: Charging = Field(default_factory=Charging)
    tiers: list[Tier] = Field(default_factory=list)
    teams: dict[str, Charging] = Field(default_factory=dict)
    shared_costs: list[SharedCost] = Field(default_factory=list)
    unattributed: Any = "proportional"
    """`proportional`, `even`, or `{team: NAME}`: how the cost of calls no team owns is spread."""
    untracked: Any = "show"
    """`show` (the statement lists the month's untracked spend) or `charge` (and bills it: at cost to the owning
    team; unmapped identities' spend spread as `unattributed` says)."""
    customers: Customers = Field(default_factory=Customers)
    """Customers' (tenants') revenue and budgets: `costline customers` (docs/chargeback.md)."""
    start: Any = None
    """`YYYY-MM`: the first month fixed charges (platform fees, shared costs) apply to every org; none: each org's
    first month with data in the ledger."""

    @field_validator("start", mode="before")
    @classmethod
    def _valid_start(cls, value: Any) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str) or not MONTH.match(value):
            raise ValueError(f"must be a calendar month as YYYY-MM (e.g. 2026-01), not {value!r}: fees and shared "
                             "costs apply from that month on")
        return value

    @field_validator("untracked")
    @classmethod
    def _valid_untracked(cls, value: Any) -> str:
        if value not in UNTRACKED_RULES:
            raise ValueError(f"must be {' or '.join(UNTRACKED_RULES)}, not {value!r}: show lists the untracked spend, "
                             "charge also bills it to its owner")
        return str(value)

    @field_validator("unattributed")
    @classmethod
    def _valid_unattributed(cls, value: Any) -> str | UnattributedTo:
        if isinstance(value, str) and value in SPLITS:
            return value
        if isinstance(value, dict) and set(value) == {"team"} and isinstance(value["team"], str):
            return UnattributedTo(team=_team_ref(value["team"]))
        raise ValueError("must be proportional, even, or {team: NAME} (the team that takes it all)")

    @field_validator("teams")
    @classmethod
    def _team_names(cls, value: dict[str, Charging]) -> dict[str, Charging]:
        for team in value:
            _team_ref(team)
        return value

    @field_validator("tiers")
    @classmethod
    def _ordered_tiers(cls, value: list[Tier]) -> list[Tier]:
        if not value:
            return value
        bounds = [t.up_to_mtok for t in value]
        if bounds[-1] is not None:
            raise ValueError("the last tier takes every volume above the others: leave out its up_to_mtok")
        if any(b is None for b in bounds[:-1]):
            raise ValueError("only the last tier may leave out up_to_mtok")
        if any(b <= a for a, b in zip(bounds[:-2], bounds[1:-1], strict=True)):  # type: ignore[operator]
            raise ValueError("up_to_mtok must increase from one tier to the next")
        return value

    @model_validator(mode="after")
    def _unique_shared_costs(self) -> ChargebackConfig:
        seen: set[str] = set()
        for i, cost in enumerate(self.shared_costs):
            if cost.name in seen:
                raise ValueError(f"shared_costs[{i}].name: duplicate name {cost.name!r}")
            seen.add(cost.name)
        return self
