"""The chargeback statement: one calendar month of the ledger turned into charges per team.

Every amount is computed exactly (`decimal.Decimal`: token costs are whole pico-dollars, markups and per-outcome
rates are finite decimals) and rounded to the cent once, here, at the statement:

1. Each pool that is spread over teams (a shared cost, the unattributed spend) is a whole number of cents and is
   split by largest remainder, so its shares add up to it exactly.
2. The grand total is the exact sum of every line, rounded half-up to the cent.
3. The grand total is distributed over the teams by largest remainder on their exact totals, then each team's
   total over its lines the same way: team totals add up to the grand total, lines to their team's total, and the
   component totals (sums of the rounded lines) to the grand total, all exactly. A line that is already whole cents
   (a fee, a share of a pool) is never moved by this.

Ties between equal remainders go to the first in order (teams by `org/team`, lines in statement order), so the same
ledger always gives the same statement.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from costline.processor.config.chargeback import ChargebackConfig, Charging, Fleet
from costline.processor.formats import cents_text, decimal_text, usd_text
from costline.processor.overflow import OVERFLOW, kept_values
from costline.processor.ownership import UNATTRIBUTED
from costline.processor.units import CENT, TOKENS_PER_MTOK, ceil_hour, round_cents

TOKEN_COLUMNS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
"""Disjoint token counts whose sum is a team's volume (reasoning tokens are a subset of output)."""
UNPRICED_TOKEN_COLUMNS = tuple(f"unpriced_{c}" for c in TOKEN_COLUMNS)

COMPONENTS = ("token_cost", "markup", "platform_fee", "value_based", "seats", "fleet", "shared_cost", "unattributed",
              "untracked", "correction")
"""The kinds of line, in the order a team's lines are listed."""
OPTIONAL_COMPONENTS = ("seats", "fleet")
"""Components in a statement's totals only when one of its lines is of that kind."""
UNMAPPED = "untracked"
"""The key, in a statement's untracked spend, of the spend under provider identities the config maps to no owner."""
CORRECTION_ONLY = "correction"
"""The model of a team in the statement only for corrections of a closed period: it is charged nothing else."""

NO_CHARGEBACK = "no `chargeback:` section in the config: nothing says how teams are charged (see docs/chargeback.md)"
_PERIOD = re.compile(r"^(\d{4})-(\d{2})$")


class StatementError(ValueError):
    """The statement cannot be made as asked (no `chargeback:` section, a bad period, an ambiguous team)."""


@dataclass(frozen=True, slots=True, order=True)
class Period:
    """A calendar month; its bounds are midnight of its first day and of the next month's, in the given zone."""

    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Period:
        match = _PERIOD.match(text.strip())
        # Up to 9998-12: a month's end is the next month's first instant, and year 10000 has none.
        if not match or not 1 <= int(match[2]) <= 12 or not 1970 <= int(match[1]) <= 9998:
            raise StatementError(f"period {text!r}: expected a calendar month as YYYY-MM between 1970-01 and "
                                 "9998-12, e.g. 2026-11")
        return cls(int(match[1]), int(match[2]))

    @classmethod
    def containing(cls, instant: datetime, tz: ZoneInfo) -> Period:
        local = instant.astimezone(tz)
        return cls(local.year, local.month)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    def start(self, tz: ZoneInfo) -> datetime:
        return datetime(self.year, self.month, 1, tzinfo=tz)

    def end(self, tz: ZoneInfo) -> datetime:
        return self.next().start(tz)

    def ledger_bounds(self, tz: ZoneInfo) -> tuple[datetime, datetime]:
        """The ledger hours the month is read from: those that start in it, [start, end) both rounded up to the UTC
        hour alike. An hour row holding a month's boundary (a zone whose offset is not whole hours) belongs to the
        month its start is in: once, never in both months."""
        return ceil_hour(self.start(tz)), ceil_hour(self.end(tz))

    def next(self) -> Period:
        return Period(self.year + self.month // 12, self.month % 12 + 1)

    def previous(self) -> Period:
        return Period(self.year - (self.month == 1), (self.month - 2) % 12 + 1)

    @property
    def days(self) -> int:
        return calendar.monthrange(self.year, self.month)[1]


@dataclass(frozen=True, slots=True)
class TeamUsage:
    """What the ledger says about one team in the period (its input to the statement)."""

    org: str
    team: str
    requests: int = 0
    tokens: int = 0
    cost: Decimal = Decimal(0)
    """USD, exact: the priced calls' cost (list or negotiated price)."""
    unpriced_requests: int = 0
    unpriced_tokens: int = 0
    outcomes: Mapping[str, int] = field(default_factory=dict)
    usage_missing_requests: int = 0
    """Successful calls whose span reported no usage: their cost is unknown (in no line, never $0)."""
    reported_cost_requests: int = 0
    """Calls whose span carried a cost someone else computed (provider, gateway, instrumentation)..."""
    reported_cost: Decimal = Decimal(0)
    """...that cost, exact USD, beside..."""
    priced_cost_of_reported: Decimal = Decimal(0)
    """...Costline's price of the same calls (which is what the lines charge)..."""
    cost_disagreements: int = 0
    """...and how many of them differ from it by more than `model.COST_DISAGREEMENT`."""
    active_members: int = 0
    """Users with at least one call in the period (the `user` owner; calls without one are nobody's seat)."""
    fleet_use: Mapping[str, int] = field(default_factory=dict)
    """Per fleet (`fleets:`): the team's consumption of its models, in the fleet's `allocate_by` unit (tokens, or
    milliseconds of requests)."""

    @property
    def key(self) -> str:
        return f"{self.org}/{self.team}"


@dataclass(frozen=True, slots=True)
class Line:
    component: str
    """One of `COMPONENTS`."""
    exact: Decimal
    """USD, before rounding."""
    amount: Decimal = Decimal(0)
    """USD, whole cents: what is billed."""
    name: str = ""
    """The shared cost's or the outcome's name, where the component has several lines."""
    detail: str = ""
    """How the amount came about, in words (the rate, the tier, the share)."""
    quantity: int | None = None
    """Outcomes charged, for a value-based line; active members, for a `seats` line; the consumption a `fleet` line
    was allocated by."""

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"component": self.component, "name": self.name, "amount_usd": usd_text(self.amount),
                               "exact_usd": decimal_text(self.exact), "detail": self.detail}
        if self.quantity is not None:
            out["quantity"] = self.quantity
        return out


