"""The processor's configuration: one typed object, validated with errors that name the key and the rule.

    timezone: UTC
    orgs:
      - name: acme
        budget: {monthly_usd: 3000}
        teams:
          - name: engineering
            budget: {monthly_usd: 2000}
            users:
              - name: alice
                budget: {monthly_usd: 100}
                keys:
                  - {name: alice-laptop, fingerprint: b3180bc5c5db03d7, budget: {monthly_usd: 50, daily_usd: 5}}
    projects:
      - {name: campaigns, budget: {monthly_usd: 200}}
    prices:
      - {provider: openai, model: gpt-4o, input_per_mtok: 2.00, cache_read_per_mtok: 1.00, output_per_mtok: 8.00}
    metrics:
      user_label: false          # user and key live in the ledger; as labels they multiply series
      key_label: false
      cardinality_limit: 1000    # distinct values per label before `__overflow__`

Every key is documented in `docs/configuration.md`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import AfterValidator, Field, ValidationError, field_validator, model_validator

from costline.processor.config.assistants import AssistantsConfig
from costline.processor.config.chargeback import ChargebackConfig, Fleet, check_fleets
from costline.processor.config.validators import MAX_USD, NAME, NAME_RULE, Strict, matching
from costline.processor.model import (
    BASE_OWNER_LABELS,
    BUDGET_SCOPES,
    CALL_LABELS,
    HIERARCHY,
    MAX_LABEL_LENGTH,
    MAX_TOKENS,
    OPTIONAL_OWNER_LABELS,
    RUN_KINDS,
    RUN_RETENTION_DAYS,
)
from costline.processor.units import MAX_ROLLING_DAYS, PERIODS, rolling_period

_FINGERPRINT = re.compile(r"^[0-9a-f]{16}$")
MAX_PRICE_PER_MTOK_USD = Decimal(100_000)
"""Largest price per million tokens: 0.10 USD a token, ~100x the dearest listed model, so a typo is caught and a
call's cost in picodollars stays an integer the ledger's columns hold."""
BudgetUsd = Annotated[Decimal, Field(ge=0, le=MAX_USD, allow_inf_nan=False)]
PricePerMtok = Annotated[Decimal, Field(ge=0, le=MAX_PRICE_PER_MTOK_USD, allow_inf_nan=False)]


class ConfigError(ValueError):
    """A configuration that cannot be used. `errors` are `key.path: rule` strings, one per problem."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


BUDGET_MODES = ("hard", "soft")
"""A hard budget makes the guard block once it is spent; a soft one is reported and alerted on, never blocked on."""
BUDGET_UNITS = ("usd", "tokens")
MAX_BUDGET_TOKENS = MAX_TOKENS * 1_000_000
"""Largest token budget: a million calls of the largest call the processor accepts."""
BudgetTokens = Annotated[int, Field(ge=0, le=MAX_BUDGET_TOKENS, strict=True)]


class RollingBudget(Strict):
    """A budget over the last `days`×24 hours (hour-granular, like the ledger), in USD or in tokens."""

    days: int
    usd: BudgetUsd | None = None
    tokens: BudgetTokens | None = None

    @field_validator("days")
    @classmethod
    def _days(cls, value: int) -> int:
        if not 1 <= value <= MAX_ROLLING_DAYS:
            raise ValueError(f"must be between 1 and {MAX_ROLLING_DAYS} days (a rolling window of whole days, at most "
                             "a year)")
        return value

    @model_validator(mode="after")
    def _one_amount(self) -> RollingBudget:
        if (self.usd is None) == (self.tokens is None):
            raise ValueError("give exactly one of usd or tokens")
        return self


