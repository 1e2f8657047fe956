"""The statement of a month, read from the ledger through its public reader, and closing a month.

A closed month's statement is the stored one (`periods`). An open month's is made from the ledger, with a
`correction` line per team for every closed month whose first open successor it is and whose ledger rows changed
after it was closed.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, replace
from datetime import timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from costline.processor.clock import Clock
from costline.processor.reports.chargeback.fleets import FLEET_GROUPS, active_members, fleet_use, needs_seats
from costline.processor.reports.chargeback.focus import USAGE_GROUPS, render_focus
from costline.processor.reports.chargeback.html import TOP, TeamDetail, render_html
from costline.processor.reports.chargeback.periods import (
    ClosedPeriod,
    ClosedPeriods,
    Rules,
    base_exact,
    billed_corrections,
)
from costline.processor.reports.chargeback.render import CONTENT_TYPES, FORMATS, render
from costline.processor.reports.chargeback.statement import (
    NO_CHARGEBACK,
    TOKEN_COLUMNS,
    Period,
    Statement,
    StatementError,
    build_statement,
    fold_usage,
    named_teams,
    team_orgs_of,
    team_usage,
    untracked_by_team,
)

TEAM_GROUPS = ["org", "team"]


def rules_of(config: Any) -> Rules:
    """The charging rules in the processor's `CostlineConfig` (its `chargeback`, `timezone` and `orgs`)."""
    if config.chargeback is None:
        raise StatementError(NO_CHARGEBACK)
    metrics = config.metrics
    limits = tuple(metrics.cardinality_limits.get(label, metrics.cardinality_limit) for label in ("org", "team"))
    return Rules(config.chargeback, config.timezone, team_orgs_of(config.orgs), limits,  # type: ignore[arg-type]
                 tuple(config.fleets))


def statement_for(config: Any, ledger: Any, period: Period, *, clock: Clock) -> Statement:
    """`period`'s statement: the frozen one when it is closed, else made from the ledger with its corrections.
    `ledger` (a `Ledger`) offers `usage()` and its stores (`outcomes` among them); `clock`
    (the service's) says which month is the current one."""
    closed = ClosedPeriods(ledger.periods).all()
    if period in closed:
        return closed[period].statement
    return _made(rules_of(config), ledger, period,
                 corrections_for(period, closed, ledger, clock=clock), clock=clock)


def close_period(config: Any, ledger: Any, period: Period, *, now: Clock) -> ClosedPeriod:
    """Freeze `period`'s statement as it is now. Refused (`StatementError`) for a month that has not ended yet in
    the configured zone, and for one already closed."""
    rules = rules_of(config)
    zone = ZoneInfo(rules.timezone)
    at = now().replace(microsecond=0)
    if at < period.end(zone):
        raise StatementError(f"period {period} has not ended yet (it ends {period.end(zone).isoformat()}): only a "
                             "past month can be closed")
    store = ClosedPeriods(ledger.periods)
    closed = store.all()
    if period in closed:
        raise StatementError(f"period {period} is already closed (at {closed[period].closed_at.isoformat()}, "
                             f"sha256 {closed[period].sha256})")
    statement = _made(rules, ledger, period, corrections_for(period, closed, ledger, clock=now),
                      clock=now)
    return store.close(replace(statement, closed_at=at.astimezone(timezone.utc)), rules)


def inputs_of(config: Any, ledger: Any, period: Period) -> tuple[Any, ...]:
    """A cheap digest of what the statements of `period` and the month before are made from: the ledger's and the
    outcomes' sums since the earliest month they read (closed months whose corrections they bill included), the
    closed periods' hashes and the stored untracked spend. Equal digests: equal statements, nothing to remake.
    A few aggregate queries, against a statement's reading and arithmetic per team."""
    zone = ZoneInfo(config.timezone)
    closed = ClosedPeriods(ledger.periods).all()
    first = period.previous()
    while first.previous() in closed:
        first = first.previous()
    start = first.ledger_bounds(zone)[0]
    sums = ledger.reader.totals_since(start, [], ["requests", "unpriced_requests", "cost_pico_usd", "input_tokens",
                                                  "output_tokens", "cache_read_tokens", "cache_write_tokens"])
    end = period.next().ledger_bounds(zone)[1]
    counted = ledger.outcomes.outcomes(start, end, [])
    untracked = ledger.reconciliation.untracked_spend(first.start(zone).date(), period.end(zone).date())
    return (period, tuple(sorted(sums.items())), tuple(r["count"] for r in counted),
            tuple(sorted((str(p), c.sha256) for p, c in closed.items())),
            tuple(sorted(tuple(sorted((k, str(v)) for k, v in r.items())) for r in untracked)))


