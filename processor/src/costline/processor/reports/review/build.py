"""The review's figures, all from the ledger (exact), for a period ending now and the one before it.

* **spend** and **trend**: the period's cost and the previous period's (same length), and the change;
* **budget**: the month-to-date spend against the team's (or org's) monthly budget, and the month-end forecast at the
  month's pace (`suggest.py`'s rule, the one the forecast alert uses);
* **anomalies**: days of the period whose spend exceeded `ANOMALY_FACTOR` × the mean of the `BASELINE_DAYS` days before
  it (a day with no baseline is new, not anomalous), and at least `ANOMALY_MIN_USD` — the `CostlineSpendAnomaly` alert's rule (3× the baseline) on whole days read
  from the ledger, so the review shows what fired even after Prometheus has forgotten it;
* **top models** with the **cheaper-model hint**: per operation, the model of the org with the lowest cost per token
  in this period and the previous one; what the team's tokens would have cost less at its rate (the team drill-down dashboard's panel, exact);
* **unpriced**, **usage missing** (calls whose cost is unknown, never $0) and **untracked** spend (the stored
  reconciliation: billed by a provider, seen by no span);
* **suggested budget**: `costline budgets suggest`'s monthly figure.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from costline.processor.ownership import UNATTRIBUTED
from costline.processor.reports.suggest import suggest_budgets
from costline.processor.units import ceil_hour, elapsed_share, period_window

ANOMALY_FACTOR = Decimal(3)
BASELINE_DAYS = 14
ANOMALY_MIN_USD = Decimal(1)
TOP_MODELS = 5
_PERIOD = re.compile(r"^\s*(\d{1,3})\s*([dwm])\s*$")
_TOKENS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")


def parse_period(text: str) -> timedelta:
    """`14d`, `2w`, `1m` (30 days): the review's length."""
    match = _PERIOD.match(text or "")
    if not match or int(match[1]) == 0:
        raise ValueError(f"period {text!r}: a length such as 14d, 2w or 1m (30 days)")
    return timedelta(days=int(match[1]) * {"d": 1, "w": 7, "m": 30}[match[2]])


@dataclass(frozen=True, slots=True)
class ModelLine:
    model: str
    operation: str
    cost_usd: Decimal
    tokens: int
    requests: int
    cheaper_model: str | None = None
    """The org's cheapest model per token for the same operation in the period, when it is cheaper."""
    saving_usd: Decimal | None = None
    """What the same tokens would have saved at the cheaper model's cost per token (a hint, not a promise)."""


@dataclass(frozen=True, slots=True)
class Anomaly:
    day: date
    spent_usd: Decimal
    baseline_usd: Decimal


@dataclass(frozen=True, slots=True)
class TeamReview:
    org: str
    team: str
    spent_usd: Decimal
    previous_usd: Decimal
    requests: int
    unpriced_requests: int
    usage_missing_requests: int
    untracked_usd: Decimal
    month_to_date_usd: Decimal
    monthly_budget_usd: Decimal | None
    month_forecast_usd: Decimal
    suggested_budget_usd: Decimal | None
    anomalies: tuple[Anomaly, ...] = ()
    models: tuple[ModelLine, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.org}/{self.team}" if self.team else self.org

    @property
    def change_pct(self) -> Decimal | None:
        if not self.previous_usd:
            return None
        return ((self.spent_usd - self.previous_usd) / self.previous_usd * 100).quantize(Decimal("0.1"))

    @property
    def budget_used_pct(self) -> Decimal | None:
        if not self.monthly_budget_usd:
            return None
        return (self.month_to_date_usd / self.monthly_budget_usd * 100).quantize(Decimal("0.1"))