@dataclass(frozen=True, slots=True)
class TeamStatement:
    org: str
    team: str
    model: str
    """`cost-plus` (token cost, markup, fee) or `value-based` (per outcome, plus fee)."""
    markup_pct: Decimal
    markup_source: str
    """`team`, `default`, or the tier that applied (`tier 2: 10-100 Mtok`)."""
    usage: TeamUsage
    lines: tuple[Line, ...]
    total: Decimal = Decimal(0)

    @property
    def key(self) -> str:
        return f"{self.org}/{self.team}"

    def as_dict(self) -> dict[str, Any]:
        u = self.usage
        return {
            "team": self.key, "org": self.org, "name": self.team, "model": self.model,
            "markup_pct": decimal_text(self.markup_pct), "markup_source": self.markup_source,
            "usage": {"requests": u.requests, "tokens": u.tokens, "cost_usd": decimal_text(u.cost),
                      "unpriced_requests": u.unpriced_requests, "unpriced_tokens": u.unpriced_tokens,
                      "usage_missing_requests": u.usage_missing_requests,
                      "reported_cost": {"requests": u.reported_cost_requests,
                                        "reported_usd": decimal_text(u.reported_cost),
                                        "priced_usd": decimal_text(u.priced_cost_of_reported),
                                        "disagreements": u.cost_disagreements},
                      "outcomes": dict(sorted(u.outcomes.items())),
                      **({"active_members": u.active_members} if u.active_members else {}),
                      **({"fleet_use": dict(sorted(u.fleet_use.items()))} if u.fleet_use else {})},
            "lines": [line.as_dict() for line in self.lines],
            "total_usd": usd_text(self.total),
        }


@dataclass(frozen=True, slots=True)
class FleetAllocation:
    """A fleet's month on the statement: its cost (whole cents), the consumption it was allocated by, and what no
    team's consumption took (all of it in a month nobody used the fleet: shown, never divided by zero)."""

    name: str
    cost: Decimal
    allocate_by: str
    consumption: int
    allocated: Decimal
    how: str = ""

    @property
    def unallocated(self) -> Decimal:
        return self.cost - self.allocated

    @property
    def usd_per_unit(self) -> Decimal | None:
        """The effective rate: cost / consumption (USD per token, or per request-second); None without consumption."""
        if not self.consumption:
            return None
        per = self.consumption if self.allocate_by == "tokens" else Decimal(self.consumption) / 1000
        return Decimal(self.cost) / Decimal(per)

    def as_dict(self) -> dict[str, Any]:
        rate = self.usd_per_unit
        return {"name": self.name, "cost_usd": usd_text(self.cost.quantize(CENT)), "cost_basis": self.how,
                "allocate_by": self.allocate_by, "consumption": self.consumption,
                "allocated_usd": usd_text(self.allocated.quantize(CENT)),
                "unallocated_usd": usd_text(self.unallocated.quantize(CENT)),
                "effective_usd_per_unit": None if rate is None else decimal_text(rate.quantize(Decimal("1E-12")))}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> FleetAllocation:
        return cls(doc["name"], Decimal(doc["cost_usd"]), doc["allocate_by"], doc["consumption"],
                   Decimal(doc["allocated_usd"]), doc.get("cost_basis", ""))