def corrections_for(period: Period, closed: dict[Period, ClosedPeriod], ledger: Any, *,
                    clock: Clock) -> dict[str, list[tuple[str, Decimal]]]:
    """`org/team` -> (closed month, exact USD) for the closed months whose first open month is `period`: the
    months right before it, back to the first open one."""
    out: dict[str, list[tuple[str, Decimal]]] = {}
    source = period.previous()
    while source in closed:
        frozen = closed[source]
        now = base_exact(_made(frozen.rules, ledger, source, {}, clock=clock))
        then = base_exact(frozen.statement)
        billed: dict[str, Decimal] = {}
        for later, record in closed.items():
            if later > source:
                for (name, team), exact in billed_corrections(record.statement).items():
                    if name == str(source):
                        billed[team] = billed.get(team, Decimal(0)) + exact
        for team in sorted(set(now) | set(then) | set(billed)):
            delta = now.get(team, Decimal(0)) - then.get(team, Decimal(0)) - billed.get(team, Decimal(0))
            if delta:
                out.setdefault(team, []).append((str(source), delta))
        source = source.previous()
    return out


def _made(rules: Rules, ledger: Any, period: Period,
          corrections: dict[str, list[tuple[str, Decimal]]], *, clock: Clock) -> Statement:
    tz = ZoneInfo(rules.timezone)
    start, end = period.ledger_bounds(tz)
    rows = ledger.usage(start, end, TEAM_GROUPS, tz=tz)
    counted = ledger.outcomes.outcomes(start, end, [*TEAM_GROUPS, "name"])
    # Providers report UTC days: the month's untracked spend is that of its calendar days, UTC.
    untracked = ledger.reconciliation.untracked_spend(period.start(tz).date(), period.end(tz).date())
    fleets = rules.fleets
    used = fleet_use(ledger.usage(start, end, [*TEAM_GROUPS, *FLEET_GROUPS], tz=tz), fleets, TEAM_GROUPS) \
        if fleets else {}
    members = active_members(ledger.usage(start, end, [*TEAM_GROUPS, "user"], tz=tz)) \
        if needs_seats(rules.chargeback) else {}
    usage = team_usage(rows, counted, members=members, fleet_use=used)  # type: ignore[arg-type]
    if rules.limits is not None:  # the statement's work and size are bounded like every owner label's series
        usage = fold_usage(usage, rules.limits, named_teams(rules.chargeback, rules.team_orgs))
    return build_statement(rules.chargeback, period, tz, usage, team_orgs=rules.team_orgs,
                           corrections=corrections, untracked=untracked_by_team(untracked),
                           started=started_orgs(rules, ledger, period, now=clock), fleets=fleets)


def started_orgs(rules: Rules, ledger: Any, period: Period, *, now: Clock) -> set[str] | None:
    """The orgs whose fixed charges (platform fees, shared costs) apply in `period` (None: every org): none in a
    month after the current one; with `chargeback.start`, every org from that month on; else the orgs with ledger
    data by the end of the period (from their first month with data on)."""
    tz = ZoneInfo(rules.timezone)
    if period > Period.containing(now(), tz):
        return set()
    if rules.chargeback.start is not None:
        return None if period >= Period.parse(rules.chargeback.start) else set()
    return ledger.reader.values_before("org", period.ledger_bounds(tz)[1])


PAGE_TEAMS = 200
"""Teams per answer of `GET /api/v1/chargeback` unless `limit` says otherwise: a statement with more is read page by
page (`next_page_token`, or the `Link: rel="next"` header)."""
MAX_PAGE_TEAMS = 1000


@dataclass(frozen=True, slots=True)
class Page:
    """Which teams of the statement one answer holds."""

    offset: int = 0
    limit: int = PAGE_TEAMS
    asked: bool = False
    """`limit` or `page_token` was given: the answer says where the next page is even when this one is the last."""


def parse_page(limit: str | None, token: str | None) -> Page:
    """`limit` (1 to `MAX_PAGE_TEAMS` teams) and `page_token` (from a previous page) as a `Page`."""
    size = PAGE_TEAMS
    if limit is not None:
        if not re.fullmatch(r"[0-9]{1,7}", limit) or not 1 <= int(limit) <= MAX_PAGE_TEAMS:
            raise StatementError(f"limit={limit!r}: teams per page, a whole number from 1 to {MAX_PAGE_TEAMS}")
        size = int(limit)
    offset = 0
    if token is not None:
        try:
            document = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            offset = document["offset"]
            if type(offset) is not int or offset < 0:
                raise ValueError
        except (ValueError, TypeError, KeyError, binascii.Error):
            raise StatementError("page_token: not a token this server issued (use next_page_token as given)"
                                 ) from None
        return Page(offset, size, True)
    return Page(offset, size, limit is not None)


