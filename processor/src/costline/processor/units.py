"""The processor's units, spelled once: money in integer pico-dollars, time in epoch hours, calendar periods.

**Money** is an integer number of pico-dollars (10^-12 USD) from pricing to the ledger: every list price and any
override with at most six decimals is a whole number of pico-dollars per token, so a call's cost is integer
arithmetic, sums never round, and SQLite (whose NUMERIC is a float) stores it exactly in a BIGINT. It becomes USD
only at the edges: `pico_to_usd` (an exact `Decimal` with twelve decimals, for the API and CSV; `formats` writes it
as text) and `pico_to_float_usd` (Prometheus samples and forwarded span attributes, which are doubles anyway). A
statement bills whole cents (`CENT`, `round_cents`); prices are per million tokens (`TOKENS_PER_MTOK`).

**Time** is bucketed by the UTC hour: the ledger's rows and the pricer's cache are per hour. `epoch_hour` is the
hour's number since the epoch, `hour_start_s` its start in unix seconds (the ledger's `hour` column). Calendar
periods (the budgets' day and month) depend on a time zone, which is always passed in (`period_starts`).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

PICO_PER_USD = 10**12
"""Pico-dollars in one US dollar: the money unit."""
USD_DECIMALS = 12
"""Decimal places of an amount in USD written from pico-dollars: every digit the ledger has."""
CENT = Decimal("0.01")
"""The smallest amount a chargeback statement bills."""
TOKENS_PER_MTOK = 1_000_000
"""Tokens in the unit prices and chargeback tiers are given in (`input_per_mtok`, `up_to_mtok`)."""

NS_PER_S = 1_000_000_000
S_PER_HOUR = 3600
S_PER_DAY = 24 * S_PER_HOUR
NS_PER_HOUR = NS_PER_S * S_PER_HOUR

PERIODS = ("daily", "weekly", "monthly", "quarterly", "yearly")
"""Calendar periods budgets are kept for, shortest first (a `rolling_<N>d` window is the other kind: `rolling`)."""
ROLLING_PREFIX = "rolling_"
MAX_ROLLING_DAYS = 366
"""The longest rolling window: a year, leap day included."""


def usd_to_pico(usd: Decimal) -> int:
    """USD to pico-dollars, rounded half-even to the pico-dollar."""
    return int((usd * PICO_PER_USD).to_integral_value(rounding=ROUND_HALF_EVEN))


def pico_per_unit(usd_per: Decimal, per: int) -> Decimal:
    """A price of `usd_per` USD per `per` units (genai-prices' `$/MTok`, `$/1000 searches`) as exact pico-dollars per
    one unit; not rounded (a fraction of a pico-dollar is kept until a call's total is)."""
    return usd_per * PICO_PER_USD / per


def pico_to_usd(pico: int) -> Decimal:
    """Pico-dollars as exact USD with twelve decimals (`Decimal('0.001234500000')`)."""
    return Decimal(pico).scaleb(-USD_DECIMALS)


def pico_to_float_usd(pico: int) -> float:
    """Pico-dollars as a float of USD, for Prometheus samples and span attributes (doubles on the wire)."""
    return pico / PICO_PER_USD


def round_cents(usd: Decimal) -> Decimal:
    """USD rounded half-up to the cent: how a statement rounds what it bills (once, `reports/chargeback`)."""
    return usd.quantize(CENT, ROUND_HALF_UP)


def epoch_hour(unix_ns: int) -> int:
    """The number of the UTC hour `unix_ns` falls in, counted from the epoch."""
    return unix_ns // NS_PER_HOUR


def hour_start_s(unix_ns: int) -> int:
    """Unix seconds of the start of the UTC hour `unix_ns` falls in (the ledger's `hour` column)."""
    return unix_ns // NS_PER_HOUR * S_PER_HOUR


def floor_hour_s(unix_s: int) -> int:
    """Unix seconds of the start of the UTC hour `unix_s` falls in."""
    return unix_s - unix_s % S_PER_HOUR


def ceil_hour(instant: datetime) -> datetime:
    """The first UTC hour start at or after `instant`, as an aware datetime in `instant`'s zone. A calendar bound
    in a zone whose offset is not whole hours (Asia/Kolkata, America/St_Johns) falls inside a ledger hour: a period
    read over [ceil_hour(start), ceil_hour(end)) takes the hours that start in it, so each hour row belongs to
    exactly one period (docs/chargeback.md)."""
    unix_s = int(instant.timestamp())
    return datetime.fromtimestamp(-floor_hour_s(-unix_s), instant.tzinfo)


def period_starts(now: datetime, tz: ZoneInfo) -> dict[str, datetime]:
    """Start of the current calendar day, ISO week (Monday 00:00), month, quarter and year in `tz`, as aware
    datetimes, by period name (`PERIODS`)."""
    local = now.astimezone(tz)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    # Monday of the ISO week, at local midnight: the date is stepped back, then the zone re-applied, so that a
    # daylight-saving change within the week does not shift the start off midnight.
    monday = (day - timedelta(days=day.weekday())).replace(tzinfo=None).replace(tzinfo=tz)
    month = day.replace(day=1)
    return {"daily": day, "weekly": monday, "monthly": month,
            "quarterly": month.replace(month=(month.month - 1) // 3 * 3 + 1), "yearly": month.replace(month=1)}


def period_ends(starts: dict[str, datetime], tz: ZoneInfo) -> dict[str, datetime]:
    """The end of each period in `starts` (`period_starts`'s answer): the start of the next one, found from a moment
    surely inside it (a day lasts 23 to 25 hours, a month 28 to 31 days, a quarter 90 to 92, a year 365 or 366)."""
    after = {"daily": timedelta(hours=26), "weekly": timedelta(days=7, hours=2), "monthly": timedelta(days=32),
             "quarterly": timedelta(days=93), "yearly": timedelta(days=367)}
    return {period: period_starts(start + after[period], tz)[period] for period, start in starts.items()}


def rolling_period(days: int) -> str:
    """The period name of a rolling window of `days` days (`rolling_7d`): the budgets' and the metrics' `period`."""
    return f"{ROLLING_PREFIX}{days}d"


def rolling_days(period: str) -> int | None:
    """The days of a `rolling_<N>d` period name; None for a calendar period."""
    if period.startswith(ROLLING_PREFIX) and period.endswith("d") and period[len(ROLLING_PREFIX):-1].isdigit():
        return int(period[len(ROLLING_PREFIX):-1])
    return None


def rolling_window(now: datetime, days: int) -> tuple[datetime, datetime]:
    """[start, end) of a rolling window of `days` days at `now`, hour-granular like the ledger: the current UTC hour
    and the `days`×24 − 1 hours before it, so that it holds exactly `days`×24 hour rows and moves on the hour."""
    hour = datetime.fromtimestamp(floor_hour_s(int(now.timestamp())), timezone.utc)
    return hour - timedelta(hours=days * 24 - 1), hour + timedelta(hours=1)


def period_window(period: str, now: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end) of the current `period` (a `PERIODS` name or `rolling_<N>d`) at `now` in `tz`."""
    days = rolling_days(period)
    if days is not None:
        return rolling_window(now, days)
    start = period_starts(now, tz)[period]
    return start, period_ends({period: start}, tz)[period]


def elapsed_share(start: datetime, end: datetime, now: datetime) -> Decimal:
    """How much of the period [`start`, `end`) has passed at `now`, at least an hour's worth (a forecast from the first
    minutes would divide by ~0) and at most all of it: what a period-end forecast divides the spend so far by."""
    total = end.timestamp() - start.timestamp()
    passed = min(max(now.timestamp() - start.timestamp(), S_PER_HOUR), total)
    return Decimal(passed) / Decimal(total)


EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
"""The first instant the API and the command line accept (`from`, `to`, periods)."""
LATEST = datetime(9999, 1, 1, tzinfo=timezone.utc)
"""The last instant `from`/`to` may name: far past any ledger row, and far enough from `datetime.max` that a bare
date's end of day, a time zone's offset and the ledger's day and month grouping stay representable."""
