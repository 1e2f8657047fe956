"""`costline budgets suggest`: next period's budgets for every scope, proposed from the ledger, so the quarterly budget
review starts from numbers.

For each budget scope with spend (org, team, user, key, project: `model.BUDGET_SCOPES`) the ledger gives the spend of
the last N complete periods and of the current one so far. Three figures come of it:

* **forecast**: the current period at its pace so far (spent × period length ÷ time elapsed, at least an hour elapsed),
  the month-end forecast the alerts use (`scope:costline_budget_spent_usd:forecast_month_end`);
* **trend**: the least-squares line through the complete periods and the forecast, one period on (never below 0);
* **suggested**: the larger of the two, plus the headroom, rounded *up* to two significant figures (a budget someone
  reads; never a cent below the expectation).

Periods are calendar days, ISO weeks, months, quarters or years (`--period`) in the config's time zone, read as budgets and statements read them (the UTC
hour rows that start in them). The fragment (`--format yaml`) is an `orgs:`/`projects:` config a reviewer merges into
theirs: every budget the config already has is kept, the suggested period's amount replaced.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, Decimal
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

from costline.processor.model import BUDGET_SCOPES
from costline.processor.ownership import UNATTRIBUTED
from costline.processor.units import PERIODS, ceil_hour, elapsed_share, period_starts, period_window

_FINGERPRINT = re.compile(r"[0-9a-f]{16}")
PERIOD_FIELDS = {period: f"{period}_usd" for period in PERIODS}
DEFAULT_HISTORY = {"daily": 14, "weekly": 8, "monthly": 3, "quarterly": 4, "yearly": 2}
_LABELS = {"daily": lambda s: s.date().isoformat(), "weekly": lambda s: "{}-W{:02d}".format(*s.isocalendar()[:2]),
           "monthly": lambda s: s.strftime("%Y-%m"), "quarterly": lambda s: f"{s.year}-Q{(s.month - 1) // 3 + 1}",
           "yearly": lambda s: str(s.year)}
SCOPE_ORDER = ("org", "team", "user", "key", "project")


@dataclass(frozen=True, slots=True)
class Suggestion:
    scope: str
    owner: tuple[tuple[str, str], ...]
    """The scope's owner columns, e.g. (("org", "acme"), ("team", "search"))."""
    current_usd: Decimal | None
    """The budget the config sets for this period now, if any."""
    history_usd: tuple[Decimal, ...]
    """Spend of the complete periods, oldest first."""
    to_date_usd: Decimal
    forecast_usd: Decimal
    trend_usd: Decimal
    suggested_usd: Decimal

    @property
    def owner_name(self) -> str:
        return "/".join(v for _, v in self.owner)

    def as_dict(self) -> dict[str, Any]:
        return {"scope": self.scope, "owner": self.owner_name, **dict(self.owner),
                "current_usd": self.current_usd, "history_usd": list(self.history_usd),
                "to_date_usd": self.to_date_usd, "forecast_usd": self.forecast_usd, "trend_usd": self.trend_usd,
                "suggested_usd": self.suggested_usd}


@dataclass(frozen=True, slots=True)
class Window:
    """The periods read: `complete` (oldest first) and the current one, each [start, end) in the zone."""

    complete: tuple[tuple[datetime, datetime], ...]
    current: tuple[datetime, datetime]
    labels: tuple[str, ...]


def window(period: str, now: datetime, tz: ZoneInfo, history: int) -> Window:
    """The current calendar `period` (`units.PERIODS`: an ISO week from Monday, a quarter, ...) and the `history`
    complete ones before it, in `tz`."""
    if period not in PERIOD_FIELDS:
        raise ValueError(f"period {period!r}: one of {', '.join(PERIOD_FIELDS)}")
    spans = [period_window(period, now, tz)]
    for _ in range(history):
        start = spans[0][0]
        spans.insert(0, (period_starts(start - timedelta(seconds=1), tz)[period], start))
    return Window(tuple(spans[:-1]), spans[-1], tuple(_LABELS[period](s) for s, _ in spans))