class Budget(Strict):
    """The budgets of one owner: an amount per calendar period (`PERIODS`) in USD and/or tokens, rolling windows,
    and whether they are hard (the guard blocks) or soft (reported and alerted on only)."""

    daily_usd: BudgetUsd | None = None
    weekly_usd: BudgetUsd | None = None
    monthly_usd: BudgetUsd | None = None
    quarterly_usd: BudgetUsd | None = None
    yearly_usd: BudgetUsd | None = None
    daily_tokens: BudgetTokens | None = None
    weekly_tokens: BudgetTokens | None = None
    monthly_tokens: BudgetTokens | None = None
    quarterly_tokens: BudgetTokens | None = None
    yearly_tokens: BudgetTokens | None = None
    rolling: list[RollingBudget] = Field(default_factory=list)
    mode: str = "hard"
    """`hard` by default: every budget of an earlier release (which had no soft ones) still blocks."""

    @model_validator(mode="before")
    @classmethod
    def _known_periods(cls, data: Any) -> Any:
        """An amount for a period that does not exist names the periods that do (instead of 'unknown key')."""
        if isinstance(data, dict):
            for key in data:
                stem, _, unit = str(key).rpartition("_")
                if unit in BUDGET_UNITS and stem not in PERIODS:
                    raise ValueError(f"{key}: {stem!r} is not a budget period; periods are {', '.join(PERIODS)} "
                                     f"(<period>_usd, <period>_tokens) and rolling: [{{days: N, usd: ...}}]")
        return data

    @field_validator("mode")
    @classmethod
    def _mode(cls, value: str) -> str:
        if value not in BUDGET_MODES:
            raise ValueError("must be hard (the guard blocks once spent) or soft (reported and alerted on only)")
        return value

    @model_validator(mode="after")
    def _distinct_rolling(self) -> Budget:
        seen = set()
        for i, r in enumerate(self.rolling):
            ident = (r.days, "usd" if r.usd is not None else "tokens")
            if ident in seen:
                raise ValueError(f"rolling[{i}]: a {r.days}-day {ident[1]} budget is already given")
            seen.add(ident)
        return self

    def amounts(self) -> Iterator[tuple[str, str, Decimal | int, str]]:
        """(period, unit, limit, key) of every amount set: `("weekly", "usd", Decimal(50), "weekly_usd")`,
        `("rolling_7d", "tokens", 10**6, "rolling[0].tokens")`."""
        for unit in BUDGET_UNITS:
            for period in PERIODS:
                value = getattr(self, f"{period}_{unit}")
                if value is not None:
                    yield period, unit, value, f"{period}_{unit}"
        for i, r in enumerate(self.rolling):
            unit = "usd" if r.usd is not None else "tokens"
            yield rolling_period(r.days), unit, r.usd if r.usd is not None else r.tokens, f"rolling[{i}].{unit}"

    def periods(self) -> Iterator[tuple[str, Decimal]]:
        """(period, limit) of every calendar amount in USD."""
        for period, unit, limit, key in self.amounts():
            if unit == "usd" and not key.startswith("rolling"):
                yield period, limit


class ScopedBudget(Budget):
    """A budget of the top-level `budgets:` list: for an owner outside the org hierarchy (`scope`: project,
    customer, feature, environment, model; `model.BUDGET_SCOPES`) named `name`."""

    scope: str
    name: Annotated[str, Field(min_length=1, max_length=MAX_LABEL_LENGTH)]

    @field_validator("scope")
    @classmethod
    def _scope(cls, value: str) -> str:
        if value in HIERARCHY:
            raise ValueError(f"{value} budgets are set under orgs (the {value}'s budget: key), where the hierarchy "
                             "names its parents")
        if value not in BUDGET_SCOPES:
            raise ValueError(f"{value!r} is not a budget scope; scopes are "
                             f"{', '.join(s for s in BUDGET_SCOPES if s not in HIERARCHY)} (and under orgs: "
                             f"{', '.join(HIERARCHY)})")
        return value


# --- model policy (evaluated by `policy.py`) ------------------------------------------------------------------------
_GLOB_FORBIDDEN = re.compile(r"[\s{}\\]")


def _valid_glob(pattern: str) -> str:
    """A model name or shell-style glob (`*`, `?`, `[...]`), compared case-insensitively. fnmatch accepts anything
    (an unclosed `[` silently becomes a literal), so what it would misread is refused here instead."""
    if not pattern:
        raise ValueError("an empty pattern matches nothing; remove it")
    if _GLOB_FORBIDDEN.search(pattern):
        raise ValueError(f"{pattern!r}: whitespace, braces and backslashes are not glob syntax here "
                         "(use *, ? and [...]; list alternatives as separate patterns)")
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "[":
            start = i + 2 if pattern[i + 1:i + 2] == "!" else i + 1
            end = pattern.find("]", start)
            if end == -1 or end == start:
                raise ValueError(f"{pattern!r}: '[' at position {i} opens a set that is never closed or empty")
            i = end + 1
            continue
        if c == "]":
            raise ValueError(f"{pattern!r}: ']' at position {i} closes no '['")
        i += 1
    return pattern


ModelGlob = Annotated[str, Field(max_length=255), AfterValidator(_valid_glob)]


class ModelRule(Strict):
    """Which models of one provider an owner may call: `allow` admits only what it lists, `deny` refuses what it
    lists. Either or both."""

    allow: list[ModelGlob] | None = None
    deny: list[ModelGlob] = Field(default_factory=list)
    on_approval: list[ModelGlob] = Field(default_factory=list)
    """Models refused unless an approval (`approvals:`, made through the admin API) covers the caller: a frontier
    model a team asks for with a reason, and an admin one level up allows for a while (docs/governance.md)."""
    members_may_request: bool = False
    """Members may request the `on_approval` models for themselves (else team admins request for their team)."""


