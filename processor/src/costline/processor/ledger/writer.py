"""Writing the ledger: a batch's hourly rows and its calls' identity keys in one transaction.

One ingest request is one transaction: already-billed calls are dropped (an exporter's retry, or a second span for
the same call), the identity keys of the rest are written (the unique index settles a race with another processor
billing the same call), their rows summed per hour in memory (`model.counts_of`, the one counter vector) and
upserted, and their runs (`runs.RunRecorder`) — then it commits, and only then does the receiver acknowledge.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from operator import add
from pathlib import Path

from sqlalchemy import delete, inspect, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from costline.processor.config.settings import DEFAULT_LEDGER_TIMEOUT_S
from costline.processor.ledger.engine import WAL_LIMIT_BYTES, LedgerUnavailable, quote
from costline.processor.ledger.reader import UNPRICED_COLUMNS
from costline.processor.ledger.runs import DEFAULT_RUN_POLICY, RunPolicy, RunRecorder
from costline.processor.ledger.schema import COUNTERS, DIMENSIONS, TEXT_KEYS, call_keys, cost_changes, usage_hourly
from costline.processor.ledger.store import DEFAULT_RETENTION_HOURS, KEYS_PER_LOOKUP, RETENTION_CHECK_S
from costline.processor.ledger.wire import NoAnswer, deadline
from costline.processor.model import (
    USAGE_FAMILY_ON,
    USAGE_FAMILY_ON_KEPT_UNTIL,
    Entry,
    Family,
    call_families,
    counts_of,
    is_usage_family,
    records_no_response_id,
    text_call_keys,
)
from costline.processor.units import NS_PER_S, S_PER_HOUR, hour_start_s

log = logging.getLogger("costline.processor.ledger")

WIRE_DEADLINE = 1.5
"""The deadline on the wire, in ledger timeouts: the server's own bounds (`lock_timeout`, `statement_timeout`: one
timeout) answer first when the server answers at all, leaving the connection usable; the watchdog only cuts one
that gets no answer."""
WAL_RETRY_S = 10.0
"""After a checkpoint that readers kept from finishing, how long before the next attempt."""

_DIMENSION_WIDTH = usage_hourly.c.org.type.length


class LedgerWriter:
    """Thread-safe: one writer at a time (SQLite allows no more)."""

    def __init__(self, engine: Engine, timeout_s: float = DEFAULT_LEDGER_TIMEOUT_S) -> None:
        self.engine = engine
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        database = engine.url.database if engine.dialect.name == "sqlite" else None
        self._wal = Path(f"{database}-wal") if database and database != ":memory:" else None
        self.wal_limit_bytes = WAL_LIMIT_BYTES
        self._next_checkpoint = 0.0
        ms = max(1, round(timeout_s * 1000))
        self._bound_sql = (None if engine.dialect.name != "postgresql" else
                           f"SELECT set_config('statement_timeout', '{ms}', true), "
                           f"set_config('idle_in_transaction_session_timeout', '{ms}', true)")
        # The statements of every batch, as driver-level SQL: executemany on plain tuples skips SQLAlchemy's
        # per-row parameter processing, the largest cost of a write. The syntax is common to SQLite and PostgreSQL.
        mark = self._mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"
        columns = (*DIMENSIONS, *COUNTERS)
        table = usage_hourly.name
        self._upsert_sql = (
            f"INSERT INTO {table} ({', '.join(quote(c) for c in columns)}) "
            f"VALUES ({', '.join(mark for _ in columns)}) "
            f"ON CONFLICT ({', '.join(quote(c) for c in DIMENSIONS)}) DO UPDATE SET "
            + ", ".join(f"{quote(c)} = {table}.{quote(c)} + excluded.{quote(c)}" for c in COUNTERS)
        )
        self._sql_cache: dict[tuple[str, int], str] = {}
        self._last_retention = 0.0
        self._text_keys_newest = _newest_text_key(engine)
        self._runs = RunRecorder(engine.dialect.paramstyle)
        self._usage_on = False
        """The ledger's usage family is on (`model.USAGE_FAMILY_ON` found or written by a committed batch): never
        turned off, so once known it is no longer looked up."""

    def record(self, entries: Sequence[Entry], *, now: int, retention_hours: int = DEFAULT_RETENTION_HOURS,
               runs: RunPolicy | None = DEFAULT_RUN_POLICY) -> list[Entry]:
        """Write `entries` in one transaction; returns those that were new (billed neither before nor earlier in
        this batch). `now` (unix seconds, the caller's clock) stamps the identity keys for retention and is the hour of
        a call without a start time. `runs`: which runs the new calls are added to (`ledger.runs`), None for none.

        Four statements per batch whatever its size (look up its keys, insert its new calls' keys, insert the marks
        that pair spans of one call across batches, upsert their hourly rows; another takes back keys when another
        processor billed one of its calls meanwhile, and a batch with siblings of calls billed before looks further
        ordinals up: `_Identities`), all as driver-level SQL: SQLAlchemy's per-statement compilation (an `IN` of a
        thousand bound parameters is expanded anew on every call) cost more than SQLite's work for them. A ledger
        upgraded from text keys looks those up too, until the newest of them is older than `retention_hours`.
        """
        if not entries:
            return []
        try:
            with self.transaction() as conn:
                identities = _Identities(entries, lambda keys: set(self._lookup(conn, call_keys.name, sorted(keys))),
                                         usage_on=self._usage_on)
                cutoff = now - retention_hours * S_PER_HOUR
                if self._text_keys_newest is not None and self._text_keys_newest < cutoff:
                    self._text_keys_newest = _retire_text_keys(conn, cutoff)
                if self._text_keys_newest is not None:
                    identities.present.update(self._billed_as_text(conn, entries))
                claims, marks = identities.decide()
                if marks:
                    self._write_marks(conn, marks, now)
                if identities.sets_usage_on:
                    self._write_marks(conn, {USAGE_FAMILY_ON}, USAGE_FAMILY_ON_KEPT_UNTIL)
                fresh = self._claim(conn, claims, now) if claims else []
                if fresh:
                    # Rows in sorted order: processors sharing one PostgreSQL ledger then take row locks in the same
                    # order, so two concurrent batches touching the same hours wait instead of deadlocking (a
                    # deadlock is safe — 503, the exporter retries — but wasted work).
                    conn.exec_driver_sql(self._upsert_sql, sorted(hourly_rows(fresh, now * NS_PER_S)))
                if runs is not None:
                    self._runs.record(conn, fresh, now=now, policy=runs)
                if time.monotonic() - self._last_retention > RETENTION_CHECK_S:
                    self._last_retention = time.monotonic()
                    conn.execute(delete(call_keys).where(call_keys.c.billed_at < cutoff))
        except SQLAlchemyError as err:
            raise LedgerUnavailable(f"ledger write failed: {type(err).__name__}: {err}") from err
        self._usage_on = identities.usage_on  # committed: the flag is in the ledger
        return fresh

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """The write lock and a transaction, each within the ledger timeout: waiting for another write of this
        process, for a lock in the database (`lock_timeout`), for a statement (`statement_timeout`, set for this
        transaction only: reports may run longer) and, a little longer (`WIRE_DEADLINE`), for a server that does
        not answer at all (`wire.deadline`). Past it: `LedgerUnavailable`, and the transaction is rolled back (or
        was never sent)."""
        if not self._lock.acquire(timeout=self.timeout_s):
            raise LedgerUnavailable(f"another write held the ledger for longer than the ledger timeout "
                                    f"({self.timeout_s:g} s)")
        try:
            with deadline(self.timeout_s * WIRE_DEADLINE, armed=self._bound_sql is not None) as bound:
                with self.engine.begin() as conn:
                    if self._bound_sql is not None:
                        conn.exec_driver_sql(self._bound_sql)
                    yield conn
            if self._wal is not None:
                self._bound_wal()
        except (SQLAlchemyError, NoAnswer) as err:
            if bound.expired or isinstance(err, NoAnswer):
                raise LedgerUnavailable(f"the ledger did not answer within the ledger timeout "
                                        f"({self.timeout_s:g} s): {type(err).__name__}") from err
            raise
        finally:
            self._lock.release()

    def _bound_wal(self) -> None:
        """SQLite, after a commit: once the write-ahead log passes `wal_limit_bytes`, copy it into the database and
        truncate it. The checkpoint waits for the readers that still see older pages (queries take milliseconds)
        at most a quarter of the ledger timeout, so the export it follows is not held; when they outlast that, it is
        tried again `WAL_RETRY_S` later. Never fails the write, which has committed."""
        try:
            if self._wal.stat().st_size <= self.wal_limit_bytes or time.monotonic() < self._next_checkpoint:
                return
        except FileNotFoundError:
            return
        try:
            with self.engine.connect() as conn:
                raw = conn.connection.driver_connection
                (busy_ms,) = raw.execute("PRAGMA busy_timeout").fetchone()
                raw.execute(f"PRAGMA busy_timeout = {max(1, round(self.timeout_s * 250))}")
                try:
                    (busy, _, _) = raw.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                finally:
                    raw.execute(f"PRAGMA busy_timeout = {busy_ms}")
        except (SQLAlchemyError, sqlite3.Error) as err:
            busy = 1
            log.warning("checkpointing the ledger's write-ahead log failed: %s", err)
        if busy:
            self._next_checkpoint = time.monotonic() + WAL_RETRY_S

    def price_rows(self, priced: Iterable[tuple[int, Mapping[str, int], int]]) -> int:
        """Bill rows' unpriced tokens: `(row id, its unpriced counters as read, their cost in pico-dollars)`. A row
        is changed only if its unpriced counters are still what was read (compare and set), so calls billed into it
        since the read are left for the next reprice instead of being marked priced unpriced, and two reprices
        running at once price each token once. One transaction; returns the rows changed."""
        changed = 0
        try:
            with self._lock, self.engine.begin() as conn:
                for row_id, unpriced, cost_pico in priced:
                    statement = update(usage_hourly).where(usage_hourly.c.id == row_id)
                    for column, value in unpriced.items():
                        statement = statement.where(usage_hourly.c[column] == value)
                    result = conn.execute(statement.values(
                        cost_pico_usd=usage_hourly.c.cost_pico_usd + cost_pico, **dict.fromkeys(unpriced, 0)))
                    changed += result.rowcount
        except SQLAlchemyError as err:
            raise LedgerUnavailable(f"ledger write failed: {type(err).__name__}: {err}") from err
        return changed

    def rerate_rows(self, rerated: Iterable[tuple[Mapping[str, int], int, str]], *, now: int) -> int:
        """Set the cost of rows re-rated at a new price: `(row as read by LedgerReader.rows_since, its new cost in
        pico-dollars, the price's source)`. Each changed row's unpriced counters are cleared (its tokens are all
        priced now) and an audit row (old cost, new cost, when, source) is written in the same transaction. A row is
        changed only if its counters are still what was read (compare and set): calls billed into it since are
        left for the next re-rate rather than priced at a total that leaves them out. `now` (unix seconds) stamps the audit
        rows. Returns the rows changed."""
        changed_at = now
        changed = 0
        try:
            with self._lock, self.engine.begin() as conn:
                for row, cost_pico, source in rerated:
                    statement = update(usage_hourly).where(usage_hourly.c.id == row["id"])
                    for column in COUNTERS:
                        statement = statement.where(usage_hourly.c[column] == row[column])
                    result = conn.execute(statement.values(
                        cost_pico_usd=cost_pico, **dict.fromkeys(UNPRICED_COLUMNS, 0)))
                    if result.rowcount:
                        changed += 1
                        conn.execute(cost_changes.insert().values(
                            row_id=row["id"], hour=row["hour"], provider=row["provider"], model=row["model"],
                            old_cost_pico_usd=row["cost_pico_usd"], new_cost_pico_usd=cost_pico,
                            changed_at=changed_at, price_source=source[: cost_changes.c.price_source.type.length]))
        except SQLAlchemyError as err:
            raise LedgerUnavailable(f"ledger write failed: {type(err).__name__}: {err}") from err
        return changed

    def _claim(self, conn: Connection, claims: list[tuple[Entry, tuple[bytes, ...]]], now: int) -> list[Entry]:
        """Write the exclusive keys of each entry in `claims` (distinct across entries: `_Identities.decide`); returns
        the entries all of whose keys this transaction wrote. Another processor may have written one since the lookup
        — the other span of the same call, billed at the same moment: on PostgreSQL the insert waits for that
        transaction and, once it commits, skips the key. Such an entry is billed there, not here, and the keys it did
        get are taken back.

        Keys first, then rows, each in sorted order: two batches claiming the same keys wait for each other in one
        order (no deadlock), and neither holds a row lock while it waits."""
        keys = sorted(k for _, ks in claims for k in ks)
        if not keys:  # a batch of spans without any identity (see `model.call_keys`) has none to remember
            return [e for e, _ in claims]
        claimed: set[bytes] = set()
        for i in range(0, len(keys), KEYS_PER_LOOKUP):
            chunk = keys[i : i + KEYS_PER_LOOKUP]
            sql = self._statement("claim", len(chunk), lambda n: (
                f"INSERT INTO {call_keys.name} (dedup_key, billed_at) VALUES "
                + ", ".join([f"({self._mark}, {self._mark})"] * n) + " ON CONFLICT DO NOTHING RETURNING dedup_key"))
            claimed.update(key for (key,) in conn.exec_driver_sql(sql, tuple(v for k in chunk for v in (k, now))))
        if len(claimed) == len(keys):
            return [e for e, _ in claims]
        won = [e for e, ks in claims if all(k in claimed for k in ks)]
        taken_back = sorted(k for _, ks in claims if not all(k in claimed for k in ks) for k in ks if k in claimed)
        for i in range(0, len(taken_back), KEYS_PER_LOOKUP):
            chunk = taken_back[i : i + KEYS_PER_LOOKUP]
            conn.exec_driver_sql(self._statement("release", len(chunk), lambda n: (
                f"DELETE FROM {call_keys.name} WHERE dedup_key IN ({', '.join([self._mark] * n)})")), tuple(chunk))
        return won

    def _write_marks(self, conn: Connection, marks: set[bytes], now: int) -> None:
        """Write marks (`model.Family.mark_key`, and the usage family's claims): shared by the spans that write them,
        so a mark already there is no conflict."""
        keys = sorted(marks)
        for i in range(0, len(keys), KEYS_PER_LOOKUP):
            chunk = keys[i : i + KEYS_PER_LOOKUP]
            sql = self._statement("mark", len(chunk), lambda n: (
                f"INSERT INTO {call_keys.name} (dedup_key, billed_at) VALUES "
                + ", ".join([f"({self._mark}, {self._mark})"] * n) + " ON CONFLICT DO NOTHING"))
            conn.exec_driver_sql(sql, tuple(v for k in chunk for v in (k, now)))

    def _statement(self, kind: str, n: int, make) -> str:
        """The SQL of `kind` for `n` keys, cached: batches come in a handful of sizes (the exporter's batch size,
        and the remainders), so this holds a few strings."""
        sql = self._sql_cache.get((kind, n))
        if sql is None:
            if len(self._sql_cache) > 64:
                self._sql_cache.clear()
            sql = self._sql_cache[(kind, n)] = make(n)
        return sql

    def _billed_as_text(self, conn: Connection, entries: Sequence[Entry]) -> set[bytes]:
        """The keys of those `entries` that an earlier release billed under text keys (`model.text_call_keys`,
        looked up as the keys are): each as if billed under its keys now, so that it and its other spans in this
        batch are dropped."""
        texts = [(e.keys, text_call_keys(e.call)) for e in entries if e.keys]
        found = set(self._lookup(conn, TEXT_KEYS, list({k for _, keys in texts for k in keys})))
        return {k for keys, text in texts if not found.isdisjoint(text) for k in keys} if found else set()

    def _lookup(self, conn: Connection, table: str, keys: list) -> Iterator:
        """Those of `keys` in `table`."""
        for i in range(0, len(keys), KEYS_PER_LOOKUP):
            chunk = keys[i : i + KEYS_PER_LOOKUP]
            sql = self._statement(table, len(chunk), lambda n: (
                f"SELECT dedup_key FROM {table} WHERE dedup_key IN ({', '.join([self._mark] * n)})"))
            for (key,) in conn.exec_driver_sql(sql, tuple(chunk)):
                yield key


def _newest_text_key(engine: Engine) -> int | None:
    """When the newest text key of an earlier release was billed (0 if its table is empty); None without that
    table."""
    with engine.connect() as conn:
        return _newest_in(conn)


def _newest_in(conn: Connection) -> int | None:
    if not inspect(conn).has_table(TEXT_KEYS):
        return None
    return conn.exec_driver_sql(f"SELECT max(billed_at) FROM {TEXT_KEYS}").scalar() or 0


def _retire_text_keys(conn: Connection, cutoff: int) -> int | None:
    """Drop the table of text keys once none is newer than `cutoff` (a retry of a call billed before that is billed
    again anyway); read again first, as a processor of the earlier release sharing the ledger may still be writing
    text keys. Returns the newest text key kept, or None once the table is gone."""
    newest = _newest_in(conn)
    if newest is not None and newest < cutoff:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {TEXT_KEYS}")
        return None
    return newest


_ORDINALS_PER_LOOKUP = 16
"""Ordinals of one family looked up at once when a span's first ordinal is taken (a sibling billed before it)."""
_MAX_ORDINAL = 1024
"""Past this many same-source spans of one family within a second or two (a load test against a fake provider), a
span is its own call and paired with nothing: its span key still meets its retries."""


class _Probe:
    """The keys that decide one ordinal of one family, computed once: its source's marks (the second before, its own,
    the one after) and the claims in each evidence space, in their windows."""

    __slots__ = ("marks", "evidence")

    def __init__(self, family: Family, ordinal: int) -> None:
        s = family.second
        self.marks = (family.mark_key(ordinal, s - 1), family.mark_key(ordinal, s), family.mark_key(ordinal, s + 1))
        self.evidence = tuple((space, tuple(family.claim_key(space, ordinal, w) for w in family.claim_windows(space)))
                              for space in family.evidence)

    def keys(self) -> list[bytes]:
        return [*self.marks, *(k for _, keys in self.evidence for k in keys)]


class _Identities:
    """Which of a batch's entries are calls not billed yet, by `model.call_keys` and `model.call_families`: the keys
    to claim for each, and the marks to write. One lookup of every entry's keys and its families' first ordinals;
    further ordinals only for spans whose first one is taken (siblings of calls billed before), a lookup each."""

    def __init__(self, entries: Sequence[Entry], lookup: Callable[[set[bytes]], set[bytes]], *,
                 usage_on: bool = True) -> None:
        self.entries = entries
        self._lookup = lookup
        self._probes: dict[tuple[int, int], _Probe] = {}
        families = [call_families(e.call) if e.keys and e.call.span_id else () for e in entries]
        # The usage family only once the ledger has seen a source recording no response id (the flag, looked up
        # with the batch's other keys), or this batch holds one of its spans (which sets the flag).
        self.sets_usage_on = not usage_on and any(records_no_response_id(f) for fs in families for f in fs)
        self.usage_on = usage_on or self.sets_usage_on
        self.families = families if self.usage_on else [
            tuple(f for f in fs if not is_usage_family(f)) for fs in families]
        wanted = {k for e in entries for k in e.keys}
        for fs in self.families:
            for family in fs:
                wanted.update(self._probe(family, 0).keys())
        if not self.usage_on:
            wanted.add(USAGE_FAMILY_ON)
        self.known = wanted
        self.present = lookup(wanted)
        """Keys billed before, and those this batch writes, as it decides."""
        self._hints: dict[tuple, int] = {}
        if not self.usage_on and USAGE_FAMILY_ON in self.present:  # set since this writer last looked: once
            self.usage_on = True
            self.families = families
            usage = {k for fs in families for f in fs if is_usage_family(f) for k in self._probe(f, 0).keys()}
            self.known.update(usage)
            self.present.update(lookup(usage))

    def _probe(self, family: Family, ordinal: int) -> _Probe:
        probe = self._probes.get((id(family), ordinal))
        if probe is None:
            probe = self._probes[(id(family), ordinal)] = _Probe(family, ordinal)
        return probe

    def decide(self) -> tuple[list[tuple[Entry, tuple[bytes, ...]]], set[bytes]]:
        present = self.present
        claims: list[tuple[Entry, tuple[bytes, ...]]] = []
        marks: set[bytes] = set()
        for e, families in zip(self.entries, self.families, strict=True):
            keys = e.keys
            if not families:  # no span id: any of its keys is a call billed (an exporter's retry, or its twin)
                if keys and not present.isdisjoint(keys):
                    continue
                present.update(keys)
                claims.append((e, keys))
                continue
            span_key = keys[-1]  # `call_keys` puts the span key last
            if span_key in present:
                continue  # the same span: a retry, or twice in this batch
            found: list[bytes] = []  # the marks of the families that found this call's other span
            owned: list[bytes] = [span_key]
            own_marks: list[bytes] = []
            for family in families:
                ordinal = self._ordinal(family)
                if ordinal is None:
                    continue
                probe = self._probe(family, ordinal)
                mark = probe.marks[1]  # under its own second
                if self._met(family, ordinal, probe):
                    found.append(mark)
                    continue
                own_marks.append(mark)
                if family.exclusive:  # the response family: its evidence is its own claim space, same windows
                    owned.extend(probe.evidence[0][1])
                else:
                    own_marks.append(family.claim_key(family.claim, ordinal, family.second))
            if found:  # another source's span of this call was billed: this one is paired with it
                found.append(span_key)  # remembered, so that its retry is met before its source's marks move it on
                present.update(found)
                marks.update(found)
                continue
            present.update(owned)
            present.update(own_marks)
            marks.update(own_marks)
            claims.append((e, tuple(owned)))
        return claims, marks

    def _ordinal(self, family: Family) -> int | None:
        """The first ordinal of `family` its source holds no mark of (within a second either side); None past
        `_MAX_ORDINAL` (the span is then its own call, paired with nothing). Ordinals below the hint of the same
        family and second were taken when last asked, and a batch only takes more: the search starts there, so a
        batch of many identical spans costs a lookup per doubling, not one per span and ordinal."""
        hint_key = (family.identity, family.claim, family.source, family.second)
        ordinal = self._hints.get(hint_key, 0)
        present, known = self.present, self.known
        while ordinal < _MAX_ORDINAL:
            probe = self._probe(family, ordinal)
            if not known.issuperset(probe.marks):
                self._fetch(family, ordinal, max(_ORDINALS_PER_LOOKUP, ordinal))
            if present.isdisjoint(probe.marks):
                if ordinal and not known.issuperset(probe.keys()):  # ordinal 0: looked up first
                    self._fetch(family, ordinal, _ORDINALS_PER_LOOKUP)
                if ordinal:
                    self._hints[hint_key] = ordinal
                return ordinal
            ordinal += 1
        self._hints[hint_key] = _MAX_ORDINAL
        return None

    def _met(self, family: Family, ordinal: int, probe: _Probe) -> bool:
        """Whether another source's span holds `ordinal` in one of `family`'s evidence spaces."""
        present, s = self.present, family.second
        for space, claimed in probe.evidence:
            if not present.isdisjoint(claimed):
                if space == family.claim:
                    return True
                own = [family.mark_key(ordinal, w, space) for w in (s - 1, s, s + 1)]  # rare: looked up when met
                if not self.known.issuperset(own):
                    self.known.update(own)
                    present.update(self._lookup(set(own)))
                if present.isdisjoint(own):
                    return True
        return False

    def _fetch(self, family: Family, first: int, count: int) -> None:
        wanted = {k for o in range(first, first + count) for k in self._probe(family, o).keys()} - self.known
        self.known.update(wanted)
        self.present.update(self._lookup(wanted))


def hourly_rows(entries: Iterable[Entry], now_ns: int) -> list[tuple]:
    """One row per hour × owner × call dimensions: `DIMENSIONS` then `COUNTERS` (the `model.Counts` vector summed),
    as tuples for executemany. A call without a start time counts in the hour of `now_ns`."""
    rows: dict[tuple, tuple[int, ...]] = {}
    for e in entries:
        call = e.call
        start = call.start_time_unix_nano or now_ns
        # `Owner` is a named tuple in OWNER_FIELDS order: unpacked in C.
        ident = (hour_start_s(start), *e.owner, call.provider, call.model or "", call.operation,
                 call.service_name or "", call.service_tier, call.processing)
        counts = counts_of(call, e.cost_pico, e.unpriced_units)
        row = rows.get(ident)
        rows[ident] = counts if row is None else tuple(map(add, row, counts))
    out = []
    for ident, counters in rows.items():
        values = ident[1:]
        # Fast path in C for the usual row; only a row with a bad value pays for fixing each value. Two rows that
        # become equal once fixed are fine: executemany runs the upsert once per row, the second one adds.
        if max(map(len, values)) > _DIMENSION_WIDTH or "\x00" in "".join(values):
            ident = (ident[0], *(_dimension(v) for v in values))
        out.append(ident + counters)
    return out


def _dimension(value: str) -> str:
    """A value PostgreSQL accepts in a VARCHAR(255) (no NUL, not too long): a poison value would fail every retry
    of its batch, for ever."""
    if len(value) <= _DIMENSION_WIDTH and "\x00" not in value:
        return value
    return value.replace("\x00", "")[:_DIMENSION_WIDTH]
