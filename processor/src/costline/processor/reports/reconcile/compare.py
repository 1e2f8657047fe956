"""The provider's report against the ledger, per day × model × owner of a provider identity.

A provider row is attributed by its API key when the config maps that key, else by its project (OpenAI) or
workspace (Anthropic) when mapped, else to `untracked`. Ledger rows are attributed to the most specific mapped owner
they fall under (their key, else their user, else their team). Models are matched by the price table's canonical
id, so a dated snapshot and its alias meet; a provider row of a model the price table does not know is reported as
**unpriced** (`Result.unpriced`: its tokens, no amount) and left out of the compared rows, never priced at $0.

Both sides are priced in integer pico-dollars at the rates the ledger uses (flat base rates, as `reprice` does
for sums): a row whose tokens agree has zero drift. A row that no span saw is **untracked** spend of its owner;
on rows spans did see, `drift = provider - ledger`. A cost report, when read, is held against the provider's
priced usage per day and project/workspace (`BilledCheck`): that gap is price, not token, drift.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any, NamedTuple

from costline.processor.model import LLMCall
from costline.processor.reports.reconcile.providers import ProviderReport
from costline.processor.reports.reconcile.report import IDENTITY_KINDS, UsageRow
from costline.processor.units import NS_PER_S, usd_to_pico

UNTRACKED = "untracked"
"""The owner of spend under a provider identity no config entry maps."""
LEDGER_GROUP_BY = ("day", "provider", "model", "org", "team", "user", "key")


class OwnerRef(NamedTuple):
    """A Costline owner: `kind` is key, user, team (or `untracked`); org and team locate it for roll-ups."""

    kind: str
    name: str
    org: str = ""
    team: str = ""


UNTRACKED_OWNER = OwnerRef(UNTRACKED, UNTRACKED, "", UNTRACKED)


@dataclass
class Row:
    provider: str
    day: date
    model: str
    owner: OwnerRef
    identity: str
    """The provider identities of the row, `kind:id` comma-joined; "" for ledger spend no identity maps to."""
    provider_tokens: list[int] = field(default_factory=lambda: [0, 0, 0, 0])
    ledger_tokens: list[int] = field(default_factory=lambda: [0, 0, 0, 0])
    provider_requests: int | None = None
    ledger_requests: int = 0
    provider_cost_pico: int = 0
    ledger_cost_pico: int = 0

    @property
    def tracked(self) -> bool:
        """Some span saw spend of this owner, model and day."""
        return self.ledger_requests > 0

    @property
    def drift_pico(self) -> int:
        return self.provider_cost_pico - self.ledger_cost_pico if self.tracked else 0

    @property
    def untracked_pico(self) -> int:
        return 0 if self.tracked else self.provider_cost_pico


@dataclass
class BilledCheck:
    """A cost report's amount for one day and scope against the provider's usage of that scope, priced."""

    day: date
    scope_kind: str
    scope_id: str
    billed_usd: Decimal
    priced_pico: int


@dataclass(frozen=True)
class Unpriced:
    """Provider usage of a model the price table does not know, per day, model and identity: reported, not
    compared (there is no rate to price it at) and not stored."""

    day: date
    model: str
    identity: str
    tokens: tuple[int, int, int, int]
    """Uncached input, cache read, cache write, output (`report.TOKEN_TYPES`)."""
    requests: int | None


@dataclass
class Result:
    provider: str
    start: date
    end: date
    rows: list[Row]
    billed: list[BilledCheck] | None
    sources: list[str]
    unpriced: list[Unpriced] = field(default_factory=list)

    def total_pico(self, name: str) -> int:
        return sum(getattr(r, name) for r in self.rows)

    @property
    def drift_share(self) -> Decimal:
        """|drift| over the provider's cost of the rows spans saw (0 when there is none)."""
        tracked = sum(r.provider_cost_pico for r in self.rows if r.tracked)
        return Decimal(abs(self.total_pico("drift_pico"))) / tracked if tracked else Decimal(0)


class IdentityMap(NamedTuple):
    """The config's identities for one provider, resolved to owners."""

    by_identity: dict[tuple[str, str], OwnerRef]
    owners: dict[tuple[str, str], OwnerRef]
    """(kind, name) -> owner, for attributing ledger rows."""


def mapping_for(provider: str, identities: Mapping[tuple[str, str], OwnerRef]) -> IdentityMap:
    kinds = IDENTITY_KINDS[provider]
    by_identity = {k: v for k, v in identities.items() if k[0] in kinds}
    return IdentityMap(by_identity, {(o.kind, o.name): o for o in by_identity.values()})