ANY_PROVIDER = "*"
"""`models:` key whose rule applies to every provider."""


class _Named(Strict):
    name: str
    budget: Budget | None = None
    models: dict[str, ModelRule] = Field(default_factory=dict)
    """Provider (`openai`, `anthropic`, ... or `*`) -> the models this owner may call (`policy.py`)."""

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not NAME.match(value) or value in ("unattributed", "__overflow__"):
            raise ValueError(f"must be {NAME_RULE}, and not a reserved name (unattributed, __overflow__)")
        return value


class Key(_Named):
    fingerprint: Annotated[str, matching(_FINGERPRINT, "must be 16 lowercase hex characters "
                                                       "(`costline fingerprint KEY` prints it)")]


class User(_Named):
    keys: list[Key] = Field(default_factory=list)


class Team(_Named):
    users: list[User] = Field(default_factory=list)


class Org(_Named):
    teams: list[Team] = Field(default_factory=list)


class Project(_Named):
    pass


_STANDARD_TIERS = frozenset({"default", "auto", "standard", "standard_only", "on_demand", "on-demand"})
_PROCESSING = ("batch",)

_CHILDREN: dict[type, str] = {Org: "teams", Team: "users", User: "keys"}
"""Each level of the org hierarchy and the list of the level below it."""


class PriceOverride(Strict):
    """A negotiated, discounted or self-hosted price, per million tokens (per thousand searches, code executions or
    requests). Covers the model's dated snapshots. A unit without its own price is billed at the price of the unit
    it is part of, as genai-prices bills it: audio input at `input_per_mtok`, a one-hour cache write at
    `cache_write_per_mtok`, else `input_per_mtok`; web searches and code executions without a price are unpriced
    (counted, for a reprice), never free."""

    provider: str
    model: str
    input_per_mtok: PricePerMtok
    output_per_mtok: PricePerMtok
    cache_read_per_mtok: PricePerMtok | None = None
    cache_write_per_mtok: PricePerMtok | None = None
    cache_write_1h_per_mtok: PricePerMtok | None = None
    input_audio_per_mtok: PricePerMtok | None = None
    input_image_per_mtok: PricePerMtok | None = None
    input_video_per_mtok: PricePerMtok | None = None
    output_audio_per_mtok: PricePerMtok | None = None
    output_image_per_mtok: PricePerMtok | None = None
    output_video_per_mtok: PricePerMtok | None = None
    output_reasoning_per_mtok: PricePerMtok | None = None
    web_search_per_k: PricePerMtok | None = None
    code_execution_per_k: PricePerMtok | None = None
    request_per_k: PricePerMtok | None = None
    service_tier: str = ""
    """The service tier the price is for (`flex`, `priority`, as the provider names it); empty: the standard tier.
    Calls of another tier are priced at genai-prices' price for theirs."""
    processing: str = ""
    """`batch`: the price of batch calls; empty: of online calls."""
    effective_from: date | None = None
    """The first day (from 00:00 UTC) the price applies; none: always. Calls before it keep the price in effect
    then (an earlier override of the same model, or the list price). UTC, not `timezone`, so that it starts on the
    boundary of the ledger's UTC hours in every zone."""

    @field_validator("service_tier")
    @classmethod
    def _tier(cls, value: str) -> str:
        value = value.strip().lower()
        if value in _STANDARD_TIERS:
            raise ValueError(f"{value!r} is the standard tier: leave service_tier out for it")
        if value == "batch":
            raise ValueError("batch is processing, not a tier: use processing: batch")
        if value and not re.fullmatch(r"[a-z0-9][a-z0-9_.-]{0,62}", value):
            raise ValueError("must be a tier name as the provider reports it (letters, digits, `_`, `-`, `.`)")
        return value

    @field_validator("processing")
    @classmethod
    def _processing(cls, value: str) -> str:
        value = value.strip().lower()
        if value and value not in _PROCESSING:
            raise ValueError(f"must be {' or '.join(_PROCESSING)}, or left out for online calls")
        return value

    def price_keys(self) -> dict[str, Decimal]:
        """The prices under genai-prices' price keys (`pricing` prices them with genai-prices' unit registry)."""
        return {key: value for name, key in OVERRIDE_PRICE_KEYS.items() if (value := getattr(self, name)) is not None}