def _page_token(period: Period, team: str | None, offset: int) -> str:
    document = {"offset": offset, "of": f"{period}|{team or ''}"}
    return base64.urlsafe_b64encode(json.dumps(document, separators=(",", ":")).encode()).decode().rstrip("=")


def _token_for(token: str | None) -> str | None:
    if token is None:
        return None
    return json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))).get("of")


def chargeback_document(config: Any, ledger: Any, period: Period | None, team: str | None,
                        fmt: str, *, clock: Clock, private: bool = False) -> tuple[str, bytes]:
    """(content type, body) of `costline chargeback` and `GET /api/v1/chargeback`: one function, the same bytes.
    `period` None is the current month (by `clock`) in the configured zone. `private`: the caller may see `team` only (a team
    token): a month without its charges is an empty statement, not an error naming the teams that have some. A
    closed month's JSON is its stored document, byte for byte (its SHA-256 is the content hash printed when it was
    closed)."""
    content_type, body, _ = chargeback_page(config, ledger, period, team, fmt, clock=clock,
                                        private=private)
    return content_type, body


def chargeback_page(config: Any, ledger: Any, period: Period | None, team: str | None, fmt: str, *,
                    clock: Clock, private: bool = False, page: Page | None = None, token: str | None = None
                    ) -> tuple[str, bytes, str | None]:
    """(content type, body, next page token) of one page of the statement (`page` None: all of it, as the command
    line writes it). A statement with no more teams than a page, asked without `limit` or `page_token`, is the
    whole document; else the page's teams with the whole statement's totals, and in JSON `next_page_token` (null
    on the last page) and `teams_in_statement`. `token` is the `page_token` the page was asked with (it must be
    one of this period's and team's)."""
    if fmt not in FORMATS:
        raise StatementError(f"format={fmt!r}: use one of {', '.join(FORMATS)}")
    if period is None:
        zone = ZoneInfo(config.timezone)
        period = Period.containing(clock().astimezone(zone), zone)
    if token is not None and _token_for(token) != f"{period}|{team or ''}":
        raise StatementError("page_token: issued for another period or team; start again without it")
    closed = ClosedPeriods(ledger.periods).get(period)
    whole = page is None or not page.asked
    if closed is not None and fmt == "json" and not team and whole and (
            page is None or len(closed.statement.teams) <= page.limit):
        return CONTENT_TYPES["json"], closed.document, None
    statement = statement_for(config, ledger, period, clock=clock)
    if team:
        statement = statement.only(team, private=private)
    count, following = len(statement.teams), None
    paged = page is not None and (page.asked or count > page.limit)
    if paged:
        assert page is not None
        if page.offset + page.limit < count:
            following = _page_token(period, team, page.offset + page.limit)
        statement = statement.page(page.offset, page.limit)
    if fmt == "html":
        details = _details(config, ledger, statement, clock)
        return CONTENT_TYPES[fmt], render_html(statement, details), following
    if fmt == "focus":
        zone = ZoneInfo(statement.timezone)
        usage = ledger.usage(*statement.period.ledger_bounds(zone), list(USAGE_GROUPS), tz=zone)
        first = not paged or page is None or page.offset == 0  # the untagged usage is listed once, on page one
        return CONTENT_TYPES[fmt], render_focus(statement, usage, untagged=not team and first), following
    if fmt == "json" and paged:
        document = {**statement.as_dict(), "teams_in_statement": count, "next_page_token": following}
        return CONTENT_TYPES[fmt], json.dumps(document, indent=1).encode() + b"\n", following
    content_type, body = render(statement, fmt, last=following is None)
    return content_type, body, following


def _details(config: Any, ledger: Any, statement: Statement, clock: Clock) -> dict[str, TeamDetail]:
    """Per team: its top models and features by cost in the month, and its total in the previous month."""
    zone = ZoneInfo(statement.timezone)
    tops: dict[str, dict[str, list[tuple[str, Decimal, int, bool]]]] = {}
    for column in ("model", "feature"):
        for row in ledger.usage(*statement.period.ledger_bounds(zone), [*TEAM_GROUPS, column], tz=zone):
            listed = tops.setdefault(f"{row['org']}/{row['team']}", {}).setdefault(column, [])
            if len(listed) < TOP:  # rows come highest cost first
                listed.append((row[column], Decimal(row["cost_usd"]),
                               sum(int(row[c]) for c in TOKEN_COLUMNS), int(row["unpriced_requests"]) > 0))
    previous = {t.key: t.total for t in statement_for(config, ledger, statement.period.previous(),
                                                          clock=clock).teams}
    return {t.key: TeamDetail(tops.get(t.key, {}).get("model", ()), tops.get(t.key, {}).get("feature", ()),
                              previous.get(t.key)) for t in statement.teams}
