"""The ledger's engine and dialect: connecting with every wait bounded, and bringing an older schema up to date.

SQLite (WAL, `synchronous=FULL`) or PostgreSQL (psycopg 3). Nothing here knows what a call or a price is.
"""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, create_engine, event, inspect
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.schema import CreateIndex, CreateTable

from costline.processor.config.settings import DEFAULT_LEDGER_TIMEOUT_S
from costline.processor.ledger.schema import (
    ADDED_COUNTERS,
    ADDED_DIMENSIONS,
    DIMENSIONS,
    HOUR_INDEX,
    UNIQUE_ROW,
    metadata,
    usage_hourly,
)
from costline.processor.ledger.wire import watch_checkouts
from costline.processor.model import MAX_LABEL_LENGTH

WAL_LIMIT_BYTES = 64 * 1024 * 1024
"""SQLite: past this size the writer checkpoints the write-ahead log and truncates it after a commit
(`writer.LedgerWriter`). SQLite's own automatic checkpoint only copies what no reader still sees and never shrinks the
file, so with a reader open at every commit (budgets, scrapes and the API read after each one) the log grew for
ever: 2.3 GB beside a 107 MB ledger."""


class LedgerUnavailable(Exception):
    """The ledger could not commit or answer: the receivers answer 503 / UNAVAILABLE so that exporters retry."""


class LedgerUrlError(ValueError):
    """The ledger URL cannot name a ledger: not a database URL, an unsupported database or driver, a SQLite URL
    without a file, or (for the commands that only read an existing ledger) no file there. Waiting will not fix it,
    so `costline serve` exits instead of retrying; the message names the URL (without its password) and the rule."""


LEDGER_URLS = "use sqlite:///costline.db (a file in the working directory), sqlite:////abs/path/costline.db or " \
              "postgresql://user@host/dbname"


def check_url(url: str, *, existing: bool = False) -> URL:
    """The parsed ledger URL, or `LedgerUrlError`. With `existing`, a SQLite file must already be there: a command
    that reads the ledger must not create an empty one where a typo in `--db` points."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        shown = url if "@" not in url else "<unparseable URL>"
        raise LedgerUrlError(f"ledger URL {shown!r} is not a database URL; {LEDGER_URLS}") from None
    shown = redact_url(url)
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise LedgerUrlError(f"ledger URL {shown!r}: unsupported database {backend!r}; {LEDGER_URLS}")
    if parsed.drivername not in ("postgresql", "postgres"):  # those two become psycopg 3 (open_engine)
        try:
            parsed.get_dialect().import_dbapi()
        except (ImportError, SQLAlchemyError):
            raise LedgerUrlError(f"ledger URL {shown!r}: driver {parsed.drivername!r} is not available; "
                                 f"{LEDGER_URLS}") from None
    if backend != "sqlite":
        return parsed
    if parsed.host:
        raise LedgerUrlError(f"ledger URL {shown!r}: a SQLite URL names a file after three slashes, not a host: "
                             f"sqlite:///{parsed.host} is {parsed.host} in the working directory")
    if parsed.database in (None, "", ":memory:") or parsed.database.startswith("file:"):
        return parsed  # in memory, or a SQLite URI the driver resolves
    path = Path(parsed.database)
    if existing and not path.is_file():
        raise LedgerUrlError(f"no ledger at {shown!r}: {path} does not exist (check --db; only `costline serve` "
                             "creates a ledger)")
    if not path.parent.is_dir():
        raise LedgerUrlError(f"ledger URL {shown!r}: the directory {path.parent} does not exist")
    return parsed


def quote(column: str) -> str:
    return f'"{column}"'  # `user` and `key` are reserved words in PostgreSQL


def dialect_insert(engine: Engine) -> Any:
    """The dialect's `insert` (SQLite's or PostgreSQL's), which has `on_conflict_do_update`: for tables kept beside
    the ledger's in the same database (outcomes) that upsert through SQLAlchemy."""
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif engine.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:  # pragma: no cover - refused when the ledger is opened
        raise ValueError(engine.dialect.name)
    return insert