OVERRIDE_PRICE_KEYS = {
    "input_per_mtok": "input_mtok", "output_per_mtok": "output_mtok", "cache_read_per_mtok": "cache_read_mtok",
    "cache_write_per_mtok": "cache_write_mtok", "cache_write_1h_per_mtok": "cache_write_1h_mtok",
    "input_audio_per_mtok": "input_audio_mtok", "input_image_per_mtok": "input_image_mtok",
    "input_video_per_mtok": "input_video_mtok", "output_audio_per_mtok": "output_audio_mtok",
    "output_image_per_mtok": "output_image_mtok", "output_video_per_mtok": "output_video_mtok",
    "output_reasoning_per_mtok": "output_reasoning_mtok", "web_search_per_k": "web_searches_kcount",
    "code_execution_per_k": "code_executions_kcount", "request_per_k": "requests_kcount",
}
"""`PriceOverride` field -> genai-prices' price key."""


METRIC_LABELS = (*CALL_LABELS, *BASE_OWNER_LABELS, *OPTIONAL_OWNER_LABELS)
"""Every label a series can have: the call's, the owner's always there, the optional owner labels."""


RunKind = Literal[RUN_KINDS]  # type: ignore[valid-type]


class RunsConfig(Strict):
    """Cost per run, conversation and session (`costline runs`, `GET /api/v1/runs`): what the ledger keeps."""

    enabled: bool = True
    """Off: no run is recorded (the hourly rows and everything else are unchanged)."""
    retention_days: int = Field(default=RUN_RETENTION_DAYS, ge=1, le=3650)
    """A run's row is deleted this long after its last call."""
    kinds: list[RunKind] = Field(default_factory=lambda: list(RUN_KINDS))
    """Which runs are kept: `trace` (an agent run: every call of one trace), `conversation`
    (`gen_ai.conversation.id`), `session` (`session.id`)."""

    @field_validator("kinds")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("a kind appears twice")
        return value


class MetricsConfig(Strict):
    user_label: bool = OPTIONAL_OWNER_LABELS["user"]
    key_label: bool = OPTIONAL_OWNER_LABELS["key"]
    feature_label: bool = OPTIONAL_OWNER_LABELS["feature"]
    cost_center_label: bool = OPTIONAL_OWNER_LABELS["cost_center"]
    environment_label: bool = OPTIONAL_OWNER_LABELS["environment"]
    customer_label: bool = OPTIONAL_OWNER_LABELS["customer"]
    cardinality_limit: int = Field(default=1000, ge=1, le=1_000_000)
    cardinality_limits: dict[str, int] = Field(default_factory=dict)
    """Per-label limits that replace `cardinality_limit` for those labels, e.g. `{team: 200, model: 100}`."""
    ttft_buckets: list[float] = Field(
        default_factory=lambda: [0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0]
    )

    @field_validator("cardinality_limits")
    @classmethod
    def _known_labels(cls, value: dict[str, int]) -> dict[str, int]:
        for label, limit in value.items():
            if label not in METRIC_LABELS:
                raise ValueError(f"{label!r} is not a metric label; labels are {', '.join(METRIC_LABELS)}")
            if not 1 <= limit <= 1_000_000:
                raise ValueError(f"{label}: must be between 1 and 1000000")
        return value

    @field_validator("ttft_buckets")
    @classmethod
    def _sorted(cls, value: list[float]) -> list[float]:
        if not value or any(b <= a for a, b in zip(value, value[1:], strict=False)) or value[0] <= 0:
            raise ValueError("must be a non-empty list of positive, strictly increasing seconds")
        return value


class LimitsConfig(Strict):
    """Plausibility bounds on what one span may bill (see `normalize.bounds`)."""

    max_tokens_per_call: int = Field(default=10_000_000, ge=1, le=MAX_TOKENS)
    """Input (cache included) plus output tokens of one call; a span reporting more is rejected, not billed. The
    default is five times the largest context window on sale; a deployment of small models may want it lower."""
    max_span_age_hours: int | None = Field(default=None, ge=1, le=24 * 90)
    """How far before the processor's clock a span may start; an older one is rejected, not billed into a closed
    period. None: `dedup_retention_hours`, which it may not exceed (an older span's retry could not be recognised)."""
    max_span_future_seconds: int = Field(default=300, ge=0, le=86_400)
    """How far after the processor's clock a span may start (clock skew between hosts); a later one is rejected,
    not billed into a period to come (nor counted in today's budgets)."""


_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
RECONCILE_PROVIDERS = ("openai", "anthropic")
RECONCILE_IDENTITY_KINDS = {"openai": ("api_key_id", "project_id"), "anthropic": ("api_key_id", "workspace_id")}
"""Provider-side identities a `reconcile.identities` entry may name, per provider."""
RECONCILE_OWNER_KINDS = ("key", "user", "team")