@dataclass(frozen=True, slots=True)
class Review:
    start: datetime
    end: datetime
    previous_start: datetime
    timezone: str
    org: TeamReview
    """The whole organisation (every team, unattributed included) as one line."""
    teams: tuple[TeamReview, ...] = field(default_factory=tuple)

    def only(self, team: str) -> Review:
        wanted = [t for t in self.teams if team in (t.team, t.key)]
        if not wanted:
            raise ValueError(f"team {team!r}: no spend and no budget in this review; teams: "
                             f"{', '.join(t.key for t in self.teams) or 'none'}")
        return Review(self.start, self.end, self.previous_start, self.timezone, self.org, tuple(wanted))


def build_review(config: Any, ledger: Any, now: datetime, length: timedelta) -> Review:
    tz = config.zone
    end = ceil_hour(now)
    start, previous_start = end - length, end - 2 * length
    groups = ["org", "team"]
    current = _by_team(ledger.usage(start, end, groups))
    previous = _by_team(ledger.usage(previous_start, start, groups))
    month_start, month_end = period_window("monthly", now, tz)
    month = _by_team(ledger.usage(ceil_hour(month_start), end, groups))
    budgets = _monthly_budgets(config)
    suggested = {s.owner_name: s.suggested_usd for s in suggest_budgets(config, ledger, now)
                 if s.scope in ("org", "team")}
    untracked = _untracked(ledger, start, end)
    models = ledger.usage(start, end, ["org", "team", "model", "operation"])
    rates = _rates(ledger.usage(previous_start, end, ["model", "operation"]))
    daily = _daily(ledger, start - timedelta(days=BASELINE_DAYS), end, tz)
    elapsed = elapsed_share(month_start, month_end, now)
    teams = sorted({*current, *previous, *((o, t) for o, t in budgets if t)}, key=lambda k: k)

    def line(org: str, team: str, keys: list[tuple[str, str]]) -> TeamReview:
        now_rows = [current[k] for k in keys if k in current]
        spent = sum((r["cost_usd"] for r in now_rows), Decimal(0))
        mtd = sum((month[k]["cost_usd"] for k in keys if k in month), Decimal(0))
        name = f"{org}/{team}" if team else org
        return TeamReview(
            org, team, spent, sum((previous[k]["cost_usd"] for k in keys if k in previous), Decimal(0)),
            sum(r["requests"] for r in now_rows), sum(r["unpriced_requests"] for r in now_rows),
            sum(r["usage_missing_requests"] for r in now_rows),
            sum((untracked.get(k, Decimal(0)) for k in keys), Decimal(0)), mtd,
            budgets.get((org, team)), (mtd / elapsed).quantize(Decimal("0.01")) if elapsed else mtd,
            suggested.get(name), _anomalies(daily, keys, start, tz), _top(models, rates, keys))

    team_lines = tuple(line(o, t, [(o, t)]) for o, t in teams)
    orgs = sorted({o for o, _ in teams if o and o != UNATTRIBUTED})
    everyone = sorted({*current, *previous})
    org_name = orgs[0] if len(orgs) == 1 else "all"
    org_line = line(org_name, "", everyone)
    if len(orgs) == 1:  # the org's own budget and suggestion, not a team's
        org_line = _with(org_line, budgets.get((org_name, "")), suggested.get(org_name))
    return Review(start, end, previous_start, config.timezone, org_line, team_lines)


def _with(line: TeamReview, budget: Decimal | None, suggested: Decimal | None) -> TeamReview:
    return replace(line, monthly_budget_usd=budget, suggested_budget_usd=suggested)


def _by_team(rows: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["org"] or UNATTRIBUTED, r["team"] or UNATTRIBUTED): r for r in rows}


def _monthly_budgets(config: Any) -> dict[tuple[str, str], Decimal]:
    out: dict[tuple[str, str], Decimal] = {}
    for org in config.orgs:
        if org.budget and org.budget.monthly_usd is not None:
            out[(org.name, "")] = org.budget.monthly_usd
        for team in org.teams:
            if team.budget and team.budget.monthly_usd is not None:
                out[(org.name, team.name)] = team.budget.monthly_usd
    return out