def suggest_budgets(config: Any, ledger: Any, now: datetime, *, period: str = "monthly", history: int | None = None,
                    headroom_pct: Decimal = Decimal(20)) -> list[Suggestion]:
    """A suggestion per scope with spend in the window (or a budget in the config), in scope then owner order."""
    if history is None:
        history = DEFAULT_HISTORY[period]
    if not 1 <= history <= 60:
        raise ValueError(f"history {history}: between 1 and 60 periods")
    if headroom_pct < 0:
        raise ValueError(f"headroom {headroom_pct}: a percentage, 0 or more")
    tz = config.zone
    span = window(period, now, tz, history)
    current_budgets = _configured(config, PERIOD_FIELDS[period])
    spend: dict[tuple[str, tuple], list[Decimal]] = defaultdict(lambda: [Decimal(0)] * (history + 1))
    for i, (start, end) in enumerate((*span.complete, span.current)):
        bounds = (ceil_hour(start), ceil_hour(end))
        for scope in SCOPE_ORDER:
            columns = BUDGET_SCOPES[scope]
            for row in ledger.usage(*bounds, list(columns)):
                owner = tuple((c, row[c]) for c in columns)
                if any(not v or v == UNATTRIBUTED for _, v in owner):
                    continue
                spend[(scope, owner)][i] += Decimal(row["cost_usd"])
    for key in current_budgets:
        spend[key]  # a budgeted scope without spend is suggested too (its budget may be too high)  # noqa: B018
    elapsed = elapsed_share(*span.current, now)
    out = []
    for (scope, owner), series in spend.items():
        complete, to_date = series[:-1], series[-1]
        forecast = _cents_up(to_date / elapsed) if elapsed else to_date
        trend = _trend([*complete, forecast])
        expected = max(trend, forecast)
        suggested = _nice_up(expected * (1 + headroom_pct / 100))
        out.append(Suggestion(scope, owner, current_budgets.get((scope, owner)), tuple(complete), to_date, forecast,
                              trend, suggested))
    out.sort(key=lambda s: (SCOPE_ORDER.index(s.scope), s.owner))
    return out


def _trend(values: Sequence[Decimal]) -> Decimal:
    """The least-squares line through the values (at 0, 1, ...), evaluated one step on; 0 at least. Exact
    (fractions), then rounded up to the cent."""
    n = len(values)
    if n == 1:
        return _cents_up(values[0])
    ys = [Fraction(v) for v in values]
    mean_x, mean_y = Fraction(n - 1, 2), sum(ys) / n
    sxx = sum((x - mean_x) ** 2 for x in range(n))
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in zip(range(n), ys, strict=True))
    slope = sxy / sxx
    nxt = max(mean_y + slope * (n - mean_x), Fraction(0))
    return _cents_up(Decimal(nxt.numerator) / Decimal(nxt.denominator))


def _cents_up(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_CEILING)


def _nice_up(value: Decimal) -> Decimal:
    """Up to two significant figures, and to the cent: 123.4 → 130, 5.01 → 5.1, 0.0734 → 0.08."""
    if value <= 0:
        return Decimal("0.00")
    exponent = math.floor(value.log10()) - 1
    step = max(Decimal(10) ** exponent, Decimal("0.01"))
    return ((value / step).to_integral_value(rounding=ROUND_CEILING) * step).quantize(Decimal("0.01"))


def _configured(config: Any, field: str) -> dict[tuple[str, tuple], Decimal]:
    """(scope, owner) -> the budget the config sets for the period."""
    out: dict[tuple[str, tuple], Decimal] = {}

    def note(scope: str, owner: tuple, node: Any) -> None:
        value = getattr(node.budget, field, None) if node.budget is not None else None
        if value is not None:
            out[(scope, owner)] = value

    for org in config.orgs:
        o = (("org", org.name),)
        note("org", o, org)
        for team in org.teams:
            t = (*o, ("team", team.name))
            note("team", t, team)
            for user in team.users:
                u = (*t, ("user", user.name))
                note("user", u, user)
                for key in user.keys:  # the ledger keeps a registered key under its name
                    note("key", (*u, ("key", key.name)), key)
    for project in config.projects:
        note("project", (("project", project.name),), project)
    return out