class ReconcileProvider(Strict):
    """How `costline serve --reconcile-every` reaches one provider's admin reports. The admin key itself never
    goes in a file: only the name of the environment variable that holds it."""

    admin_key_env: Annotated[str, matching(_ENV_NAME, "must be the name of an environment variable (letters, "
                                                      "digits, '_'), not the key itself: admin keys are read from the "
                                                      "environment, never from a config file")]
    api_base: str | None = None
    costs: bool = True
    """Read the cost report too (billed USD per day and project/workspace)."""

    @field_validator("api_base")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^\s/]+", value):
            raise ValueError("must be an http(s) URL such as https://api.openai.com")
        return value


class ReconcileIdentity(Strict):
    """One provider-side identity (an API key id, an OpenAI project, an Anthropic workspace) and its owner."""

    provider: str
    api_key_id: str | None = None
    project_id: str | None = None
    workspace_id: str | None = None
    key: str | None = None
    user: str | None = None
    team: str | None = None

    @field_validator("provider")
    @classmethod
    def _provider(cls, value: str) -> str:
        if value not in RECONCILE_PROVIDERS:
            raise ValueError(f"must be one of {', '.join(RECONCILE_PROVIDERS)}")
        return value

    @model_validator(mode="after")
    def _one_each(self) -> ReconcileIdentity:
        allowed = RECONCILE_IDENTITY_KINDS[self.provider]
        given = [k for k in ("api_key_id", "project_id", "workspace_id") if getattr(self, k) is not None]
        wrong = [k for k in given if k not in allowed]
        if wrong:
            raise ValueError(f"{wrong[0]}: {self.provider} identities are {' or '.join(allowed)}")
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(allowed)}")
        owners = [k for k in RECONCILE_OWNER_KINDS if getattr(self, k) is not None]
        if len(owners) != 1:
            raise ValueError("give exactly one owner: key, user or team")
        return self

    @property
    def identity(self) -> tuple[str, str]:
        kind = next(k for k in ("api_key_id", "project_id", "workspace_id") if getattr(self, k) is not None)
        return kind, getattr(self, kind)

    @property
    def owner(self) -> tuple[str, str]:
        kind = next(k for k in RECONCILE_OWNER_KINDS if getattr(self, k) is not None)
        return kind, getattr(self, kind)


class ReconcileConfig(Strict):
    """`costline reconcile` and `costline serve --reconcile-every`: see docs/reconciliation.md."""

    providers: dict[str, ReconcileProvider] = Field(default_factory=dict)
    identities: list[ReconcileIdentity] = Field(default_factory=list)
    lookback_days: int = Field(default=7, ge=1, le=93)
    """Complete UTC days before today that each background run reconciles."""

    @field_validator("providers", mode="before")
    @classmethod
    def _known(cls, value: Any) -> Any:
        for name in value if isinstance(value, dict) else ():
            if name not in RECONCILE_PROVIDERS:
                raise ValueError(f"{name!r}: providers are {', '.join(RECONCILE_PROVIDERS)}")
        return value
# --- who may ask the API (`auth.py` checks requests against this) -------------------------------------------------
_TOKEN_HASH = re.compile(r"^sha256:[0-9a-f]{64}$")
_SEG = r"[^/\s:]+"
_ROLE = re.compile(rf"^(admin|system-admin|finance|guard|metrics|org-admin:{_SEG}|(team|team-admin):{_SEG}/{_SEG}"
                   rf"|member:{_SEG}/{_SEG}/{_SEG})$")
ROLE_RULE = ("must be system-admin (or admin), finance, guard, metrics, org-admin:<org>, team-admin:<org>/<team>, "
             "member:<org>/<team>/<user> or team:<org>/<team> (a team's read-only token)")
"""The roles of `docs/governance.md` (what each may do is `http/auth.py`'s table)."""


class ApiToken(Strict):
    """One bearer token of the `--http` API. Only its SHA-256 is kept (`costline hash-token` prints it)."""

    name: Annotated[str, matching(NAME, f"must be {NAME_RULE}")]
    sha256: Annotated[str, matching(_TOKEN_HASH, "must be 'sha256:' and 64 lowercase hex characters (`costline "
                                                 "hash-token` prints it); the token itself never goes in the config")]
    role: Annotated[str, matching(_ROLE, ROLE_RULE)]
    expires: datetime | None = None
    """After this instant the token is refused (401). A naive value is UTC."""
    user: str | None = None
    """The person the token belongs to (a user under `orgs`): once that user is retired the token is refused (403
    naming the user). A `member:` role's user is its own."""