def compare(report: ProviderReport, ledger_rows: Iterable[Mapping[str, Any]],
            identities: Mapping[tuple[str, str], OwnerRef], rates_for: Any) -> Result:
    """`ledger_rows` as `Ledger.usage(..., LEDGER_GROUP_BY)` returns them (UTC days); `identities` maps
    (kind, id) to an owner; `rates_for(provider, model, unix_nano)` is the pipeline's pricer. Usage of a model the
    price table does not know goes to `Result.unpriced`."""
    provider = report.provider
    mapped = mapping_for(provider, identities)
    rows: dict[tuple, Row] = {}
    scope_kind = IDENTITY_KINDS[provider][1]
    priced_scope: dict[tuple[date, str], int] = {}
    unpriced: dict[tuple[date, str, str], tuple[list[int], int | None]] = {}

    def row_for(day: date, model: str, owner: OwnerRef, identity: str) -> Row:
        key = (day, model, owner, identity if owner.kind == UNTRACKED else "")
        row = rows.get(key)
        if row is None:
            row = rows[key] = Row(provider, day, model, owner, identity)
        elif identity and identity not in row.identity.split(","):
            row.identity = ",".join(sorted(filter(None, [*row.identity.split(","), identity])))
        return row

    for usage in report.usage:
        rates = rates_for(provider, usage.model, _nano(usage.day))
        owner, identity = _attribute(usage, mapped, provider)
        tokens = (usage.uncached_input, usage.cache_read, usage.cache_write, usage.output)
        if rates is None:
            slot = unpriced.setdefault((usage.day, usage.model, identity), ([0, 0, 0, 0], None))
            counts = [a + b for a, b in zip(slot[0], tokens, strict=True)]
            requests = slot[1] if usage.requests is None else (slot[1] or 0) + usage.requests
            unpriced[(usage.day, usage.model, identity)] = (counts, requests)
            continue
        model = _canonical(rates.model_id)
        row = row_for(usage.day, model, owner, identity)
        row.provider_tokens = [a + b for a, b in zip(row.provider_tokens, tokens, strict=True)]
        if usage.requests is not None:
            row.provider_requests = (row.provider_requests or 0) + usage.requests
        cost = _flat_cost(rates, tokens)
        row.provider_cost_pico += cost
        scope = usage.identity(scope_kind) or ""
        priced_scope[(usage.day, scope)] = priced_scope.get((usage.day, scope), 0) + cost

    for lrow in ledger_rows:
        if lrow["provider"] != provider:
            continue
        day = date.fromisoformat(lrow["day"])
        if not report.start <= day < report.end:
            continue
        rates = rates_for(provider, lrow["model"], _nano(day)) if lrow["model"] else None
        model = _canonical(rates.model_id) if rates is not None else (lrow["model"] or "")
        owner = _ledger_owner(lrow, mapped)
        row = row_for(day, model, owner, "")
        tokens = (lrow["input_tokens"], lrow["cache_read_tokens"], lrow["cache_write_tokens"], lrow["output_tokens"])
        row.ledger_tokens = [a + int(b) for a, b in zip(row.ledger_tokens, tokens, strict=True)]
        row.ledger_requests += int(lrow["requests"])
        row.ledger_cost_pico += usd_to_pico(Decimal(lrow["cost_usd"]))

    billed = None
    if report.billed is not None:
        amounts: dict[tuple[date, str], Decimal] = {}
        for b in report.billed:
            amounts[(b.day, b.scope_id)] = amounts.get((b.day, b.scope_id), Decimal(0)) + b.amount_usd
        billed = [BilledCheck(day, scope_kind, scope, amounts.get((day, scope), Decimal(0)),
                              priced_scope.get((day, scope), 0))
                  for day, scope in sorted(set(amounts) | set(priced_scope))]
    ordered = sorted(rows.values(), key=lambda r: (r.day, r.owner.kind, r.owner.name, r.model, r.identity))
    return Result(provider, report.start, report.end, ordered, billed, list(report.sources),
                  [Unpriced(day, model, identity, tuple(counts), requests)  # type: ignore[arg-type]
                   for (day, model, identity), (counts, requests) in sorted(unpriced.items())])


def _attribute(usage: UsageRow, mapped: IdentityMap, provider: str) -> tuple[OwnerRef, str]:
    for kind in IDENTITY_KINDS[provider]:
        ident = usage.identity(kind)
        if ident is not None and (kind, ident) in mapped.by_identity:
            return mapped.by_identity[(kind, ident)], f"{kind}:{ident}"
    for kind in IDENTITY_KINDS[provider]:  # unmapped: named by its most specific identity
        ident = usage.identity(kind)
        if ident is not None:
            return UNTRACKED_OWNER, f"{kind}:{ident}"
    return UNTRACKED_OWNER, ""


def _ledger_owner(lrow: Mapping[str, Any], mapped: IdentityMap) -> OwnerRef:
    for kind in ("key", "user", "team"):
        found = mapped.owners.get((kind, lrow[kind]))
        if found is not None and lrow[kind]:
            return found
    # Spend spans saw that no mapped identity covers: shown under its own owner, with nothing from the provider.
    for kind in ("key", "user", "team"):
        if lrow[kind]:
            return OwnerRef(kind, lrow[kind], lrow["org"], lrow["team"])
    return OwnerRef("team", lrow["team"], lrow["org"], lrow["team"])


def _canonical(model_id: str) -> str:
    return model_id.rsplit("/", 1)[-1]


def _nano(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp()) * NS_PER_S


def _flat_cost(rates: Any, tokens: tuple[int, int, int, int]) -> int:
    from costline.processor.pricing.rates import Rates

    flat = Rates(rates.source, rates.model_id, rates.flat) if rates.tiered else rates
    uncached, read, write, output = tokens
    return flat.cost_pico(LLMCall(provider="", request_model=None, response_model=None, operation="chat",
                                  input_tokens=uncached, cache_read_tokens=read, cache_write_tokens=write,
                                  output_tokens=output))

