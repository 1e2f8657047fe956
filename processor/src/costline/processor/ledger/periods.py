"""Closed periods in the ledger's database: one row per frozen month, stored as given.

What a row holds — a statement's JSON document, its SHA-256, and the charging rules that made it — is made and read
back by `reports.chargeback.periods`; this store keeps the text it is handed and never parses it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Column, MetaData, String, Table, Text, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from costline.processor.ledger.engine import LedgerUnavailable
from costline.processor.ledger.store import Store

metadata = MetaData()

closed_periods = Table(
    "costline_closed_periods",
    metadata,
    Column("period", String(7), primary_key=True),  # YYYY-MM
    Column("closed_at", BigInteger, nullable=False),  # unix seconds
    Column("sha256", String(64), nullable=False),  # of `document`'s UTF-8 bytes
    Column("document", Text, nullable=False),  # the statement's JSON, exactly as `--format json` serves it
    Column("rules", Text, nullable=False),  # JSON: the chargeback section, zone and org hierarchy that made it
)


class AlreadyClosed(Exception):
    """The period has a row already: a period is closed once (its statement has been billed)."""


class PeriodStore(Store):
    """The `costline_closed_periods` table: rows `{period, closed_at, sha256, document, rules}`."""

    metadata = metadata
    holds = "closed-periods"

    def rows(self) -> list[dict[str, Any]]:
        return self._read(select(closed_periods))

    def insert(self, row: dict[str, Any]) -> None:
        """Store one closed period; `AlreadyClosed` when its period has a row."""
        try:
            with self.engine.begin() as conn:
                conn.execute(closed_periods.insert().values(**row))
        except IntegrityError:
            raise AlreadyClosed(row["period"]) from None
        except SQLAlchemyError as err:
            raise LedgerUnavailable(f"closing {row['period']} failed: {err}") from err
