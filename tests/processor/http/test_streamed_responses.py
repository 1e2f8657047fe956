"""Streamed response bodies over a real socket (`http.client`): chunked over HTTP/1.1, close-delimited over
HTTP/1.0, headers only for HEAD, keep-alive after a complete stream, and a stream that fails after its headers
went out cut off with a reset, never ended as if complete (Prometheus must see a failed scrape, not a short one).
`/metrics` itself is served this way: plain and gzip, the bytes of `generate_latest`."""

from __future__ import annotations

import gzip
import http.client
import logging
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, Counter, generate_latest

from costline.processor.clock import system_clock
from costline.processor.config.settings import Address
from costline.processor.http.api import AdminApi
from costline.processor.http.server import HttpServer, Request, Response

BLOCKS = [b"first block\n", b"", b"x" * 300_000, b"last\n"]


class Streams:
    """A router whose `/stream` answers BLOCKS as a stream, `/broken` a stream that fails after two blocks and
    `/broken-at-once` one that fails before its first; it records how far each stream was read."""

    def __init__(self) -> None:
        self.made: list[int] = []

    def __call__(self, request: Request) -> Response:
        if request.path == "/small":
            return Response.text(200, "small\n")
        fail_after = {"/stream": None, "/broken": 2, "/broken-at-once": 0}[request.path]
        return Response(200, self._blocks(fail_after), headers=[("X-Streamed", "yes")])

    def _blocks(self, fail_after: int | None) -> Iterator[bytes]:
        self.made.append(0)
        for count, block in enumerate(BLOCKS):
            if count == fail_after:
                raise RuntimeError("the exposition failed half-way")
            self.made[-1] += 1
            yield block


class Http10Connection(http.client.HTTPConnection):
    _http_vsn = 10
    _http_vsn_str = "HTTP/1.0"


@pytest.fixture
def streams() -> Streams:
    return Streams()


@pytest.fixture
def server(streams: Streams) -> Iterator[HttpServer]:
    server = HttpServer(Address("127.0.0.1", 0), streams, "test").start()
    yield server
    server.stop(1)


def test_http11_streams_chunked_and_keeps_the_connection(server: HttpServer) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.request("GET", "/stream")
    response = connection.getresponse()
    assert response.status == 200 and response.getheader("Transfer-Encoding") == "chunked"
    assert response.getheader("Content-Length") is None and response.getheader("X-Streamed") == "yes"
    assert response.read() == b"".join(BLOCKS)
    sock = connection.sock
    assert sock is not None  # the server did not close it
    connection.request("GET", "/small")
    response = connection.getresponse()
    assert response.read() == b"small\n" and connection.sock is sock
    connection.close()


def test_http10_streams_until_the_connection_closes(server: HttpServer) -> None:
    connection = Http10Connection("127.0.0.1", server.port, timeout=10)
    connection.request("GET", "/stream", headers={"Connection": "keep-alive"})
    response = connection.getresponse()
    assert response.getheader("Transfer-Encoding") is None and response.getheader("Content-Length") is None
    assert response.getheader("Connection") == "close"
    assert response.read() == b"".join(BLOCKS)
    connection.close()


def test_head_sends_the_headers_only_and_makes_no_body(server: HttpServer, streams: Streams) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.request("HEAD", "/stream")
    response = connection.getresponse()
    assert response.status == 200 and response.getheader("Transfer-Encoding") == "chunked"
    assert response.read() == b""
    connection.request("GET", "/small")  # the connection still frames requests right
    assert connection.getresponse().read() == b"small\n"
    connection.close()
    assert streams.made == []


@pytest.mark.parametrize("connection_class", [http.client.HTTPConnection, Http10Connection])
def test_a_stream_failing_after_its_headers_is_a_failed_response(server: HttpServer, streams: Streams,
                                                                  connection_class, caplog) -> None:
    connection = connection_class("127.0.0.1", server.port, timeout=10)
    with caplog.at_level(logging.ERROR, "costline.processor.http.server"):
        connection.request("GET", "/broken")
        # The reset may reach the client before or after it read the headers and the first block; either way the
        # body never ends as a complete one.
        with pytest.raises((http.client.HTTPException, ConnectionError)):
            response = connection.getresponse()
            assert response.status == 200
            response.read()
    assert streams.made == [2]
    assert any("connection reset" in record.getMessage() for record in caplog.records)
    connection.close()


def test_a_stream_failing_before_its_first_block_is_a_500(server: HttpServer) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.request("GET", "/broken-at-once")
    response = connection.getresponse()
    assert response.status == 500 and response.read() == b"internal error\n"
    connection.close()


def registry_with_series() -> CollectorRegistry:
    registry = CollectorRegistry()
    counter = Counter("streamed_events", "events by label", ["label"], registry=registry)
    for i in range(3000):  # several blocks of text
        counter.labels(f"value-{i}-\"quoted\"\n").inc(i)
    return registry


def test_metrics_over_http_is_generate_latest_plain_and_gzip() -> None:
    registry = registry_with_series()

    class Backend:
        pass

    backend = Backend()
    backend.registry = registry
    server = HttpServer(Address("127.0.0.1", 0), AdminApi(backend, ("team",), clock=system_clock), "api").start()
    try:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        connection.request("GET", "/metrics")
        response = connection.getresponse()
        assert response.getheader("Transfer-Encoding") == "chunked"
        assert response.read() == generate_latest(registry)
        connection.request("GET", "/metrics", headers={"Accept-Encoding": "gzip"})
        response = connection.getresponse()
        assert response.getheader("Content-Encoding") == "gzip"
        assert gzip.decompress(response.read()) == generate_latest(registry)
        connection.close()
    finally:
        server.stop(1)
