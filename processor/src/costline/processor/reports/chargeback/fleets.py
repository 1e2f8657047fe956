"""What the statement and the customers' report read from the ledger beside the cost: each owner's consumption of
the self-hosted fleets' models, and each team's active members (seats).

A fleet-priced call is in the ledger priced at $0 marginal (`pricing`, "Fleet-priced models"), with its tokens; the
fleet's monthly cost is then split over the owners by largest remainder (`statement.allocate`) in proportion to
their consumption here: tokens (every disjoint token type: uncached input, output, cache reads and writes), or
milliseconds of requests (the calls' durations, `allocate_by: request_seconds`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from costline.processor.config.chargeback import Fleet
from costline.processor.pricing import fleet_of
from costline.processor.reports.chargeback.statement import TOKEN_COLUMNS

FLEET_GROUPS = ("provider", "model")
"""The ledger columns a fleet is recognised by."""
DURATION_COLUMN = "request_milliseconds"


def consumption(row: Mapping[str, Any], fleet: Fleet) -> int:
    """A ledger row's consumption in the fleet's unit."""
    if fleet.allocate_by == "tokens":
        return sum(int(row[c]) for c in TOKEN_COLUMNS)
    return int(row[DURATION_COLUMN])


def fleet_use(rows: Iterable[Mapping[str, Any]], fleets: Sequence[Fleet], groups: Sequence[str]
              ) -> dict[tuple[str, ...], dict[str, int]]:
    """Per owner (the values of `groups`, e.g. org and team) and fleet name: the consumption of the fleet's models,
    from ledger rows grouped by `groups` and `FLEET_GROUPS`. Owners with none are left out."""
    out: dict[tuple[str, ...], dict[str, int]] = {}
    for row in rows:
        fleet = fleet_of(fleets, row["provider"], row["model"])
        if fleet is None:
            continue
        used = consumption(row, fleet)
        if used:
            owner = out.setdefault(tuple(row[g] for g in groups), {})
            owner[fleet.name] = owner.get(fleet.name, 0) + used
    return out


def active_members(rows: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], int]:
    """Per (org, team): the users with at least one call, from ledger rows grouped by org, team and user. A call
    without a user is nobody's seat."""
    out: dict[tuple[str, str], int] = {}
    for row in rows:
        if row["user"] and int(row["requests"]):
            key = (row["org"], row["team"])
            out[key] = out.get(key, 0) + 1
    return out


def needs_seats(config: Any) -> bool:
    """Whether any team may be charged per seat (so the statement reads the users)."""
    return config.default.seat_usd is not None or any(c.seat_usd is not None for c in config.teams.values())
