"""The suite's PostgreSQL: the python-svc machine (and CI's) runs it on 127.0.0.1:5432, trust auth, database `test`."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
POSTGRES_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@contextmanager
def fresh_database(prefix: str = "costline_test") -> Iterator[str]:
    """A new database on the suite's PostgreSQL, as a SQLAlchemy URL; dropped afterwards (connections forced out)."""
    from sqlalchemy import create_engine, text

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def require_postgres() -> None:
    """Skip when PostgreSQL is not reachable, except in CI: the CI machine runs it, so there its absence is a
    failure, not a skip."""
    import psycopg

    try:
        psycopg.connect(POSTGRES, connect_timeout=3).close()
    except psycopg.OperationalError as err:
        if os.environ.get("CI"):
            pytest.fail(f"no PostgreSQL on 127.0.0.1:5432 in CI: {err}")
        pytest.skip(f"no PostgreSQL on 127.0.0.1:5432: {err}")
