"""What every set of tables in the ledger's database shares, spelled once: how they are created, the one error a
store raises when the database does not answer, and the sizes of a lookup and of the retention.

The ledger's own tables (`schema`) are created by `engine.migrate`; the tables beside them — outcomes, closed
periods, reconciliation — by their store when it is opened (`Store`), so that the commands and readers that never
touch them do not create them.
"""

from __future__ import annotations

from typing import Any, ClassVar

from sqlalchemy import MetaData
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from costline.processor.ledger.engine import LedgerUnavailable, create_tables

KEYS_PER_LOOKUP = 5000
"""Bound parameters per `IN (...)` lookup (identity keys, names): under SQLite's and PostgreSQL's limits, and a batch
is usually one."""
RETENTION_CHECK_S = 600
"""How often (at most) a write also deletes identity keys older than the retention."""
DEFAULT_RETENTION_HOURS = 72
"""How long identity keys are kept when the caller names no retention (the config's `dedup_retention_hours`)."""


class Store:
    """A set of tables in the ledger's database (`engine` is the ledger's), created on first use. A subclass names
    its `metadata` and what it holds (`holds`, for the error)."""

    metadata: ClassVar[MetaData]
    holds: ClassVar[str]

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        try:
            # The service opens several stores at once at start (gauges, background readers): `create_tables` is
            # safe against that.
            create_tables(self.metadata, engine)
        except SQLAlchemyError as err:
            raise LedgerUnavailable(f"cannot create the {self.holds} tables: {err}") from err

    def _read(self, query: Any) -> list[dict[str, Any]]:
        return read_rows(self.engine, query)


def read_rows(engine: Engine, query: Any) -> list[dict[str, Any]]:
    """The rows of `query` as dicts; `LedgerUnavailable` when the database does not answer."""
    try:
        with engine.connect() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]
    except SQLAlchemyError as err:
        raise LedgerUnavailable(f"ledger read failed: {err}") from err
