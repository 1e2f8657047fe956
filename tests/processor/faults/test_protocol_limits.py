"""Protocol limits a client can read: a body too big to drain still gets its 413, and usage reports are paged.

- A request announcing more than `server.DRAIN_LIMIT` bytes (or sending an unframed chunked body past the limit) is
  answered 413 and the connection closed; the client, still sending its body, must be able to read that 413 rather
  than see a broken pipe or a reset. Sent with `http.client`, which writes the whole body before reading.
- `/api/v1/usage` answers at most `api.MAX_PAGE_ROWS` rows (or `limit`) per request, with `next_page_token` in JSON
  and a `Link: rel="next"` header; the pages together are the whole report. `costline usage` still exports every row.
"""

from __future__ import annotations

import csv
import http.client
import io
import json
import os
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from costline.processor.config.settings import Address
from costline.processor.http.api import MAX_PAGE_ROWS
from costline.processor.http.auth import BearerAuth
from costline.processor.http.otlp_http import OTLPHttpReceiver
from costline.processor.http.server import DRAIN_LIMIT, HttpServer
from costline.processor.ingest.receivers import ReceiverStats
from costline.processor.ledger import Ledger
from costline.processor.model import Entry, Owner, call_keys
from tests.processor.clock import now_s
from tests.processor.conftest import at, make_call

from .conftest import Served, serve, stop

CHUNK = b"\0" * (1 << 20)


class NeverCalled:
    def ingest(self, request):  # pragma: no cover - an oversized body never reaches the pipeline
        raise AssertionError("an oversized body reached the pipeline")


@pytest.fixture
def otlp_server() -> Iterator[HttpServer]:
    receiver = OTLPHttpReceiver(NeverCalled(), auth=BearerAuth(None), max_body_bytes=1 << 20, stats=ReceiverStats())
    server = HttpServer(Address("127.0.0.1", 0), receiver, "otlp-http").start()
    yield server
    server.stop(1)


def test_a_content_length_over_the_drain_limit_gets_a_readable_413(otlp_server: HttpServer) -> None:
    size = DRAIN_LIMIT + (16 << 20)
    connection = http.client.HTTPConnection("127.0.0.1", otlp_server.port, timeout=30)
    connection.putrequest("POST", "/v1/traces")
    connection.putheader("Content-Type", "application/x-protobuf")
    connection.putheader("Content-Length", str(size))
    connection.endheaders()
    for _ in range(size // len(CHUNK)):
        connection.send(CHUNK)  # a broken pipe here is what the client saw before
    response = connection.getresponse()
    assert response.status == 413
    assert b"exceeds the limit" in response.read()
    assert response.getheader("Connection") == "close"
    connection.close()


def test_an_endless_chunked_body_gets_a_readable_413(otlp_server: HttpServer) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", otlp_server.port, timeout=30)
    chunks = (CHUNK for _ in range((DRAIN_LIMIT >> 20) + 16))
    connection.request("POST", "/v1/traces", body=chunks, headers={"Content-Type": "application/x-protobuf"},
                       encode_chunked=True)
    response = connection.getresponse()
    assert response.status == 413
    connection.close()


# -- paging ---------------------------------------------------------------------------------------------------------

TEAMS = MAX_PAGE_ROWS + 5


@pytest.fixture(scope="module")
def ledger_url(tmp_path_factory) -> str:
    """A ledger with one more team than an API page holds; team i spent i+1 thousand input tokens."""
    url = f"sqlite:///{tmp_path_factory.mktemp('paging') / 'ledger.db'}"
    ledger = Ledger(url)
    entries = []
    for i in range(TEAMS):
        call = make_call(i, team=f"team-{i:05d}", input_tokens=1000 * (i % 50 + 1), start=at(2026, 11, 10))
        owner = Owner("acme", f"team-{i:05d}", "", "", "", "", "", "")
        entries.append(Entry(call, owner, 1_000_000 * (i % 50 + 1), call_keys(call)))
    assert len(ledger.record(entries, now=now_s())) == TEAMS
    ledger.close()
    return url


def get(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 - loopback
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def next_link(headers: dict[str, str]) -> str | None:
    link = headers.get("Link")
    if link is None:
        return None
    target, _, rel = link.partition(";")
    assert rel.strip() == 'rel="next"'
    return target.strip().strip("<>")


def test_usage_is_paged_and_the_pages_make_the_whole_report(tmp_path: Path, serving: list[Served],
                                                            ledger_url: str) -> None:
    served = serve(tmp_path, ledger_url)
    serving.append(served)
    base = f"{served.api_url}/api/v1/usage?group_by=team&from=2026-11-01&to=2026-11-30"

    # Unasked, one page of at most MAX_PAGE_ROWS rows and a token for the rest.
    status, headers, body = get(base)
    first = json.loads(body)
    assert status == 200 and len(first["rows"]) == MAX_PAGE_ROWS and first["next_page_token"]
    status, headers, body = get(f"{base}&page_token={first['next_page_token']}")
    second = json.loads(body)
    assert len(second["rows"]) == TEAMS - MAX_PAGE_ROWS and second["next_page_token"] is None
    assert "Link" not in headers
    teams = [r["team"] for r in first["rows"] + second["rows"]]
    assert len(set(teams)) == TEAMS  # no row twice, none missing

    # CSV pages follow the Link header; each page has its header row.
    url, csv_teams, pages = f"{base}&format=csv&limit=4000", [], 0
    while url is not None:
        status, headers, body = get(urllib.parse.urljoin(served.api_url, url))
        assert status == 200
        rows = list(csv.DictReader(io.StringIO(body.decode())))
        assert len(rows) <= 4000
        csv_teams += [r["team"] for r in rows]
        pages += 1
        url = next_link(headers)
    assert pages == 3 and csv_teams == teams  # the same order as JSON: cost, highest first, then team

    # A page answer is bounded, and tokens only serve the query they came from.
    for query, word in ((f"limit={MAX_PAGE_ROWS + 1}", "limit"), ("limit=0", "limit"),
                        ("page_token=bm9wZQ", "page_token"),
                        (f"page_token={first['next_page_token']}&group_by=model", "page_token")):
        status, _, body = get(f"{base}&{query}")
        assert status == 400 and word in json.loads(body)["error"], (query, body)
    assert stop(served) == 0

    # The CLI reads the ledger itself: every row, no page.
    result = subprocess.run(
        [sys.executable, "-m", "costline.cli", "usage", "--db", ledger_url, "--group-by", "team", "--from",
         "2026-11-01", "--to", "2026-11-30", "--format", "csv"],
        capture_output=True, cwd=tmp_path, timeout=120, env=dict(os.environ))
    assert result.returncode == 0, result.stderr.decode()
    assert [r["team"] for r in csv.DictReader(io.StringIO(result.stdout.decode()))] == teams
