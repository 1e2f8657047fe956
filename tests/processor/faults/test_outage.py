"""The ledger's database away: at start, and while running.

- At start (compose or Kubernetes start the processor beside its database): `costline serve` pointed at a
  PostgreSQL database that does not exist yet keeps retrying with backoff, logging each attempt; `/healthz` answers,
  `/readyz` and the API say 503; once the database is created it becomes ready and bills exports. SIGTERM during the
  wait stops it cleanly.
- While running: the connection to PostgreSQL goes through a TCP proxy the test turns off and on (the shared server
  itself is never stopped). With the proxy off, `/readyz` turns 503, `/api/v1/usage` answers 503 + Retry-After,
  exports 503; with it back, all recover and the retried export bills once.
- `/readyz` under a probe flood asks the ledger at most once per interval.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from costline.processor.ledger import Ledger
from costline.testing.local import free_port
from tests.polling import poll
from tests.postgres import POSTGRES, require_postgres
from tests.processor.otlp import llm_span, request_of

from .conftest import CONFIG, Served, stop

DEADLINE_S = 30.0

pytestmark = pytest.mark.postgres


@pytest.fixture(autouse=True)
def _postgres_available() -> None:
    require_postgres()


def status_of(url: str, body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    headers = {"Content-Type": "application/x-protobuf"} if body is not None else {}
    request = urllib.request.Request(url, body, headers)
    try:
        with urllib.request.urlopen(request, timeout=15) as response:  # noqa: S310 - loopback
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def wait_for(condition, what: str, served: Served) -> None:
    """Poll `condition` (observable state, not a sleep) until true or the deadline; fails at once if serve exits."""
    poll(condition, DEADLINE_S, lambda: f"{what}:\n{served.log.read_text()[-3000:]}", interval=0.1,
         process=served.process)


def start_serve(workdir: Path, db_url: str, extra_env: dict[str, str] | None = None) -> Served:
    """`costline serve` on free ports, returned as soon as its API answers `/healthz` (not waiting for ready)."""
    config = workdir / "costline.yaml"
    config.write_text(CONFIG)
    otlp_port, http_port = free_port(), free_port()
    log = workdir / f"serve-{otlp_port}.log"
    env = {**os.environ, "COSTLINE_OTLP_GRPC": "off", "COSTLINE_LEDGER_TIMEOUT": "2", **(extra_env or {})}
    process = subprocess.Popen(
        [sys.executable, "-m", "costline.cli", "serve", "--config", str(config), "--db", db_url,
         "--otlp-http", f"127.0.0.1:{otlp_port}", "--http", f"127.0.0.1:{http_port}"],
        stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=workdir, env=env,
    )
    served = Served(process, f"http://127.0.0.1:{otlp_port}/v1/traces", f"http://127.0.0.1:{http_port}", log)

    def healthy() -> bool:
        try:
            return status_of(f"{served.api_url}/healthz")[0] == 200
        except OSError:
            return False

    wait_for(healthy, "/healthz", served)
    return served


def ready(served: Served) -> bool:
    return status_of(f"{served.api_url}/readyz")[0] == 200


@pytest.fixture
def missing_database() -> Iterator[str]:
    name = f"costline_outage_{uuid.uuid4().hex[:10]}"
    yield name
    import psycopg

    with psycopg.connect(POSTGRES, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_serve_waits_for_a_database_that_is_not_there_yet(tmp_path: Path, serving: list[Served],
                                                          missing_database: str) -> None:
    import psycopg

    served = start_serve(tmp_path, f"postgresql+psycopg://postgres@127.0.0.1:5432/{missing_database}")
    serving.append(served)
    # Waiting, observably: attempts are logged, the process lives, readiness and the API say 503.
    wait_for(lambda: served.log.read_text().count("not available (attempt") >= 2, "two logged attempts", served)
    assert not ready(served)
    status, headers, body = status_of(f"{served.api_url}/api/v1/usage")
    assert status == 503 and int(headers["Retry-After"]) > 0, (status, body)
    assert "ledger" in json.loads(body)["error"]
    with pytest.raises(OSError):  # the OTLP listener is not up: nothing can be acknowledged before the ledger is
        status_of(served.otlp_url, b"")

    with psycopg.connect(POSTGRES, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{missing_database}"')
    wait_for(lambda: ready(served), "/readyz 200 once the database exists", served)
    body = request_of([llm_span(team="marketing", start_ns=time.time_ns()) for _ in range(2)]).SerializeToString()
    assert status_of(served.otlp_url, body)[0] == 200
    assert [(r["team"], r["requests"]) for r in served.usage("team")] == [("marketing", 2)]
    assert stop(served) == 0


def test_sigterm_while_waiting_for_the_database_exits_cleanly(tmp_path: Path, serving: list[Served],
                                                              missing_database: str) -> None:
    served = start_serve(tmp_path, f"postgresql+psycopg://postgres@127.0.0.1:5432/{missing_database}")
    serving.append(served)
    wait_for(lambda: "not available (attempt" in served.log.read_text(), "a logged attempt", served)
    started = time.monotonic()
    assert stop(served, timeout=10) == 0
    assert time.monotonic() - started < 8  # not after the backoff's longest wait, nor never


class TcpProxy:
    """Forwards 127.0.0.1:<port> to PostgreSQL; `off()` refuses new connections and cuts the live ones, `on()`
    listens again on the same port: a database outage without stopping the shared server."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._live: set[socket.socket] = set()
        self._lock = threading.Lock()

    def on(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def off(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            try:
                listener.shutdown(socket.SHUT_RDWR)  # wakes the thread in accept(); close() alone would not
            except OSError:
                pass
            listener.close()
        with self._lock:
            live, self._live = self._live, set()
        for sock in live:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed by off()
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._live.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


@pytest.fixture
def proxied_database() -> Iterator[tuple[TcpProxy, str]]:
    import psycopg

    name = f"costline_outage_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    proxy = TcpProxy(("127.0.0.1", 5432))
    proxy.on()
    try:
        yield proxy, f"postgresql+psycopg://postgres@127.0.0.1:{proxy.port}/{name}"
    finally:
        proxy.off()
        with psycopg.connect(POSTGRES, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_outage_while_running_turns_readiness_and_the_api_to_503_and_back(
        tmp_path: Path, serving: list[Served], proxied_database: tuple[TcpProxy, str]) -> None:
    proxy, db_url = proxied_database
    served = start_serve(tmp_path, db_url)
    serving.append(served)
    wait_for(lambda: ready(served), "/readyz 200", served)
    body = request_of([llm_span(team="marketing", start_ns=time.time_ns()) for _ in range(3)]).SerializeToString()

    proxy.off()
    wait_for(lambda: not ready(served), "/readyz 503 during the outage", served)
    assert status_of(f"{served.api_url}/healthz")[0] == 200  # alive: no reason to restart it
    status, headers, response = status_of(f"{served.api_url}/api/v1/usage?group_by=team")
    assert status == 503 and int(headers["Retry-After"]) > 0, (status, response)
    assert b"127.0.0.1" not in response and b"SELECT" not in response  # a short message; details in the log
    status, headers, _ = status_of(served.otlp_url, body)
    assert status == 503 and int(headers["Retry-After"]) > 0

    proxy.on()
    wait_for(lambda: ready(served), "/readyz 200 after the outage", served)
    assert status_of(served.otlp_url, body)[0] == 200  # the exporter's retry
    assert [(r["team"], r["requests"]) for r in served.usage("team")] == [("marketing", 3)]
    assert stop(served) == 0


def test_a_probe_flood_asks_the_ledger_once_per_interval(tmp_path: Path) -> None:
    from costline.processor.service import LedgerReadiness

    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    pings = 0

    def counted_ping() -> bool:
        nonlocal pings
        pings += 1
        return ledger.ping()

    now = 100.0
    readiness = LedgerReadiness(counted_ping, interval_s=2.0, clock=lambda: now)
    assert all(readiness() for _ in range(1000))
    assert pings == 1
    now += 2.0
    assert all(readiness() for _ in range(1000))
    assert pings == 2
    ledger.close()
