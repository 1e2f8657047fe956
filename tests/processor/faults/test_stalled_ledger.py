"""A PostgreSQL server that stops answering with its connections still open (a stalled proxy, a network path that
drops packets, a frozen host): an export is answered 503 within the ledger timeout instead of waiting as long as
TCP does, nothing is half-written, and the exporter's retry after the server answers again bills once.

The processor reaches the real PostgreSQL server through a TCP proxy on loopback that can stop forwarding (keeping
every connection open), so the processor's pooled connections, and new ones, get no answer at all.
"""

from __future__ import annotations

import http.client
import select
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from costline.processor.config.settings import Address, Settings
from costline.processor.service import Service
from tests.polling import poll
from tests.postgres import POSTGRES, require_postgres
from tests.processor.clock import now_s
from tests.processor.otlp import attributes, llm_span, request_of
from tests.processor.served import CONFIG

LEDGER_TIMEOUT_S = 1.0
SLACK_S = 3.0
"""Room for a loaded 2-core machine; without the bound the export waited until the client gave up."""


class StallingProxy:
    """Forwards loopback TCP connections to PostgreSQL until `stall()`; then reads and forwards nothing (new
    connections are accepted and left unanswered) until `resume()`."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.flowing = threading.Event()
        self.flowing.set()
        self.closed = threading.Event()
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def stall(self) -> None:
        self.flowing.clear()

    def resume(self) -> None:
        self.flowing.set()

    def close(self) -> None:
        self.closed.set()
        self.flowing.set()
        self.listener.close()
        for sock in self.sockets:
            sock.close()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            self.sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()

    def _pump(self, client: socket.socket, server: socket.socket) -> None:
        peers = {client: server, server: client}
        try:
            while not self.closed.is_set():
                self.flowing.wait()
                readable, _, _ = select.select(list(peers), [], [], 0.05)
                for sock in readable:
                    if not self.flowing.is_set():
                        break
                    data = sock.recv(65536)
                    if not data:
                        return
                    peers[sock].sendall(data)
        except OSError:
            return
        finally:
            client.close()
            server.close()


@pytest.fixture
def database() -> Iterator[str]:
    require_postgres()
    name = f"costline_stalled_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(POSTGRES, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def post(port: int, body: bytes) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=LEDGER_TIMEOUT_S + SLACK_S + 20)
    try:
        connection.request("POST", "/v1/traces", body=body, headers={"Content-Type": "application/x-protobuf"})
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def billed(database: str) -> int:
    """Requests in the ledger, read directly (not through the proxy)."""
    with psycopg.connect(POSTGRES.rsplit("/", 1)[0] + f"/{database}") as conn:
        return conn.execute("SELECT coalesce(sum(requests), 0) FROM costline_usage_hourly").fetchone()[0]


def stalling_service(tmp_path: Path, database: str) -> tuple[StallingProxy, Service]:
    """A started `Service` whose ledger is `database`, reached through a `StallingProxy`."""
    proxy = StallingProxy(("127.0.0.1", 5432))
    (tmp_path / "costline.yaml").write_text(CONFIG)
    settings = Settings(config_path=tmp_path / "costline.yaml", otlp_http=Address("127.0.0.1", 0), otlp_grpc=None,
                        db_url=f"postgresql+psycopg://postgres@127.0.0.1:{proxy.port}/{database}",
                        http=Address("127.0.0.1", 0), ledger_timeout_s=LEDGER_TIMEOUT_S)
    return proxy, Service(settings).start()


@pytest.mark.postgres
def test_a_stalled_server_is_answered_503_within_the_timeout_and_the_retry_bills_once(
        tmp_path: Path, database: str) -> None:
    proxy, service = stalling_service(tmp_path, database)
    port = service.otlp_http.port
    try:
        assert post(port, request_of([llm_span(team="marketing") for _ in range(2)]).SerializeToString()) == 200
        body = request_of([llm_span(team="marketing") for _ in range(3)]).SerializeToString()
        proxy.stall()
        for _ in range(2):  # a pooled connection's ping hangs first; then, with it cut off, a new connection
            started = time.monotonic()
            status = post(port, body)
            elapsed = time.monotonic() - started
            assert status == 503, status
            assert elapsed < LEDGER_TIMEOUT_S + SLACK_S, elapsed
        assert billed(database) == 2  # nothing of the stalled batch
        proxy.resume()

        def retried() -> bool:  # the exporter's retries, once the server answers again
            status = post(port, body)
            assert status in (200, 503), status
            return status == 200

        poll(retried, 30, "the retried batch was never accepted", interval=0.2)
        assert post(port, body) == 200  # and one more, recognised
        assert billed(database) == 5
    finally:
        proxy.resume()
        service.stop(2)
        proxy.close()


@pytest.mark.postgres
def test_a_write_stuck_in_the_server_is_cancelled_there_too(database: str) -> None:
    """A statement that hangs inside the server (here a trigger sleeping, as a stalled disk would) is answered
    `LedgerUnavailable` within the timeout, and the server cancels it too (`statement_timeout`, set for the write's
    transaction): cutting the connection alone leaves the backend running, holding the keys it inserted and so
    blocking every other processor billing them."""
    from costline.processor.ledger import Ledger, LedgerUnavailable
    from costline.processor.model import Entry, Owner, call_keys
    from tests.processor.conftest import make_call

    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{database}"
    ledger = Ledger(url, timeout_s=LEDGER_TIMEOUT_S)
    direct = POSTGRES.rsplit("/", 1)[0] + f"/{database}"
    with psycopg.connect(direct, autocommit=True) as conn:
        conn.execute("CREATE FUNCTION stall() RETURNS trigger LANGUAGE plpgsql AS "
                      "$$ BEGIN PERFORM pg_sleep(30); RETURN NEW; END $$")
        conn.execute("CREATE TRIGGER stall BEFORE INSERT ON costline_usage_hourly FOR EACH ROW EXECUTE FUNCTION stall()")
    call = make_call(1)
    try:
        started = time.monotonic()
        with pytest.raises(LedgerUnavailable):
            ledger.record([Entry(call, Owner("acme", "search"), 100, call_keys(call))], now=now_s())
        assert time.monotonic() - started < LEDGER_TIMEOUT_S + SLACK_S
        with psycopg.connect(direct, autocommit=True) as conn:
            for _ in range(60):
                running = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                       "AND query LIKE 'INSERT INTO costline_%' AND state <> 'idle'").fetchone()[0]
                if not running:
                    break
                time.sleep(0.05)
            assert running == 0, "the server is still running the abandoned write"
            assert conn.execute("SELECT count(*) FROM costline_call_keys").fetchone()[0] == 0
    finally:
        ledger.close()


@pytest.mark.postgres
def test_pooled_connections_the_server_dropped_are_replaced_on_checkout(database: str) -> None:
    """The ping on checkout (ours, in place of `pool_pre_ping`, so that the wire deadline covers it) still finds
    the pooled connections a restarted or terminating server dropped, and connects anew: the write succeeds."""
    from costline.processor.ledger import Ledger
    from costline.processor.model import Entry, Owner, call_keys
    from tests.processor.conftest import make_call

    ledger = Ledger(f"postgresql+psycopg://postgres@127.0.0.1:5432/{database}", timeout_s=LEDGER_TIMEOUT_S)
    try:
        for n in (1, 2):
            if n == 2:
                with psycopg.connect(POSTGRES, autocommit=True) as conn:
                    conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                                 (database,))
            call = make_call(n)
            assert len(ledger.record([Entry(call, Owner("acme", "search"), 100, call_keys(call))], now=now_s())) == 1
    finally:
        ledger.close()


def outcome_span() -> Span:
    """A business outcome span (`costline.outcome("ticket_resolved")`): counted in its own transaction, before the
    calls'."""
    span = llm_span(team="marketing")
    del span.attributes[:]
    span.name = "costline.outcome ticket_resolved"
    span.attributes.extend(attributes({"costline.outcome.name": "ticket_resolved", "costline.outcome.count": 1,
                                       "costline.team": "marketing"}))
    return span


@pytest.mark.postgres
def test_an_outcome_span_on_a_stalled_server_is_answered_503_within_the_timeout(tmp_path: Path, database: str) -> None:
    proxy, service = stalling_service(tmp_path, database)
    port = service.otlp_http.port
    try:
        assert post(port, request_of([outcome_span()]).SerializeToString()) == 200
        proxy.stall()
        started = time.monotonic()
        status = post(port, request_of([outcome_span(), llm_span(team="marketing")]).SerializeToString())
        assert status == 503, status
        assert time.monotonic() - started < LEDGER_TIMEOUT_S + SLACK_S
    finally:
        proxy.resume()
        service.stop(2)
        proxy.close()