@dataclass(frozen=True, slots=True)
class Statement:
    period: Period
    timezone: str
    start: datetime
    end: datetime
    teams: tuple[TeamStatement, ...]
    total: Decimal
    unattributed_cost: Decimal
    """The exact cost of calls no team owns, spread over the teams (rounded to the cent before the split)."""
    closed_at: datetime | None = None
    """When the period was closed (`chargeback.periods`): the statement is then the one frozen at that moment."""
    untracked: Mapping[str, Decimal] = field(default_factory=dict)
    """Untracked spend of the month (billed by a provider, seen by no span; `costline reconcile`), exact USD per
    owning team (`org/team`) and, under `UNMAPPED`, of identities no one owns. Shown always; charged as `untracked`
    lines only when `untracked_rule` is `charge`."""
    untracked_rule: str = "show"
    whole: Mapping[str, Decimal] | None = None
    """On one page of a statement (`page`): the whole statement's `components`."""
    fleets: tuple[FleetAllocation, ...] = ()
    """Each self-hosted fleet's cost of the month and how much of it the teams' consumption took."""

    @property
    def components(self) -> dict[str, Decimal]:
        """Sum of the rounded lines per component: these add up to `total` exactly."""
        if self.whole is not None:
            return dict(self.whole)
        used = {line.component for team in self.teams for line in team.lines}
        # Seats and fleets are listed only on statements that charge them: earlier statements keep their shape.
        out = {c: Decimal("0.00") for c in COMPONENTS if c not in OPTIONAL_COMPONENTS or c in used}
        for team in self.teams:
            for line in team.lines:
                out[line.component] += line.amount
        return out

    def only(self, ref: str, *, private: bool = False) -> Statement:
        """The statement restricted to one team (`team` or `org/team`): its lines, the total become that team's, and
        of the untracked spend only its own (no other team's name, no unmapped spend). A team without charges in the
        period is an error naming the period's teams, or with `private` (the caller may see that team only) an
        empty statement naming no one."""
        teams = tuple(t for t in self.teams if ref in (t.key, t.team))
        if not teams and not private:
            known = ", ".join(t.key for t in self.teams) or "none"
            raise StatementError(f"team {ref!r} has no charges in {self.period} (teams: {known})")
        keys = {t.key for t in teams} | ({ref} if "/" in ref else set())
        return replace(self, teams=teams, total=sum((t.total for t in teams), Decimal("0.00")),
                       untracked={k: v for k, v in self.untracked.items() if k in keys})

    def page(self, offset: int, limit: int) -> Statement:
        """Teams `offset` to `offset + limit` (in statement order) of the statement; its totals, components and
        untracked spend stay the whole statement's, so every page says what the month adds up to."""
        return replace(self, teams=self.teams[offset: offset + limit], whole=self.components)

    def as_dict(self) -> dict[str, Any]:
        return {
            "period": str(self.period), "timezone": self.timezone, "currency": "USD",
            "from": self.start.isoformat(), "to": self.end.isoformat(),
            "teams": [t.as_dict() for t in self.teams],
            "components": {c: usd_text(v) for c, v in self.components.items()},
            "unattributed_cost_usd": decimal_text(self.unattributed_cost),
            "total_usd": usd_text(self.total),
            "closed_at": self.closed_at.isoformat() if self.closed_at else None,
            "untracked": {"rule": self.untracked_rule,
                          "teams": {k: decimal_text(v) for k, v in sorted(self.untracked.items()) if k != UNMAPPED},
                          "unmapped_usd": decimal_text(self.untracked.get(UNMAPPED, Decimal(0))),
                          "total_usd": decimal_text(sum(self.untracked.values(), Decimal(0)))},
            **({"fleets": [f.as_dict() for f in self.fleets]} if self.fleets else {}),
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Statement:
        """The statement `as_dict` made (a closed period's stored document): `from_dict(d).as_dict() == d`."""
        teams = []
        for t in doc["teams"]:
            u = t["usage"]
            # Statements frozen before calls without usage and reported costs were kept have neither: they had none.
            reported = u.get("reported_cost") or {"requests": 0, "reported_usd": "0", "priced_usd": "0",
                                                  "disagreements": 0}
            usage = TeamUsage(t["org"], t["name"], u["requests"], u["tokens"], Decimal(u["cost_usd"]),
                              u["unpriced_requests"], u["unpriced_tokens"], dict(u["outcomes"]),
                              u.get("usage_missing_requests", 0), reported["requests"],
                              Decimal(reported["reported_usd"]), Decimal(reported["priced_usd"]),
                              reported["disagreements"], u.get("active_members", 0), dict(u.get("fleet_use", {})))
            lines = tuple(Line(x["component"], Decimal(x["exact_usd"]), Decimal(x["amount_usd"]), x["name"],
                               x["detail"], x.get("quantity")) for x in t["lines"])
            teams.append(TeamStatement(t["org"], t["name"], t["model"], Decimal(t["markup_pct"]), t["markup_source"],
                                       usage, lines, Decimal(t["total_usd"])))
        closed = doc.get("closed_at")
        # Statements frozen before untracked spend was read have no `untracked`: they showed none.
        untracked = doc.get("untracked") or {"rule": "show", "teams": {}, "unmapped_usd": "0"}
        spend = {k: Decimal(v) for k, v in untracked["teams"].items()}
        if Decimal(untracked["unmapped_usd"]):
            spend[UNMAPPED] = Decimal(untracked["unmapped_usd"])
        return cls(Period.parse(doc["period"]), doc["timezone"], datetime.fromisoformat(doc["from"]),
                   datetime.fromisoformat(doc["to"]), tuple(teams), Decimal(doc["total_usd"]),
                   Decimal(doc["unattributed_cost_usd"]), datetime.fromisoformat(closed) if closed else None,
                   spend, untracked["rule"], fleets=tuple(FleetAllocation.from_dict(f) for f in doc.get("fleets", ())))


# --- computing ------------------------------------------------------------------------------------------------------


def team_usage(rows: Iterable[Mapping[str, Any]], outcomes: Iterable[Mapping[str, Any]] = (), *,
               members: Mapping[tuple[str, str], int] | None = None,
               fleet_use: Mapping[tuple[str, str], Mapping[str, int]] | None = None) -> list[TeamUsage]:
    """`TeamUsage` per (org, team) from ledger rows grouped by org and team (more group columns are summed over),
    outcome rows (`org`, `team`, `name`, `count`), active members and fleet consumption per (org, team)."""
    acc: dict[tuple[str, str], dict[str, Any]] = {}

    def slot(org: str, team: str) -> dict[str, Any]:
        return acc.setdefault((org, team), {"requests": 0, "tokens": 0, "cost": Decimal(0), "unpriced_requests": 0,
                                            "unpriced_tokens": 0, "outcomes": {}, "usage_missing_requests": 0,
                                            "reported_cost_requests": 0, "reported_cost": Decimal(0),
                                            "priced_cost_of_reported": Decimal(0), "cost_disagreements": 0,
                                            "active_members": 0, "fleet_use": {}})

    for row in rows:
        s = slot(row["org"], row["team"])
        s["requests"] += int(row["requests"])
        s["tokens"] += sum(int(row[c]) for c in TOKEN_COLUMNS)
        s["cost"] += Decimal(row["cost_usd"])
        s["unpriced_requests"] += int(row["unpriced_requests"])
        s["unpriced_tokens"] += sum(int(row[c]) for c in UNPRICED_TOKEN_COLUMNS)
        s["usage_missing_requests"] += int(row.get("usage_missing_requests", 0))
        s["reported_cost_requests"] += int(row.get("reported_cost_requests", 0))
        s["reported_cost"] += Decimal(row.get("reported_cost_usd", 0))
        s["priced_cost_of_reported"] += Decimal(row.get("priced_cost_of_reported_usd", 0))
        s["cost_disagreements"] += int(row.get("cost_disagreements", 0))
    for row in outcomes:
        counts = slot(row["org"], row["team"])["outcomes"]
        counts[row["name"]] = counts.get(row["name"], 0) + int(row["count"])
    for (org, team), count in (members or {}).items():
        slot(org, team)["active_members"] = count
    for (org, team), used in (fleet_use or {}).items():
        slot(org, team)["fleet_use"] = dict(used)
    return [TeamUsage(org, team, **values) for (org, team), values in sorted(acc.items())]


def named_teams(config: ChargebackConfig, team_orgs: Mapping[str, str]) -> set[str]:
    """The teams the config names (`team` or `org/team`): its hierarchy's, `chargeback.teams`', a fixed split's and
    `unattributed.team`. They keep their names on a statement whatever the cardinality limits."""
    named = set(team_orgs) | set(config.teams)
    named.update(t for c in config.shared_costs if isinstance(c.split, dict) for t in c.split)
    if not isinstance(config.unattributed, str):
        named.add(config.unattributed.team)
    return named


def fold_usage(usage: Sequence[TeamUsage], limits: tuple[int, int], named: Collection[str]) -> list[TeamUsage]:
    """`usage` with at most `limits` = (orgs, teams) names, like the owner labels of every series (`overflow.py`):
    the orgs and the team names of most token cost keep them, the others become `__overflow__` and their usage is
    summed (a folded team is charged as one team). Teams the config names, their orgs and the unattributed pool
    always keep theirs; so the statement's size and the work of making it are bounded, and every dollar is on it."""
    named_keys = {ref for ref in named if "/" in ref}
    names = {ref.rsplit("/", 1)[-1] for ref in named} | {UNATTRIBUTED}
    pinned = [{ref.split("/", 1)[0] for ref in named_keys} | {u.org for u in usage if u.team in names}
              | {UNATTRIBUTED}, names]
    kept: list[set[str] | None] = []
    for index, limit in enumerate(limits):
        weight: dict[str, Decimal] = {}
        for u in usage:
            label = (u.org, u.team)[index]
            weight[label] = weight.get(label, Decimal(0)) + u.cost
        free = {v: w for v, w in weight.items() if v not in pinned[index]}
        top = kept_values(free, max(limit - len(weight.keys() & pinned[index]), 0))
        kept.append(None if top is None else top | pinned[index])
    if kept == [None, None]:
        return list(usage)
    acc: dict[tuple[str, str], TeamUsage] = {}
    for u in usage:
        org = u.org if kept[0] is None or u.org in kept[0] else OVERFLOW
        team = u.team if kept[1] is None or u.team in kept[1] else OVERFLOW
        was = acc.get((org, team))
        if was is None:
            acc[(org, team)] = replace(u, org=org, team=team)
            continue
        outcomes = dict(was.outcomes)
        for name, count in u.outcomes.items():
            outcomes[name] = outcomes.get(name, 0) + count
        acc[(org, team)] = TeamUsage(org, team, was.requests + u.requests, was.tokens + u.tokens, was.cost + u.cost,
                                     was.unpriced_requests + u.unpriced_requests,
                                     was.unpriced_tokens + u.unpriced_tokens, outcomes,
                                     was.usage_missing_requests + u.usage_missing_requests,
                                     was.reported_cost_requests + u.reported_cost_requests,
                                     was.reported_cost + u.reported_cost,
                                     was.priced_cost_of_reported + u.priced_cost_of_reported,
                                     was.cost_disagreements + u.cost_disagreements,
                                     was.active_members + u.active_members,
                                     {f: was.fleet_use.get(f, 0) + u.fleet_use.get(f, 0)
                                      for f in {*was.fleet_use, *u.fleet_use}})
    return [acc[key] for key in sorted(acc)]


def untracked_by_team(rows: Iterable[Mapping[str, Any]]) -> dict[str, Decimal]:
    """Exact untracked USD per owning team (`org/team`), and under `UNMAPPED` that of unmapped identities, from the
    reconciliation store's `untracked_spend` rows (a key's or a user's spend is its team's)."""
    out: dict[str, Decimal] = {}
    for row in rows:
        key = UNMAPPED if row["owner_kind"] == UNMAPPED else f"{row['org']}/{row['team']}"
        out[key] = out.get(key, Decimal(0)) + Decimal(row["untracked_usd"])
    return {key: usd for key, usd in sorted(out.items()) if usd}


def build_statement(config: ChargebackConfig | None, period: Period, tz: ZoneInfo, usage: Sequence[TeamUsage], *,
                    team_orgs: Mapping[str, str] | None = None,
                    corrections: Mapping[str, Sequence[tuple[str, Decimal]]] | None = None,
                    untracked: Mapping[str, Decimal] | None = None,
                    started: Collection[str] | None = None, fleets: Sequence[Fleet] = ()) -> Statement:
    """The statement for `period` from each team's usage. `team_orgs` (team -> org, from the config's hierarchy)
    places a team a fixed split names that has no usage this month. `corrections` (`org/team` -> (closed period,
    exact USD) pairs: what changed in closed periods since they were frozen) become `correction` lines; a team with
    nothing but corrections is charged only those (no fee, no share of a pool). `untracked` (`untracked_by_team`)
    is shown, and with `chargeback.untracked: charge` charged at cost: an `untracked` line on its team, the
    unmapped spend spread over the teams as `chargeback.unattributed` says. `started` (None: every org) are the orgs
    whose fixed charges apply in the period (`report.started_orgs`): the others' teams get no platform fee, no
    share of a shared cost, and are not charged for being named in a fixed split; a shared cost with no started
    team to charge is not charged. `fleets` (the config's) are allocated over the teams by their `fleet_use`."""
    if config is None:
        raise StatementError(NO_CHARGEBACK)
    unattributed_cost = sum((u.cost for u in usage if u.team == UNATTRIBUTED), Decimal(0))
    untracked = dict(untracked or {})
    charged = untracked if config.untracked == "charge" else {}
    teams = _Teams({u.key: u for u in usage if u.team != UNATTRIBUTED}, team_orgs or {}, started)
    _add_named_teams(config, teams, unattributed_cost, charged)
    draft = _Draft(teams, sorted(teams.usage))
    _own_lines(config, draft)
    allocations = _fleet_lines(config, draft, fleets, [u for u in usage if u.team == UNATTRIBUTED])
    _shared_cost_lines(config, draft)
    _pool_lines(config, draft, unattributed_cost, charged)
    _correction_lines(draft, corrections or {})
    statements, grand = _rounded(draft)
    return Statement(period, str(tz), period.start(tz), period.end(tz), statements, grand, unattributed_cost,
                     untracked=untracked, untracked_rule=config.untracked, fleets=allocations)


@dataclass(slots=True)
class _Teams:
    """The teams a statement is made for, as they are gathered (`org/team` -> usage), and how the config's team
    references and the orgs' start apply to them."""

    usage: dict[str, TeamUsage]
    team_orgs: Mapping[str, str]
    started: Collection[str] | None

    def billable(self, key: str) -> bool:
        """Whether the team's org has started, so that fixed charges (fee, shared costs) apply to it."""
        org = key.split("/", 1)[0]
        # The team of last resort (`unattributed/unattributed`) and the orgs folded past the cardinality limit
        # (`__overflow__`, only ever made of usage) stand for whoever started.
        return self.started is None or org in self.started or (org in (UNATTRIBUTED, OVERFLOW)
                                                                 and bool(self.started))

    def resolve(self, ref: str, where: str) -> str:
        """The `org/team` key a config reference (`team` or `org/team`, at `where`) names."""
        if "/" in ref:
            return ref
        found = [key for key, u in self.usage.items() if u.team == ref]
        if len(found) > 1:
            raise StatementError(f"chargeback.{where}: team {ref!r} exists in several orgs ({', '.join(found)}); "
                                 "write it as org/team")
        return found[0] if found else f"{self.team_orgs.get(ref, UNATTRIBUTED)}/{ref}"

    def add(self, key: str) -> None:
        """A team with no usage of its own, charged for something else (a fixed split, a pool, a correction)."""
        if key not in self.usage:
            org, name = key.split("/", 1)
            self.usage[key] = TeamUsage(org, name)


@dataclass(slots=True)
class _Draft:
    """A statement's lines before rounding: per team (`org/team`), its lines and its head (model, markup, source)."""

    teams: _Teams
    order: list[str]
    """The teams charged for the period (statement order), before corrections add teams of their own."""
    lines: dict[str, list[Line]] = field(init=False)
    heads: dict[str, tuple[str, Decimal, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.lines = {key: [] for key in self.order}


def _add_named_teams(config: ChargebackConfig, teams: _Teams, unattributed_cost: Decimal,
                     charged: Mapping[str, Decimal]) -> None:
    """Add the teams charged without usage of their own: those a fixed split names, once their org has started;
    the unattributed rule's team whenever there is a pool for it to take; a team whose only spend this month was
    untracked (it used a provider: charged like any other). With no team at all, a team of last resort."""
    unmapped = charged.get(UNMAPPED, Decimal(0))
    named = [key for key in (teams.resolve(t, f"shared_costs[{i}].split") for i, c in enumerate(config.shared_costs)
                             if isinstance(c.split, dict) for t in c.split) if teams.billable(key)]
    if not isinstance(config.unattributed, str) and (unattributed_cost or unmapped):
        named.append(teams.resolve(config.unattributed.team, "unattributed.team"))
    named += [key for key in charged if key != UNMAPPED]
    for key in named:
        teams.add(key)
    if not teams.usage and (unattributed_cost or unmapped or (config.shared_costs
                                                              and teams.billable(UNATTRIBUTED))):
        # Nobody to spread onto: the statement still accounts for every dollar, on a line of its own.
        teams.add(f"{UNATTRIBUTED}/{UNATTRIBUTED}")


def _own_lines(config: ChargebackConfig, draft: _Draft) -> None:
    """Each team's charges for its own use: token cost and markup (cost-plus) or its outcomes (value-based), and
    the platform fee once its org has started."""
    for key in draft.order:
        u = draft.teams.usage[key]
        own = config.teams.get(key) or config.teams.get(u.team) or Charging()
        per_outcome = own.per_outcome_usd if own.per_outcome_usd is not None else config.default.per_outcome_usd
        fee = (_first(own.platform_fee_usd, config.default.platform_fee_usd, Decimal(0))
               if draft.teams.billable(key) else None)
        lines = draft.lines[key]
        if per_outcome is not None:
            draft.heads[key] = ("value-based", Decimal(0), "none: charged per outcome")
            lines.append(Line("token_cost", Decimal(0), detail=f"value-based: {_usd(u.cost)} of tokens not charged"))
            lines.append(Line("markup", Decimal(0), detail="value-based: no markup"))
        else:
            pct, source = _markup(config, own, u.tokens)
            draft.heads[key] = ("cost-plus", pct, source)
            lines.append(Line("token_cost", u.cost, detail=f"{u.tokens:,} tokens, {u.requests:,} requests"))
            lines.append(Line("markup", u.cost * pct / 100, detail=f"{decimal_text(pct)} % ({source})"))
        lines.append(Line("platform_fee", fee, detail="fixed per month") if fee is not None else
                     Line("platform_fee", Decimal(0), detail="none: before the org's first month"))
        for name, rate in sorted((per_outcome or {}).items()):
            count = u.outcomes.get(name, 0)
            lines.append(Line("value_based", rate * count, name=name, quantity=count,
                              detail=f"{count:,} x {_usd(rate, exact=True)}"))
        seat = _first(own.seat_usd, config.default.seat_usd, Decimal(-1))
        if seat >= 0:
            members = u.active_members
            lines.append(Line("seats", seat * members, quantity=members,
                              detail=f"{members:,} active member{'' if members == 1 else 's'} x {_usd(seat)}"
                                     + ("" if members else " (no user with a call this month)")))


def _fleet_lines(config: ChargebackConfig, draft: _Draft, fleets: Sequence[Fleet],
                 untagged: Sequence[TeamUsage]) -> tuple[FleetAllocation, ...]:
    """Each fleet's monthly cost (whole cents) split by largest remainder over the teams in proportion to their
    consumption of its models; the share of untagged calls is spread as `chargeback.unattributed` says. A fleet
    nobody used this month is allocated to no one: its cost stays unallocated (shown on the statement)."""
    out = []
    for fleet in fleets:
        cost = fleet.cost.usd
        weights = [draft.teams.usage[key].fleet_use.get(fleet.name, 0) for key in draft.order]
        nobody = sum(u.fleet_use.get(fleet.name, 0) for u in untagged)
        total = sum(weights) + nobody
        unit = "tokens" if fleet.allocate_by == "tokens" else "ms of requests"
        if not total:
            out.append(FleetAllocation(fleet.name, cost, fleet.allocate_by, 0, Decimal("0.00"), fleet.cost.how()))
            continue
        shares = allocate(_to_cents(cost), [Decimal(w) for w in [*weights, nobody]])
        for key, used, cents in zip(draft.order, weights, shares, strict=False):
            if used:
                draft.lines[key].append(Line("fleet", Decimal(cents) / 100, name=fleet.name, quantity=used,
                                             detail=f"{used:,} of {total:,} {unit} of {fleet.cost.how()}"))
        allocated = cost
        if shares[-1] and not draft.order:  # only untagged calls and no team at all: nobody to spread it onto
            allocated -= Decimal(shares[-1]) / 100
        elif shares[-1]:
            for key, share, how in _spread_by_unattributed_rule(config, draft, Decimal(shares[-1]) / 100):
                if share:
                    draft.lines[key].append(Line("fleet", share, name=fleet.name,
                                                 detail=f"{nobody:,} {unit} of untagged calls, {how}"))
        out.append(FleetAllocation(fleet.name, cost, fleet.allocate_by, total, allocated, fleet.cost.how()))
    return tuple(out)


def _shared_cost_lines(config: ChargebackConfig, draft: _Draft) -> None:
    """Each shared cost split in whole cents over the teams whose org has started, as its split says."""
    teams, order = draft.teams, draft.order
    payers = [key for key in order if teams.billable(key)]
    for i, cost in enumerate(config.shared_costs):
        weights, hows = _weights(cost.split, payers, teams.usage, teams.resolve, f"shared_costs[{i}].split")
        by_key = dict(zip(payers, zip(weights, hows, strict=True), strict=True))
        weights = [by_key.get(key, (Decimal(0), ""))[0] for key in order]
        hows = [by_key.get(key, (Decimal(0), "none: before the org's first month"))[1] for key in order]
        # A fixed split's percent of a team that has not started is not charged to anyone (a slot dropped here).
        unbilled = Decimal(100) - sum(weights) if isinstance(cost.split, Mapping) else Decimal(0)
        if not sum(weights):
            continue
        shares = allocate(_to_cents(cost.monthly_usd), [*weights, unbilled])[: len(order)]
        for key, cents, how in zip(order, shares, hows, strict=True):
            draft.lines[key].append(Line("shared_cost", Decimal(cents) / 100, name=cost.name,
                                         detail=f"{_usd(cost.monthly_usd)} {how}"))


def _pool_lines(config: ChargebackConfig, draft: _Draft, unattributed_cost: Decimal,
                charged: Mapping[str, Decimal]) -> None:
    """The spend no team owns (untagged calls; charged untracked spend under unmapped identities) spread by
    `chargeback.unattributed`, and each team's own charged untracked spend at cost."""
    unmapped = charged.get(UNMAPPED, Decimal(0))
    if unattributed_cost:
        for key, share, how in _spread_by_unattributed_rule(config, draft, unattributed_cost):
            draft.lines[key].append(Line("unattributed", share,
                                         detail=f"{_usd(unattributed_cost)} untagged, {how}"))
    for key in draft.order:
        if charged.get(key):
            draft.lines[key].append(Line("untracked", charged[key],
                                         detail="billed by the provider, seen by no span (at cost, no markup)"))
    if unmapped:
        for key, share, how in _spread_by_unattributed_rule(config, draft, unmapped):
            draft.lines[key].append(Line("untracked", share, name=UNMAPPED,
                                         detail=f"{_usd(unmapped)} under unmapped provider identities, {how}"))


def _spread_by_unattributed_rule(config: ChargebackConfig, draft: _Draft, pool: Decimal
                                 ) -> list[tuple[str, Decimal, str]]:
    """A pool nobody owns, rounded to the cent once and split over the teams by `chargeback.unattributed`: (team
    key, share, how it was split) in statement order."""
    rule, teams = config.unattributed, draft.teams
    split = {teams.resolve(rule.team, "unattributed.team"): Decimal(100)} if not isinstance(rule, str) else rule
    weights, hows = _weights(split, draft.order, teams.usage, teams.resolve, "unattributed")
    cents = allocate(_to_cents(round_cents(pool)), weights)
    return [(key, Decimal(c) / 100, how) for key, c, how in zip(draft.order, cents, hows, strict=True)]


def _correction_lines(draft: _Draft, corrections: Mapping[str, Sequence[tuple[str, Decimal]]]) -> None:
    """What changed in closed periods, per team: `correction` lines; a team with nothing else this period is
    charged only those."""
    for key, items in sorted(corrections.items()):
        items = [(source, exact) for source, exact in items if exact]
        if not items:
            continue
        if key not in draft.lines:
            draft.teams.add(key)
            draft.heads[key] = (CORRECTION_ONLY, Decimal(0), "none: corrections only")
            draft.lines[key] = []
        for source, exact in sorted(items):
            draft.lines[key].append(Line("correction", exact, name=source,
                                         detail=f"late spans and re-pricing of {source} (closed)"))


def _rounded(draft: _Draft) -> tuple[tuple[TeamStatement, ...], Decimal]:
    """The teams' statements with every line rounded to the cent, and the grand total: the exact total rounded once,
    spread over the teams and each team's over its lines by largest remainder (the module's docstring)."""
    order = sorted(draft.lines)
    exact_totals = [sum((line.exact for line in draft.lines[key]), Decimal(0)) for key in order]
    grand = round_cents(sum(exact_totals, Decimal(0)))
    statements = []
    for key, total in zip(order, round_to_total(exact_totals, grand), strict=True):
        lines = draft.lines[key]
        amounts = round_to_total([line.exact for line in lines], total)
        model, pct, source = draft.heads[key]
        u = draft.teams.usage[key]
        statements.append(TeamStatement(
            u.org, u.team, model, pct, source, u,
            tuple(replace(line, amount=amount) for line, amount in zip(lines, amounts, strict=True)), total))
    return tuple(statements), grand


def _markup(config: ChargebackConfig, own: Charging, tokens: int) -> tuple[Decimal, str]:
    if own.markup_pct is not None:
        return own.markup_pct, "team"
    lower = Decimal(0)
    for i, tier in enumerate(config.tiers, 1):
        # The whole volume takes the tier it falls in: under 10 Mtok is tier 1, exactly 10 Mtok tier 2.
        if tier.up_to_mtok is None or tokens < tier.up_to_mtok * TOKENS_PER_MTOK:
            upper = f"{decimal_text(lower)}-{decimal_text(tier.up_to_mtok)}" if tier.up_to_mtok is not None else \
                f"{decimal_text(lower)}+"
            return tier.markup_pct, f"tier {i}: {upper} Mtok"
        lower = tier.up_to_mtok
    return _first(config.default.markup_pct, Decimal(0)), "default"


def _weights(split: str | Mapping[str, Decimal], order: Sequence[str], teams: Mapping[str, TeamUsage],
             resolve: Any, where: str) -> tuple[list[Decimal], list[str]]:
    """Each team's weight in a pool and, per team, how its share came about. A fixed split's detail gives the
    team's own percent only: a team's lines never name the other teams (a team token reads them)."""
    if isinstance(split, Mapping):
        shares = {resolve(team, where): pct for team, pct in split.items()}
        weights = [shares.get(key, Decimal(0)) for key in order]
        return weights, [f"x {decimal_text(pct)} % (fixed split)" for pct in weights]
    if split == "proportional":
        weights = [max(teams[key].cost, Decimal(0)) for key in order]
        if sum(weights):
            return weights, ["split by token cost"] * len(order)
    # `even`, or proportional with no token cost to be proportional to.
    return [Decimal(1)] * len(order), [f"split evenly over {len(order)} teams"] * len(order)


def allocate(cents: int, weights: Sequence[Decimal]) -> list[int]:
    """`cents` split in proportion to `weights` (non-negative, not all zero), in whole cents that add up to it:
    each share rounded down, the cents left over going to the largest remainders (ties: first in order)."""
    # Integer arithmetic throughout: the weights scaled to integers, so no division is ever rounded.
    exponent = min((w.as_tuple().exponent for w in weights if w), default=0)
    scale = Decimal(10) ** -min(int(exponent), 0)
    ints = [int(w * scale) for w in weights]
    whole = sum(ints)
    if whole <= 0:
        raise ValueError("weights must not all be zero")
    floors = [cents * w // whole for w in ints]
    remainders = [cents * w % whole for w in ints]
    for i in sorted(range(len(ints)), key=lambda i: -remainders[i])[: cents - sum(floors)]:
        floors[i] += 1
    return floors


def round_to_total(exact: Sequence[Decimal], total: Decimal) -> list[Decimal]:
    """`exact` amounts rounded to cents that add up to `total` (whole cents, within a cent per amount of their
    exact sum): each rounded down, the cents left over going to the largest remainders (ties: first in order)."""
    floors = [_to_cents(x.quantize(CENT, rounding=ROUND_FLOOR)) for x in exact]
    remainders = [x - Decimal(f) / 100 for x, f in zip(exact, floors, strict=True)]
    left = _to_cents(total) - sum(floors)
    if not 0 <= left <= len(exact):
        raise AssertionError(f"cannot round {exact} to {total}")  # the callers' totals are within range
    for i in sorted(range(len(exact)), key=lambda i: -remainders[i])[:left]:
        floors[i] += 1
    return [(Decimal(f) / 100).quantize(CENT) for f in floors]


def _to_cents(amount: Decimal) -> int:
    cents = amount * 100
    if cents != cents.to_integral_value():
        raise ValueError(f"{amount} is not whole cents")
    return int(cents)


def _first(*values: Decimal | None) -> Decimal:
    return next(v for v in values if v is not None)


def _usd(value: Decimal, *, exact: bool = False) -> str:
    if exact:  # a rate: every digit it has, and at least the cents ($0.50, $0.004)
        return f"${decimal_text(value) if -value.normalize().as_tuple().exponent > 2 else value.quantize(CENT)}"
    return f"${cents_text(value)}"


def team_orgs_of(orgs: Iterable[Any]) -> dict[str, str]:
    """team -> org from the config's hierarchy (team names are unique across orgs there)."""
    return {team.name: org.name for org in orgs for team in org.teams}