def redact_url(db_url: str) -> str:
    """The ledger URL without its password, for logs and error messages."""
    try:
        return make_url(db_url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable URL>"


def open_engine(url: str, timeout_s: float = DEFAULT_LEDGER_TIMEOUT_S) -> Engine:
    """The engine, with every wait on the database bounded by `timeout_s`.

    A locked table or a held write lock must not hold an exporter's request (and every request queued behind it)
    for as long as the lock lasts: past the bound the write fails, the receiver answers 503 + Retry-After, and the
    exporter retries later. On SQLite that is the busy timeout; on PostgreSQL `lock_timeout` (a statement waiting
    for a lock longer than that is cancelled), the connection timeout and the pool's checkout wait — and for the
    writer, a server that does not answer at all: `wire.deadline`.
    """
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": timeout_s, "check_same_thread": False},
                               pool_timeout=timeout_s)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")  # readers (API, budgets) never block the writer
            cursor.execute("PRAGMA synchronous=FULL")  # an acknowledged batch survives a crash of the machine too
            # When the log restarts from its beginning, its file is cut back to this size.
            cursor.execute(f"PRAGMA journal_size_limit={WAL_LIMIT_BYTES}")
            cursor.close()

        return engine
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        # A bare postgresql:// means psycopg2 to SQLAlchemy 2.0; the `postgres` extra installs psycopg 3.
        parsed = parsed.set(drivername="postgresql+psycopg")
    connect_args: dict[str, Any] = {}
    if parsed.get_backend_name() == "postgresql":
        # Server settings as libpq connection options, so they hold from the session's first statement and survive
        # the pool's rollback on return; appended to `options` the URL may already carry (a search_path, say).
        # statement_timeout is left alone here: a usage report over a large ledger may rightly run longer than an
        # ingest should wait; the writer sets it for its own transactions (`writer.LedgerWriter`).
        setting = f"-c lock_timeout={max(1, round(timeout_s * 1000))}"
        options = parsed.query.get("options")
        connect_args["options"] = f"{options} {setting}" if options else setting
        if "connect_timeout" not in parsed.query:
            connect_args["connect_timeout"] = max(1, math.ceil(timeout_s))  # whole seconds in libpq
    engine = create_engine(parsed, pool_size=5, max_overflow=5, pool_timeout=timeout_s, connect_args=connect_args)
    if parsed.get_backend_name() == "postgresql":
        watch_checkouts(engine)  # the pre-ping, under the writer's deadline on the wire
    return engine


_CREATING = threading.Lock()
_CREATE_ATTEMPTS = 5


def create_tables(tables: MetaData, engine: Engine) -> None:
    """`tables.create_all(engine)`, safe when others create the same tables at the same moment.

    `create_all` checks which tables exist, then creates the rest: a creator in between makes its CREATE fail
    ("already exists"). In this process the creators (the ledger, the outcome, closed-period and reconciliation
    stores, opened by the service and by its background readers) take turns under one lock; another process
    opening the same database is met by checking again, a few times, since each pass creates what is still missing.
    """
    with _CREATING:
        for attempt in range(_CREATE_ATTEMPTS):
            try:
                tables.create_all(engine)
                return
            except SQLAlchemyError:
                if attempt == _CREATE_ATTEMPTS - 1:
                    raise


