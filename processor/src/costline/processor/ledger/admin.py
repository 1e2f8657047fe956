"""Delegated administration in the ledger's database: one row per change an API caller made, which is both the
audit log and the overlay the processors replay on the YAML baseline (`governance/`).

A row holds one object's state after the change (`after`, JSON text), the state before it (`before`), who made it
and when. Every object (`team:search`, `key:b3180bc5c5db03d7`, ...) counts its own versions from 1; the pair is
unique, so two processors (or two requests) that both saw version 3 and both write version 4 collide here: one
commits, the other is told `VersionConflict` (a 409), and the last writer never silently wins. This store keeps the
text it is handed and never parses it: what a state means is `governance/`'s.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, Text, UniqueConstraint, func, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from costline.processor.ledger.engine import LedgerUnavailable
from costline.processor.ledger.store import Store

metadata = MetaData()

admin_changes = Table(
    "costline_admin_changes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),  # the order changes are replayed in
    Column("object", String(300), nullable=False),  # `<kind>:<identity>`: team:search, key:<fingerprint>, ...
    Column("version", Integer, nullable=False),  # 1 for the object's first change
    Column("path", String(300), nullable=False),  # org/team/user/... the object sat under: who may read the row
    Column("action", String(16), nullable=False),  # create, update, rename, retire
    Column("actor", String(200), nullable=False),  # the token's name and role
    Column("at", BigInteger, nullable=False),  # unix milliseconds (the service's clock)
    Column("before", Text, nullable=True),  # JSON; null before a create
    Column("after", Text, nullable=False),  # JSON
    UniqueConstraint("object", "version", name="uq_costline_admin_changes_version"),
)


class VersionConflict(Exception):
    """Another change of the object committed first with the same version."""


class AdminStore(Store):
    """The `costline_admin_changes` table."""

    metadata = metadata
    holds = "administration"

    def rows(self, *, after_id: int = 0) -> list[dict[str, Any]]:
        """Every change with an id above `after_id`, oldest first."""
        return self._read(select(admin_changes).where(admin_changes.c.id > after_id).order_by(admin_changes.c.id))

    def last_id(self) -> int:
        """The newest change's id (0: none): what the processors poll to see that another one wrote."""
        rows = self._read(select(func.max(admin_changes.c.id).label("last")))
        return int(rows[0]["last"] or 0)

    def append(self, row: dict[str, Any]) -> int:
        """Store one change (one transaction); its id. `VersionConflict` when the object's version is taken."""
        try:
            with self.engine.begin() as conn:
                return int(conn.execute(admin_changes.insert().values(**row)).inserted_primary_key[0])
        except IntegrityError:
            raise VersionConflict(row["object"]) from None
        except SQLAlchemyError as err:
            raise LedgerUnavailable(f"storing an administrative change failed: {err}") from err