class ApiConfig(Strict):
    tokens: list[ApiToken] = Field(default_factory=list)
    """None configured: the API answers without a token, and `costline serve` warns if it listens beyond loopback."""
    metrics_token_required: bool = False
    """`/metrics` also asks for a token, of role `metrics` (or `admin`); Prometheus sends it with `authorization` in
    its scrape config. Team and guard tokens are refused: the series carry every team's spend."""


class Approval(Strict):
    """A time-boxed yes to one `on_approval` pattern of one rule, for one team or user (made through the admin API,
    `governance/`; exported with the rest of the merged state)."""

    scope: Annotated[str, matching(re.compile(r"^[^/\s]+/[^/\s]+(/[^/\s]+)?$"), "must be <org>/<team> or "
                                                                             "<org>/<team>/<user>")]
    provider: str
    """The rule's provider key (`openai`, ..., `*`)."""
    model: ModelGlob
    """The rule's `on_approval` pattern it approves."""
    expires: datetime
    """Calls starting at or after this instant are refused again. A naive value is UTC."""
    reason: str = ""
    approved_by: str = ""


class CostlineConfig(Strict):
    timezone: str = "UTC"
    orgs: list[Org] = Field(default_factory=list)
    projects: list[Project] = Field(default_factory=list)
    budgets: list[ScopedBudget] = Field(default_factory=list)
    """Budgets of owners outside the org hierarchy: projects, customers, features, environments, models."""
    prices: list[PriceOverride] = Field(default_factory=list)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    dedup_retention_hours: int = Field(default=72, ge=1, le=24 * 90)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    chargeback: ChargebackConfig | None = None
    """How teams are charged (`costline chargeback`); none: no statement can be made."""
    reconcile: ReconcileConfig = Field(default_factory=ReconcileConfig)
    api: ApiConfig = Field(default_factory=ApiConfig)
    assistants: AssistantsConfig = Field(default_factory=AssistantsConfig)
    """Coding assistants' account identities → owners (`config/assistants.py`)."""
    runs: RunsConfig = Field(default_factory=RunsConfig)
    fleets: list[Fleet] = Field(default_factory=list)
    """Self-hosted fleets: their models are fleet-priced, their cost allocated by consumption (`config/chargeback.py`)."""
    approvals: list[Approval] = Field(default_factory=list)
    """Approved `on_approval` models (`governance/`: requested, approved and expiring through the admin API)."""

    @field_validator("timezone")
    @classmethod
    def _valid_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("must be an IANA time zone such as UTC or Europe/Berlin") from None
        return value

    @model_validator(mode="after")
    def _unique(self) -> CostlineConfig:
        errors: list[str] = []
        _duplicates(errors, "orgs", [o.name for o in self.orgs])
        _duplicates(errors, "projects", [p.name for p in self.projects])
        teams: dict[str, str] = {}
        users: dict[str, str] = {}
        fingerprints: dict[str, str] = {}
        for oi, org in enumerate(self.orgs):
            _duplicates(errors, f"orgs[{oi}].teams", [t.name for t in org.teams])
            for ti, team in enumerate(org.teams):
                where = f"orgs[{oi}].teams[{ti}]"
                if team.name in teams:
                    errors.append(f"{where}.name: team {team.name!r} is already defined at {teams[team.name]}; "
                                  "team names are unique across orgs")
                teams.setdefault(team.name, where)
                for ui, user in enumerate(team.users):
                    uwhere = f"{where}.users[{ui}]"
                    if user.name in users:
                        errors.append(f"{uwhere}.name: user {user.name!r} is already defined at {users[user.name]}")
                    users.setdefault(user.name, uwhere)
                    for ki, key in enumerate(user.keys):
                        kwhere = f"{uwhere}.keys[{ki}]"
                        if key.fingerprint in fingerprints:
                            errors.append(f"{kwhere}.fingerprint: already registered at {fingerprints[key.fingerprint]}")
                        fingerprints.setdefault(key.fingerprint, kwhere)
        seen_prices: set[tuple[str, str, str, str, date | None]] = set()
        for pi, price in enumerate(self.prices):
            ident = (price.provider, price.model, price.service_tier, price.processing, price.effective_from)
            if ident in seen_prices:
                since = f" effective from {price.effective_from}" if price.effective_from else " without effective_from"
                context = "".join(f" {name} {value}" for name, value in (("tier", price.service_tier),
                                                                          ("processing", price.processing)) if value)
                errors.append(f"prices[{pi}].effective_from: a price for {price.provider}/{price.model}{context}"
                              f"{since} is already configured; several prices of one model in one context need "
                              "distinct effective_from dates")
            seen_prices.add(ident)
        _reconcile_owners(errors, self.reconcile, teams, users,
                          {key.name for o in self.orgs for t in o.teams for u in t.users for key in u.keys})
        _check_api(errors, self)
        _budgets_within_parents(errors, self)
        _duplicate_scoped_budgets(errors, self.budgets)
        errors.extend(self.assistants.validate_against(teams, users))
        _chargeback_teams(errors, self)
        errors.extend(check_fleets(self.fleets))
        for pi, price in enumerate(self.prices):
            for fi, fleet in enumerate(self.fleets):
                if fleet.serves(price.provider, price.model):
                    errors.append(f"prices[{pi}].model: {price.provider}/{price.model} is fleet-priced by fleets[{fi}] "
                                  f"({fleet.name}); a model has a price per token or a fleet, not both")
        if (self.limits.max_span_age_hours or 0) > self.dedup_retention_hours:
            errors.append(f"limits.max_span_age_hours: {self.limits.max_span_age_hours} exceeds dedup_retention_hours "
                          f"({self.dedup_retention_hours}): a retry of an older span could not be recognised and would "
                          "be billed again; raise dedup_retention_hours too")
        if errors:
            raise ValueError("\n".join(errors))
        return self

    @property
    def max_span_age_hours(self) -> int:
        """The oldest span start accepted, in hours before now (`limits.max_span_age_hours`)."""
        return self.limits.max_span_age_hours or self.dedup_retention_hours

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def _reconcile_owners(errors: list[str], reconcile: ReconcileConfig, teams: dict[str, str], users: dict[str, str],
                      keys: set[str]) -> None:
    """Every identity's owner is defined under `orgs`, and no identity is mapped twice."""
    known = {"key": keys, "user": set(users), "team": set(teams)}
    seen: dict[tuple[str, str, str], int] = {}
    for i, entry in enumerate(reconcile.identities):
        kind, name = entry.owner
        if name not in known[kind]:
            errors.append(f"reconcile.identities[{i}].{kind}: {kind} {name!r} is not defined under orgs; an "
                          "identity maps to a configured key, user or team")
        ident = (entry.provider, *entry.identity)
        if ident in seen:
            errors.append(f"reconcile.identities[{i}].{ident[1]}: {entry.provider} {ident[1]} {ident[2]!r} is "
                          f"already mapped at reconcile.identities[{seen[ident]}]")
        seen.setdefault(ident, i)
