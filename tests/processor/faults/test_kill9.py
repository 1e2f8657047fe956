"""kill -9 during ingestion: no acknowledged span is lost, an exporter's retry counts once, budgets come back.

`costline serve` runs in a subprocess on a SQLite file. A client exports 50-span batches in a loop on a kept-alive
connection; the process is killed with SIGKILL while batches are in flight; a new process opens the same file. The
client then re-sends every batch it did not get a 200 for, as an OTLP exporter retries. Every span ends up in the
ledger exactly once, and the budgets served after the restart equal the cost of exactly those spans.
"""

from __future__ import annotations

import http.client
import signal
import threading
import time
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

from tests.polling import poll
from tests.processor.otlp import llm_span, request_of

from .conftest import Served, serve, stop

SPANS_PER_BATCH = 50
INPUT, OUTPUT = 1200, 300
COST_PER_SPAN = (INPUT * Decimal("2.00") + OUTPUT * Decimal("8.00")) / 10**6  # the config's gpt-4o override, $ per call


def batches(count: int, start_ns: int) -> list[bytes]:
    return [request_of([llm_span(team="marketing", input_tokens=INPUT, output_tokens=OUTPUT, start_ns=start_ns)
                        for _ in range(SPANS_PER_BATCH)]).SerializeToString() for _ in range(count)]


def post(connection: http.client.HTTPConnection, path: str, body: bytes) -> int:
    connection.request("POST", path, body=body, headers={"Content-Type": "application/x-protobuf"})
    response = connection.getresponse()
    response.read()
    return response.status


class Exporter(threading.Thread):
    """Posts batches until stopped; remembers which were acknowledged."""

    def __init__(self, served: Served, bodies: list[bytes]) -> None:
        super().__init__(daemon=True)
        self.served, self.bodies = served, bodies
        self.acked: set[int] = set()
        self.stopped = threading.Event()

    def run(self) -> None:
        parts = urlsplit(self.served.otlp_url)
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        for index, body in enumerate(self.bodies):
            if self.stopped.is_set():
                return
            try:
                if post(connection, parts.path, body) == 200:
                    self.acked.add(index)
            except (OSError, http.client.HTTPException):
                return  # the server died under us: this batch is unacknowledged


def team_row(served: Served, team: str) -> dict:
    rows = [r for r in served.usage("team") if r["team"] == team]
    return rows[0] if rows else {"requests": 0, "cost_usd": "0"}


def spent(budgets: dict, scope: str, owner_word: str, period: str = "monthly") -> Decimal:
    matches = [b["spent_usd"] for b in budgets["budgets"]
               if b["scope"] == scope and b["period"] == period and owner_word in str(b["owner"])]
    assert len(matches) == 1, budgets
    return Decimal(matches[0])


def test_kill9_loses_no_acknowledged_span_and_restores_budgets(tmp_path: Path, serving: list[Served]) -> None:
    db_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    now_ns = time.time_ns()
    bodies = batches(400, now_ns)
    served = serve(tmp_path, db_url)
    serving.append(served)
    exporter = Exporter(served, bodies)
    exporter.start()
    poll(lambda: len(exporter.acked) >= 20, 30, served.log.read_text, interval=0.01)
    served.process.send_signal(signal.SIGKILL)  # mid-stream: a batch is in flight
    served.process.wait(10)
    exporter.join(10)
    acked = set(exporter.acked)
    assert len(acked) < len(bodies), "the kill came too late to interrupt ingestion"

    restarted = serve(tmp_path, db_url)
    serving.append(restarted)
    in_ledger = team_row(restarted, "marketing")["requests"]
    # Every acknowledged span survived; at most the one in-flight batch committed without its acknowledgement.
    assert len(acked) * SPANS_PER_BATCH <= in_ledger <= (len(acked) + 1) * SPANS_PER_BATCH

    # The exporter retries what it never got a 200 for (here: everything unacknowledged, sent or not).
    parts = urlsplit(restarted.otlp_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    retried = [i for i in range(len(bodies)) if i not in acked][:40]
    for index in retried:
        assert post(connection, parts.path, bodies[index]) == 200
    expected_spans = (len(acked) + len(retried)) * SPANS_PER_BATCH
    row = team_row(restarted, "marketing")
    assert row["requests"] == expected_spans  # the in-flight batch, committed and retried, counts once
    expected_cost = expected_spans * COST_PER_SPAN
    assert Decimal(row["cost_usd"]) == expected_cost

    budgets = restarted.budgets()
    assert spent(budgets, "team", "marketing") == expected_cost
    assert spent(budgets, "org", "acme") == expected_cost
    assert stop(restarted) == 0  # SIGTERM: clean shutdown

    # And once more from cold: the budgets are read back from the ledger, not from memory.
    again = serve(tmp_path, db_url)
    serving.append(again)
    assert spent(again.budgets(), "team", "marketing") == expected_cost
    metrics = again.metrics()
    assert 'costline_budget_spent_usd{' in metrics
    assert stop(again, signal.SIGINT) == 0