def migrate(engine: Engine) -> None:
    """Create the tables, or bring a ledger made by an earlier schema up to date in place, keeping its rows:
    counters it lacks are added with 0 (what its rows counted), owner columns with '' (no such owner), and then
    the unique constraint over a row's dimensions is rebuilt to cover them. Several processors opening one ledger
    at once is fine: each step re-checks under a lock."""
    create_tables(metadata, engine)
    missing_counters = [c for c in ADDED_COUNTERS if c not in _columns(engine)]
    for name in missing_counters:
        try:
            with engine.begin() as conn:
                conn.exec_driver_sql(f"ALTER TABLE {usage_hourly.name} ADD COLUMN {quote(name)} "
                                     "BIGINT NOT NULL DEFAULT 0")
        except SQLAlchemyError:
            # Another process opening the same ledger may have added it first; anything else is still an error.
            if name not in _columns(engine):
                raise
    if any(c not in _columns(engine) for c in ADDED_DIMENSIONS):
        if engine.dialect.name == "sqlite":
            _rebuild_sqlite(engine)
        else:
            _add_dimensions_postgresql(engine)


def _columns(engine: Engine) -> set[str]:
    return {column["name"] for column in inspect(engine).get_columns(usage_hourly.name)}


def _add_dimensions_postgresql(engine: Engine) -> None:
    """PostgreSQL changes constraints in place, in one transaction (DDL is transactional there); the table lock
    makes a second processor doing the same wait, then find the work done."""
    with engine.begin() as conn:
        conn.exec_driver_sql(f"LOCK TABLE {usage_hourly.name} IN ACCESS EXCLUSIVE MODE")
        present = {row[0] for row in conn.exec_driver_sql(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s "
            "AND table_schema = current_schema()", (usage_hourly.name,))}
        missing = [c for c in ADDED_DIMENSIONS if c not in present]
        if not missing:
            return
        for name in missing:
            conn.exec_driver_sql(f"ALTER TABLE {usage_hourly.name} ADD COLUMN {quote(name)} "
                                 f"VARCHAR({MAX_LABEL_LENGTH}) NOT NULL DEFAULT ''")
        conn.exec_driver_sql(f"ALTER TABLE {usage_hourly.name} DROP CONSTRAINT IF EXISTS {UNIQUE_ROW}")
        conn.exec_driver_sql(f"ALTER TABLE {usage_hourly.name} ADD CONSTRAINT {UNIQUE_ROW} "
                             f"UNIQUE ({', '.join(quote(c) for c in DIMENSIONS)})")


def _rebuild_sqlite(engine: Engine) -> None:
    """SQLite cannot change a table's constraints: the table is rebuilt (SQLite's documented procedure: create the
    new table, copy, drop the old, rename) in one `BEGIN IMMEDIATE` transaction, so a crash leaves the old ledger
    whole and a second process waits for the write lock, then finds the work done."""
    old = f"{usage_hourly.name}_before_migration"
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        previous = raw.isolation_level
        raw.isolation_level = None  # the transaction is ours: pysqlite would commit before DDL otherwise
        cursor = raw.cursor()
        try:
            cursor.execute("BEGIN IMMEDIATE")
            present = {row[1] for row in cursor.execute(f"PRAGMA table_info({usage_hourly.name})")}
            if all(c in present for c in ADDED_DIMENSIONS):
                cursor.execute("ROLLBACK")
                return
            kept = [c.name for c in usage_hourly.columns if c.name in present]
            cursor.execute(f"ALTER TABLE {usage_hourly.name} RENAME TO {old}")
            cursor.execute(f"DROP INDEX IF EXISTS {HOUR_INDEX}")
            cursor.execute(str(CreateTable(usage_hourly).compile(dialect=engine.dialect)))
            for index in usage_hourly.indexes:
                cursor.execute(str(CreateIndex(index).compile(dialect=engine.dialect)))
            columns = ", ".join(quote(c) for c in kept)
            cursor.execute(f"INSERT INTO {usage_hourly.name} ({columns}) SELECT {columns} FROM {old}")
            cursor.execute(f"DROP TABLE {old}")
            cursor.execute("COMMIT")
        except BaseException:
            if raw.in_transaction:
                cursor.execute("ROLLBACK")
            raise
        finally:
            cursor.close()
            raw.isolation_level = previous


