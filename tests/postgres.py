"""The suite's PostgreSQL: the python-svc machine (and CI's) runs it on 127.0.0.1:5432, trust auth, database `test`."""

from __future__ import annotations

import os

import pytest

POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


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