def fragment(config: Any, suggestions: Sequence[Suggestion], period: str) -> dict[str, Any]:
    """An `orgs:`/`projects:` config holding the suggested budgets: each node's other budgets as configured, the
    period's amount replaced; owners the config does not name yet are added (keys by fingerprint)."""
    field = PERIOD_FIELDS[period]
    by_owner = {(s.scope, s.owner): s.suggested_usd for s in suggestions}
    registered = {k.name for org in config.orgs for t in org.teams for u in t.users for k in u.keys}
    def node(parent: dict, kind: str, name: str, scope: str, owner: tuple, configured: Any = None,
             **extra: Any) -> dict:
        children = parent.setdefault(kind, {})
        entry = children.get(name)
        if entry is None:
            entry = children[name] = {"name": name, **extra}
            if configured is not None and configured.budget is not None:  # every configured budget, kept
                kept = {k: v for k, v in configured.budget.model_dump().items() if v is not None}
                if kept:
                    entry["budget"] = kept
        if (scope, owner) in by_owner:
            entry.setdefault("budget", {})[field] = by_owner[(scope, owner)]
        return entry

    root: dict[str, Any] = {}
    for org in config.orgs:  # the config's hierarchy first, in its order
        o = (("org", org.name),)
        org_node = node(root, "orgs", org.name, "org", o, org)
        for team in org.teams:
            t = (*o, ("team", team.name))
            team_node = node(org_node, "teams", team.name, "team", t, team)
            for user in team.users:
                u = (*t, ("user", user.name))
                user_node = node(team_node, "users", user.name, "user", u, user)
                for key in user.keys:
                    node(user_node, "keys", key.name, "key", (*u, ("key", key.name)), key,
                         fingerprint=key.fingerprint)
    for s in suggestions:  # then owners only the ledger knows
        values = dict(s.owner)
        if s.scope == "project":
            node(root, "projects", values["project"], "project", s.owner)
            continue
        current = node(root, "orgs", values["org"], "org", s.owner[:1])
        if "team" in values:
            current = node(current, "teams", values["team"], "team", s.owner[:2])
        if "user" in values:
            current = node(current, "users", values["user"], "user", s.owner[:3])
        if "key" in values:
            # A registered key is in the ledger under its name (placed above); an unregistered one under its
            # fingerprint, which registering it needs.
            value = values["key"]
            if value in registered:
                continue
            if _FINGERPRINT.fullmatch(value):
                node(current, "keys", f"key-{value[:8]}", "key", s.owner, fingerprint=value)
    return _as_lists(root)


def _as_lists(tree: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if key in ("orgs", "teams", "users", "keys", "projects"):
            out[key] = [_as_lists(child) for child in value.values()]
        else:
            out[key] = value
    return out


def render_table(suggestions: Sequence[Suggestion], labels: Sequence[str], period: str, headroom: Decimal) -> str:
    head = [*labels[:-1], f"{labels[-1]} so far"]
    lines = [f"Suggested {period} budgets: the larger of the trend through {', '.join(labels[:-1])} and "
             f"{labels[-1]}'s forecast, plus {headroom}% headroom, rounded up to two significant figures", "",
             f"{'scope':<8}{'owner':<36}{'current':>10}" + "".join(f"{h:>14}" for h in head)
             + f"{'forecast':>11}{'trend':>11}{'suggested':>11}"]
    for s in suggestions:
        current = f"{s.current_usd:.2f}" if s.current_usd is not None else "-"
        lines.append(f"{s.scope:<8}{s.owner_name:<36}{current:>10}"
                     + "".join(f"{v:>14.2f}" for v in (*s.history_usd, s.to_date_usd))
                     + f"{s.forecast_usd:>11.2f}{s.trend_usd:>11.2f}{s.suggested_usd:>11.2f}")
    return "\n".join(lines) + "\n"