def _untracked(ledger: Any, start: datetime, end: datetime) -> dict[tuple[str, str], Decimal]:
    out: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for row in ledger.reconciliation.untracked_spend(start.date(), end.date() + timedelta(days=1)):
        out[(row["org"] or UNATTRIBUTED, row["team"] or UNATTRIBUTED)] += row["untracked_usd"]
    return out


def _rates(rows: list[dict[str, Any]]) -> dict[str, tuple[Decimal, str]]:
    """Per operation, the org's cheapest model per token over both periods (priced calls only: an unpriced model
    has no cost per token)."""
    cheapest: dict[str, tuple[Decimal, str]] = {}
    for r in sorted(rows, key=lambda r: (r["operation"], r["model"])):
        tokens = sum(r[c] for c in _TOKENS)
        if r["requests"] == r["unpriced_requests"] or not tokens:
            continue
        per_token = r["cost_usd"] / tokens
        if r["operation"] not in cheapest or per_token < cheapest[r["operation"]][0]:
            cheapest[r["operation"]] = (per_token, r["model"])
    return cheapest


def _top(rows: list[dict[str, Any]], cheapest: dict[str, tuple[Decimal, str]],
         keys: list[tuple[str, str]]) -> tuple[ModelLine, ...]:
    """The keys' top models by cost, each with the org's cheapest per-token model of its operation when cheaper,
    and what the same tokens would have cost less at its rate."""
    wanted = set(keys)
    mine: dict[tuple[str, str], list] = defaultdict(lambda: [Decimal(0), 0, 0])
    for r in rows:
        if (r["org"] or UNATTRIBUTED, r["team"] or UNATTRIBUTED) in wanted:
            acc = mine[(r["model"], r["operation"])]
            acc[0] += r["cost_usd"]
            acc[1] += sum(r[c] for c in _TOKENS)
            acc[2] += r["requests"]
    lines = []
    for (model, operation), (cost, tokens, requests) in sorted(mine.items(), key=lambda i: (-i[1][0], i[0])):
        hint, saving = None, None
        best = cheapest.get(operation)
        if best is not None and best[1] != model and tokens and cost / tokens > best[0]:
            hint, saving = best[1], (cost - best[0] * tokens).quantize(Decimal("0.01"))
        lines.append(ModelLine(model, operation, cost, tokens, requests, hint, saving))
    return tuple(lines[:TOP_MODELS])


def _daily(ledger: Any, start: datetime, end: datetime, tz: Any) -> dict[tuple[str, str], dict[date, Decimal]]:
    out: dict[tuple[str, str], dict[date, Decimal]] = defaultdict(dict)
    for r in ledger.usage(start, end, ["org", "team", "day"], tz=tz):
        out[(r["org"] or UNATTRIBUTED, r["team"] or UNATTRIBUTED)][date.fromisoformat(r["day"])] = r["cost_usd"]
    return out


def _anomalies(daily: dict[tuple[str, str], dict[date, Decimal]], keys: list[tuple[str, str]], start: datetime,
               tz: Any) -> tuple[Anomaly, ...]:
    spend: dict[date, Decimal] = defaultdict(Decimal)
    for k in keys:
        for day, cost in daily.get(k, {}).items():
            spend[day] += cost
    first = start.astimezone(tz).date()
    found = []
    for day in sorted(d for d in spend if d >= first):
        baseline = sum((spend.get(day - timedelta(days=i), Decimal(0)) for i in range(1, BASELINE_DAYS + 1)),
                       Decimal(0)) / BASELINE_DAYS
        if baseline > 0 and spend[day] >= ANOMALY_MIN_USD and spend[day] > ANOMALY_FACTOR * baseline:
            found.append(Anomaly(day, spend[day], baseline.quantize(Decimal("0.01"))))
    return tuple(found)
