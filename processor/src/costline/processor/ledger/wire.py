"""A deadline on the wire: how long a write may wait for PostgreSQL's answers.

libpq waits for a reply as long as its connection is open. A server that stops answering with the connection still
open (a network path that drops packets, a stalled proxy or pooler, a frozen host) held the writing thread — and
every export queued behind the write lock — until TCP gave up, minutes or hours later; `lock_timeout` and
`statement_timeout` are the server's to apply, and a server that does not answer applies nothing. Inside `deadline`,
every connection the thread checks out is watched: past the deadline one watchdog thread shuts their sockets down,
the waiting read returns, the driver raises, SQLAlchemy discards the connection, and the writer answers
`LedgerUnavailable` (503: the exporter retries). A transaction cut off that way never committed, or committed and
its retry finds its keys: nothing is billed twice, and nothing half.

The ping of a pooled connection on checkout is ours (`watch_checkouts`), not `pool_pre_ping`'s, so that it runs
under the deadline too: it is the first thing a stalled server hangs.
"""

from __future__ import annotations

import math
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import InvalidatePoolError

_FRESH = "costline_fresh"


class NoAnswer(Exception):
    """The database did not answer before the deadline."""


class Deadline:
    """A bound on the time the current thread waits for the database, and the connections it checked out."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.expires = time.monotonic() + timeout_s
        self.expired = False
        self._connections: list[Any] = []
        self._lock = threading.Lock()

    def remaining(self) -> float:
        return max(0.0, self.expires - time.monotonic())

    def watch(self, dbapi_connection: Any) -> None:
        with self._lock:
            self._connections.append(dbapi_connection)
            expired = self.expired
        if expired:
            _shut(dbapi_connection)

    def expire(self) -> None:
        with self._lock:
            self.expired = True
            connections = list(self._connections)
        for connection in connections:
            _shut(connection)


_current = threading.local()


@contextmanager
def deadline(timeout_s: float, *, armed: bool = True) -> Iterator[Deadline]:
    """A `Deadline` of `timeout_s` for the block; `armed` False only measures it (SQLite: no wire to cut)."""
    bound = Deadline(timeout_s)
    if not armed:
        yield bound
        return
    _current.deadline = bound
    _WATCHDOG.arm(bound)
    try:
        yield bound
    finally:
        _WATCHDOG.disarm(bound)
        _current.deadline = None


def watch_checkouts(engine: Engine) -> None:
    """Ping each pooled connection on checkout (as `pool_pre_ping` would), and put every connection checked out
    inside a `deadline` under its watch, ping included."""

    @event.listens_for(engine, "connect")
    def _fresh(_dbapi_connection: Any, record: Any) -> None:
        record.info[_FRESH] = True  # just connected (within connect_timeout): no ping needed

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        bound: Deadline | None = getattr(_current, "deadline", None)
        if bound is not None:
            bound.watch(dbapi_connection)
        if record.info.pop(_FRESH, False):
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as err:
            if bound is not None and bound.expired:
                raise NoAnswer(f"no answer from the database within {bound.timeout_s:g} s") from err
            # As `pool_pre_ping` does: a dead connection usually means a restarted server, so the pool's other
            # connections are dropped too, and this checkout connects anew.
            raise InvalidatePoolError(f"the pooled connection did not answer a ping: {err}") from err


def _shut(dbapi_connection: Any) -> None:
    """Shut the connection's socket down (both ways): a thread blocked reading it wakes up to an end of file."""
    try:
        fd = dbapi_connection.fileno()
    except Exception:
        return  # closed already
    try:
        with socket.socket(fileno=os.dup(fd)) as sock:  # shutdown acts on the socket, not on this descriptor
            sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class _Watchdog:
    """One thread for every deadline in the process, woken when a deadline earlier than the ones it waits for is
    armed (writes follow one another, so that is rarely)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._armed: set[Deadline] = set()
        self._until = math.inf
        self._thread: threading.Thread | None = None

    def arm(self, bound: Deadline) -> None:
        with self._cond:
            self._armed.add(bound)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="costline-ledger-deadlines", daemon=True)
                self._thread.start()
            if bound.expires < self._until:
                self._cond.notify()

    def disarm(self, bound: Deadline) -> None:
        with self._cond:
            self._armed.discard(bound)

    def _run(self) -> None:
        while True:
            with self._cond:
                now = time.monotonic()
                due = [bound for bound in self._armed if bound.expires <= now]
                self._armed.difference_update(due)
                if not due:
                    self._until = min((bound.expires for bound in self._armed), default=math.inf)
                    self._cond.wait(None if self._until == math.inf else self._until - now)
                    continue
            for bound in due:
                bound.expire()


_WATCHDOG = _Watchdog()