def _budgets_within_parents(errors: list[str], config: CostlineConfig) -> None:
    """No budget of the org hierarchy is over its parent's for the same period and unit (the nearest ancestor that
    sets one): the parent's would bind first and the child's could never be reached, which is a typo or a
    misunderstanding."""

    def walk(node: Any, where: str, above: dict[tuple[str, str], tuple[Any, str]]) -> None:
        own = dict(above)
        if node.budget is not None:
            for period, unit, limit, key in node.budget.amounts():
                parent = above.get((period, unit))
                if parent is not None and limit > parent[0]:
                    errors.append(f"{where}.budget.{key}: {limit} is over its parent's budget {parent[1]} "
                                  f"({parent[0]}); a budget at one level covers those below it, so a child's may "
                                  "not exceed it")
                own[(period, unit)] = (limit, f"{where}.budget.{key}")
        attr = _CHILDREN.get(type(node))
        for i, child in enumerate(getattr(node, attr) if attr else ()):
            walk(child, f"{where}.{attr}[{i}]", own)

    for oi, org in enumerate(config.orgs):
        walk(org, f"orgs[{oi}]", {})


def _duplicate_scoped_budgets(errors: list[str], budgets: list[ScopedBudget]) -> None:
    """One entry per scope, name and mode: a second would make two budgets of one owner look like one."""
    seen: dict[tuple[str, str, str], int] = {}
    for i, budget in enumerate(budgets):
        ident = (budget.scope, budget.name, budget.mode)
        if ident in seen:
            errors.append(f"budgets[{i}]: a {budget.mode} budget of {budget.scope} {budget.name!r} is already given "
                          f"at budgets[{seen[ident]}]; put its amounts in one entry")
        seen.setdefault(ident, i)


