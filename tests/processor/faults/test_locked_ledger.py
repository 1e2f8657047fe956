"""A ledger locked by someone else: exports are answered 503 + Retry-After within the ledger timeout, not held.

Another connection holds the ledger (PostgreSQL: `LOCK TABLE costline_usage_hourly IN ACCESS EXCLUSIVE MODE`, as
a migration or a careless admin would; SQLite: an open write transaction). `costline serve` runs with
`COSTLINE_LEDGER_TIMEOUT=1`: the export must get 503 with Retry-After within that bound (plus slack for the machine),
bill nothing, and bill exactly once when the exporter retries after the lock is released.
"""

from __future__ import annotations

import sqlite3
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest

from tests.postgres import POSTGRES, require_postgres
from tests.processor.otlp import llm_span, request_of

from .conftest import Served, serve, stop

LEDGER_TIMEOUT_S = 1.0
SLACK_S = 4.0
"""Room for a loaded 2-core machine; the unbounded wait this guards against lasted as long as the lock (or 30 s)."""


def post(url: str, body: bytes, timeout: float = LEDGER_TIMEOUT_S + SLACK_S + 5) -> tuple[int, dict[str, str]]:
    request = urllib.request.Request(url, body, {"Content-Type": "application/x-protobuf"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - loopback
            return response.status, dict(response.headers)
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers)


def get_status(url: str) -> tuple[int, dict[str, str]]:
    try:
        with urllib.request.urlopen(url, timeout=LEDGER_TIMEOUT_S + SLACK_S + 5) as response:  # noqa: S310
            return response.status, dict(response.headers)
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers)


Locker = Callable[[], AbstractContextManager[None]]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def locked_ledger(request, tmp_path: Path) -> Iterator[tuple[str, str, Locker]]:
    """(backend, ledger URL, a context manager holding the ledger locked from another connection)."""
    if request.param == "sqlite":
        path = tmp_path / "ledger.db"

        @contextmanager
        def hold_sqlite() -> Iterator[None]:
            conn = sqlite3.connect(path, isolation_level=None)
            conn.execute("BEGIN IMMEDIATE")  # the write lock, as another writer mid-transaction holds it
            try:
                yield
            finally:
                conn.execute("ROLLBACK")
                conn.close()

        yield "sqlite", f"sqlite:///{path}", hold_sqlite
        return

    import psycopg

    require_postgres()
    schema = f"locked_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")

    @contextmanager
    def hold_postgres() -> Iterator[None]:
        with psycopg.connect(POSTGRES) as conn:
            conn.execute(f"LOCK TABLE {schema}.costline_usage_hourly IN ACCESS EXCLUSIVE MODE")
            try:
                yield
            finally:
                conn.rollback()

    try:
        # The search_path comes as a libpq option in the URL: the processor's own options must add to it.
        yield "postgresql", f"postgresql+psycopg://postgres@127.0.0.1:5432/test?options=-csearch_path%3D{schema}", \
            hold_postgres
    finally:
        with psycopg.connect(POSTGRES, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def test_locked_ledger_answers_503_within_the_timeout_and_the_retry_bills_once(
        tmp_path: Path, serving: list[Served], locked_ledger: tuple[str, str, Locker]) -> None:
    backend, db_url, hold_lock = locked_ledger
    served = serve(tmp_path, db_url, extra_env={"COSTLINE_LEDGER_TIMEOUT": str(LEDGER_TIMEOUT_S)})
    serving.append(served)
    body = request_of([llm_span(team="marketing", start_ns=time.time_ns()) for _ in range(3)]).SerializeToString()

    with hold_lock():
        started = time.monotonic()
        status, headers = post(served.otlp_url, body)
        elapsed = time.monotonic() - started
        assert status == 503, (status, served.log.read_text()[-2000:])
        assert int(headers["Retry-After"]) > 0
        assert elapsed < LEDGER_TIMEOUT_S + SLACK_S, elapsed
        if backend == "postgresql":
            # Readers wait for an ACCESS EXCLUSIVE lock too: the API answers 503 as quickly, not a hang or a 500.
            started = time.monotonic()
            status, headers = get_status(f"{served.api_url}/api/v1/usage?group_by=team")
            assert status == 503 and int(headers["Retry-After"]) > 0
            assert time.monotonic() - started < LEDGER_TIMEOUT_S + SLACK_S

    assert served.usage("team") == []  # the 503'd batch billed nothing
    assert post(served.otlp_url, body)[0] == 200  # the exporter's retry, once the lock is gone
    assert post(served.otlp_url, body)[0] == 200  # and a second retry is recognised
    assert [(r["team"], r["requests"]) for r in served.usage("team")] == [("marketing", 3)]
    assert stop(served) == 0
