"""Closed periods: a month's statement frozen in the ledger's database, with a content hash.

`costline close-period 2026-11` stores the statement as it is then — the exact bytes of its JSON document, their
SHA-256, and the charging rules that made it (the `chargeback:` section, the zone, the org hierarchy) — in the
ledger's `costline_closed_periods` (`ledger.periods` keeps the text this module makes and reads back). From then on
the period's statement is the stored one, whatever arrives later. What changes in the ledger for a closed month
afterwards (late spans, late outcomes, re-pricing) is found by making its statement again under the stored rules and
comparing each team's exact charges with the frozen ones; the difference, less what earlier corrections already
billed, is a `correction` line in the first open period after it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal

from costline.processor.config.chargeback import ChargebackConfig
from costline.processor.ledger.periods import AlreadyClosed, PeriodStore
from costline.processor.reports.chargeback.statement import Period, Statement, StatementError


@dataclass(frozen=True, slots=True)
class Rules:
    """What a statement is made under, stored with a closed period so that its corrections are computed the way
    the period was billed even after the config changes."""

    chargeback: ChargebackConfig
    timezone: str
    team_orgs: Mapping[str, str]
    limits: tuple[int, int] | None = None
    """(orgs, teams) named on the statement before the rest fold into `__overflow__` (`metrics.cardinality_limits`);
    None: no fold (periods closed before the statement was bounded)."""
    fleets: tuple[Fleet, ...] = ()
    """The self-hosted fleets (`fleets:`) whose cost the period allocated."""

    def to_json(self) -> str:
        return json.dumps({"chargeback": self.chargeback.model_dump(mode="json"), "timezone": self.timezone,
                           "team_orgs": dict(sorted(self.team_orgs.items())),
                           "limits": list(self.limits) if self.limits else None,
                           **({"fleets": [f.model_dump(mode="json") for f in self.fleets]} if self.fleets else {})},
                          sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Rules:
        raw = json.loads(text)
        limits = raw.get("limits")
        return cls(ChargebackConfig.model_validate(raw["chargeback"]), raw["timezone"], raw["team_orgs"],
                   (int(limits[0]), int(limits[1])) if limits else None,
                   tuple(Fleet.model_validate(f) for f in raw.get("fleets", ())))


@dataclass(frozen=True, slots=True)
class ClosedPeriod:
    period: Period
    closed_at: datetime
    sha256: str
    document: bytes
    rules: Rules

    @property
    def statement(self) -> Statement:
        return Statement.from_dict(json.loads(self.document))


def document_bytes(statement: Statement) -> bytes:
    """The statement's JSON document: the bytes `--format json` serves, and the ones the content hash covers."""
    return json.dumps(statement.as_dict(), indent=1).encode() + b"\n"


class ClosedPeriods:
    """The closed periods, as statements and rules (the ledger's `PeriodStore` holds them as text)."""

    def __init__(self, store: PeriodStore) -> None:
        self.store = store

    def get(self, period: Period) -> ClosedPeriod | None:
        return self.all().get(period)

    def all(self) -> dict[Period, ClosedPeriod]:
        return {Period.parse(r["period"]): ClosedPeriod(
            Period.parse(r["period"]), datetime.fromtimestamp(r["closed_at"], timezone.utc), r["sha256"],
            r["document"].encode(), Rules.from_json(r["rules"])) for r in self.store.rows()}

    def close(self, statement: Statement, rules: Rules) -> ClosedPeriod:
        """Store `statement` (made with `closed_at` set) as its period's frozen statement. Raises `StatementError`
        when the period is already closed (a period is closed once: its statement has been billed)."""
        assert statement.closed_at is not None
        document = document_bytes(statement)
        digest = hashlib.sha256(document).hexdigest()
        try:
            self.store.insert({"period": str(statement.period), "closed_at": int(statement.closed_at.timestamp()),
                               "sha256": digest, "document": document.decode(), "rules": rules.to_json()})
        except AlreadyClosed:
            existing = self.get(statement.period)
            when = existing.closed_at.isoformat() if existing else "already"
            raise StatementError(f"period {statement.period} is already closed (at {when}, sha256 "
                                 f"{existing.sha256 if existing else '?'})") from None
        return ClosedPeriod(statement.period, statement.closed_at, digest, document, rules)


def base_exact(statement: Statement) -> dict[str, Decimal]:
    """Each team's exact charges for the period itself (its correction lines left out)."""
    return {t.key: sum((x.exact for x in t.lines if x.component != "correction"), Decimal(0))
            for t in statement.teams}


def billed_corrections(statement: Statement) -> dict[tuple[str, str], Decimal]:
    """(closed period, team) -> exact correction the statement bills."""
    out: dict[tuple[str, str], Decimal] = {}
    for t in statement.teams:
        for x in t.lines:
            if x.component == "correction":
                out[(x.name, t.key)] = out.get((x.name, t.key), Decimal(0)) + x.exact
    return out