def _check_api(errors: list[str], config: CostlineConfig) -> None:
    """Token names and hashes unique; a team role names a team of the config."""
    tokens = config.api.tokens
    _duplicates(errors, "api.tokens", [t.name for t in tokens])
    hashes: dict[str, int] = {}
    orgs = {org.name for org in config.orgs}
    teams = {(org.name, team.name) for org in config.orgs for team in org.teams}
    users = {(org.name, team.name, user.name) for org in config.orgs for team in org.teams for user in team.users}
    for i, token in enumerate(tokens):
        if token.sha256 in hashes:
            errors.append(f"api.tokens[{i}].sha256: the same token as api.tokens[{hashes[token.sha256]}]")
        hashes.setdefault(token.sha256, i)
        kind, _, path = token.role.partition(":")
        parts = tuple(path.split("/")) if path else ()
        if kind == "org-admin" and parts[0] not in orgs:
            errors.append(f"api.tokens[{i}].role: no org {parts[0]!r} in this config")
        elif kind in ("team", "team-admin") and parts not in teams:
            errors.append(f"api.tokens[{i}].role: no team {parts[1]!r} in org {parts[0]!r} in this config")
        elif kind == "member" and parts not in users:
            errors.append(f"api.tokens[{i}].role: no user {parts[2]!r} in team {parts[0]}/{parts[1]} in this config")
        if token.user is not None and token.user not in {u for _, _, u in users}:
            errors.append(f"api.tokens[{i}].user: no user {token.user!r} in this config")


def _chargeback_teams(errors: list[str], config: CostlineConfig) -> None:
    """With an `orgs:` hierarchy, the teams a fixed split or `unattributed.team` charge are teams of it: a typo
    would otherwise bill a team that does not exist (and grow the statement's total)."""
    if config.chargeback is None or not config.orgs:
        return
    known = {(org.name, team.name) for org in config.orgs for team in org.teams}
    named = [(f"shared_costs[{i}].split", ref) for i, cost in enumerate(config.chargeback.shared_costs)
             if isinstance(cost.split, dict) for ref in cost.split]
    if not isinstance(config.chargeback.unattributed, str):
        named.append(("unattributed.team", config.chargeback.unattributed.team))
    for where, ref in named:
        org, _, team = ref.rpartition("/")
        if not any(team == t and org in ("", o) for o, t in known):
            errors.append(f"chargeback.{where}: team {ref!r} is not defined under orgs; a fixed split and "
                          "unattributed.team charge teams of the hierarchy")


def _duplicates(errors: list[str], where: str, names: list[str]) -> None:
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            errors.append(f"{where}[{i}].name: duplicate name {name!r}")
        seen.add(name)


def _format_errors(err: ValidationError) -> list[str]:
    out: list[str] = []
    for e in err.errors():
        loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in e["loc"]).lstrip(".")
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling against docs/configuration.md)"
        elif e["type"] == "missing":
            msg = "required key is missing"
        for line in msg.split("\n"):
            out.append(f"{loc}: {line}" if loc else line)
    return out


def parse_config(data: Any) -> CostlineConfig:
    """Validate a decoded YAML/JSON document. Raises `ConfigError` listing every problem."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(["(top level): must be a mapping of keys (timezone, orgs, projects, prices, metrics)"])
    try:
        return CostlineConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_errors(err)) from None


class _DuplicateKey(yaml.YAMLError):
    def __init__(self, key: object, first: yaml.Mark, again: yaml.Mark) -> None:
        super().__init__(f"duplicate key {key!r} at line {again.line + 1}, column {again.column + 1} (first at line "
                         f"{first.line + 1}): only one may be given")


class _UniqueKeyLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` that refuses a key given twice in one mapping (plain YAML keeps the last one silently, so a
    second `budget:` would replace the first without a word). Keys merged in with `<<:` may still be overridden."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[object, yaml.Mark] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.setdefault(key, key_node.start_mark)
            except TypeError:
                continue  # an unhashable key: the base class reports it
            if first is not key_node.start_mark:
                raise _DuplicateKey(key, first, key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


def load_config(path: str | Path | None) -> CostlineConfig:
    """The config at `path`; the empty default config when `path` is None (the processor runs without one)."""
    if path is None:
        return CostlineConfig()
    try:
        raw = Path(path).read_bytes()
    except OSError as err:
        raise ConfigError([f"{path}: cannot read: {err.strerror or err}"]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        column = err.start - (raw.rfind(b"\n", 0, err.start) + 1) + 1
        raise ConfigError([f"{path}: not UTF-8 text: byte 0x{raw[err.start]:02x} at line {line}, column {column} "
                           "(save the file as UTF-8)"]) from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except _DuplicateKey as err:
        raise ConfigError([f"{path}: {err}"]) from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "?"
        raise ConfigError([f"{path}: not valid YAML at {where}: {getattr(err, 'problem', err)}"]) from None
    return parse_config(data)


def check_config(path: str | Path) -> list[str]:
    """Every problem of the config at `path` as `key: rule` lines; empty when it is valid."""
    try:
        load_config(path)
    except ConfigError as err:
        return err.errors
    return []
