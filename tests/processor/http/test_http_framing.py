"""HTTP/1.1 framing as an attacker sends it, over a raw loopback socket: every ambiguous or malformed frame is
answered 4xx and the connection closed, with nothing run; the connection cap, the request deadline, TCP_NODELAY,
`Expect: 100-continue` and pipelining.

Each malformed request carries a valid OTLP export that a lenient parser would run (the fake pipeline records it),
so "nothing reached the pipeline" is what tells the strict server from the hand-written one it replaced.
"""

from __future__ import annotations

import http.client
import select
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from costline.processor.config.settings import Address
from costline.processor.http.server import HttpServer, Request, Response
from costline.processor.ingest.receivers import Outcome
from tests.polling import poll
from tests.processor.http.conftest import Edge
from tests.processor.otlp import llm_request

PAYLOAD = llm_request(1).SerializeToString()
N = len(PAYLOAD)
HEAD = b"POST /v1/traces HTTP/1.1\r\nHost: costline\r\nContent-Type: application/x-protobuf\r\n"


def chunked(size: bytes, payload: bytes = PAYLOAD) -> bytes:
    return size + b"\r\n" + payload + b"\r\n0\r\n\r\n"


SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: costline\r\n\r\n"

MALFORMED = {
    # Both framings: the chunked body carries an export and a second request hides behind the Content-Length.
    "content-length-and-chunked": HEAD + b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
                                  + chunked(b"%x" % N) + SMUGGLED,
    "two-content-lengths": HEAD + b"Content-Length: %d\r\nContent-Length: %d\r\n\r\n" % (N, N + 5) + PAYLOAD
                           + b"xxxxx",
    "xchunked": HEAD + b"Transfer-Encoding: xchunked\r\n\r\n" + chunked(b"%x" % N),
    "content-length-plus": HEAD + b"Content-Length: +%d\r\n\r\n" % N + PAYLOAD,
    "content-length-underscore": HEAD + b"Content-Length: %s_%s\r\n\r\n" % (str(N)[:1].encode(), str(N)[1:].encode())
                                 + PAYLOAD,
    "content-length-hex": HEAD + b"Content-Length: 0x%x\r\n\r\n" % N + PAYLOAD,
    "chunk-size-0x": HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + chunked(b"0x%x" % N),
    "chunk-size-plus": HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + chunked(b"+%x" % N),
    "chunk-size-underscore": HEAD + b"Transfer-Encoding: chunked\r\n\r\n"
                             + chunked(b"%x_%x" % (N >> 4, N & 0xF)),
    "head-over-64-kib": HEAD + b"X-Padding: %s\r\nContent-Length: %d\r\n\r\n" % (b"p" * (70 * 1024), N) + PAYLOAD,
}
STATUS = {"xchunked": 501, "head-over-64-kib": 431}
"""RFC 9112's answers to a transfer coding the server does not implement and to a head too large; else 400."""


def connect(port: int, timeout: float = 5.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    return sock


def read_to_eof(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes; a timeout here means the server kept the connection open."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


@pytest.mark.parametrize("name", MALFORMED)
def test_malformed_framing_is_refused_and_nothing_runs(edge: Edge, name: str) -> None:
    with connect(edge.http.port) as sock:
        sock.sendall(MALFORMED[name])
        response = read_to_eof(sock)  # the server answers and closes
    status = status_of(response)
    head = response.split(b"\r\n\r\n", 1)[0].lower()
    assert status == STATUS.get(name, 400), response[:200]
    assert b"connection: close" in head
    assert response.count(b"HTTP/1.1 ") == 1  # no second (smuggled) request answered
    assert edge.pipeline.requests == []


def test_a_request_cut_off_before_its_blank_line_does_not_run(edge: Edge) -> None:
    with connect(edge.http.port) as sock:
        sock.sendall(HEAD + b"Content-Length: 0\r\n")  # no blank line: the head never ended
        sock.shutdown(socket.SHUT_WR)
        response = read_to_eof(sock)
    assert response == b"" or status_of(response) == 400
    assert edge.pipeline.requests == []


def test_a_negative_chunk_size_is_400_at_once_and_nothing_is_buffered(edge: Edge) -> None:
    """The old server read a chunk of size -1 as "to the end of the connection", into memory: here the client keeps
    the connection open and the answer must come anyway, from the first frame, before anything reaches the
    pipeline."""
    before = edge.requests("http", Outcome.UNDECODABLE)
    with connect(edge.http.port) as sock:
        sock.sendall(HEAD + b"Transfer-Encoding: chunked\r\n\r\n-1\r\n" + b"\0" * (256 * 1024))
        response = read_to_eof(sock)  # the client never closes: only the server's answer and close end this
    assert status_of(response) == 400
    assert b"connection: close" in response.split(b"\r\n\r\n", 1)[0].lower()
    assert edge.pipeline.requests == []
    assert edge.requests("http", Outcome.UNDECODABLE) == before + 1


def test_the_connections_still_work_after_refusals(edge: Edge) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", edge.http.port, timeout=5)
    connection.request("POST", "/v1/traces", body=PAYLOAD, headers={"Content-Type": "application/x-protobuf"})
    assert connection.getresponse().status == 200
    connection.close()


def test_pipelined_requests_are_answered_in_order(edge: Edge) -> None:
    one = HEAD + b"Content-Length: %d\r\n\r\n" % N + PAYLOAD
    with connect(edge.http.port) as sock:
        sock.sendall(one + one + b"GET /nowhere HTTP/1.1\r\nHost: costline\r\nConnection: close\r\n\r\n")
        response = read_to_eof(sock)
    assert [int(line.split(b" ")[1]) for line in response.split(b"\r\n") if line.startswith(b"HTTP/1.1 ")] == \
        [200, 200, 404]
    assert len(edge.pipeline.requests) == 2


def test_expect_100_continue_is_answered_before_the_body(edge: Edge) -> None:
    with connect(edge.http.port) as sock:
        sock.sendall(HEAD + b"Content-Length: %d\r\nExpect: 100-continue\r\n\r\n" % N)
        interim = sock.recv(65536)
        assert interim.startswith(b"HTTP/1.1 100 ")
        sock.sendall(PAYLOAD)
        assert status_of(sock.recv(65536)) == 200
    assert len(edge.pipeline.requests) == 1


# -- item 12: no Nagle wait on kept-alive connections -----------------------------------------------------------------


class _Recording(HttpServer):
    """Keeps the sockets it accepts, to read their options."""

    accepted: list[socket.socket]

    def get_request(self):  # noqa: ANN201 - socketserver's signature
        request = super().get_request()
        self.accepted.append(request[0])
        return request


def test_accepted_sockets_have_tcp_nodelay() -> None:
    """Head and body are gathered into one write, and each chunk of a stream is one write, so Nagle's algorithm has
    nothing to hold back: with it on, a kept-alive request waited for the client's delayed ACK (~40 ms)."""
    _Recording.accepted = []
    server = _Recording(Address("127.0.0.1", 0), lambda request: Response.text(200, "ok\n"), "test").start()
    try:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        for _ in range(2):
            connection.request("GET", "/")
            assert connection.getresponse().read() == b"ok\n"
        assert len(_Recording.accepted) == 1
        assert _Recording.accepted[0].getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        connection.close()
    finally:
        server.stop(1)


# -- item 11: bounded connections, a deadline per request ------------------------------------------------------------


class Counting:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, request: Request) -> Response:
        self.calls += 1
        request.read_body(1 << 20)
        return Response.text(200, "ok\n")


@pytest.fixture
def capped() -> Iterator[tuple[HttpServer, Counting]]:
    router = Counting()
    server = HttpServer(Address("127.0.0.1", 0), router, "capped", max_connections=2, request_timeout_s=1.0).start()
    yield server, router
    server.stop(1)


def connection_threads() -> int:
    return sum("process_request_thread" in thread.name for thread in threading.enumerate())


def test_connections_past_the_cap_are_refused_without_a_thread(capped: tuple[HttpServer, Counting]) -> None:
    server, router = capped
    held = [http.client.HTTPConnection("127.0.0.1", server.port, timeout=5) for _ in range(2)]
    for connection in held:  # both served and kept alive: two threads hold both slots
        connection.request("GET", "/")
        assert connection.getresponse().read() == b"ok\n"
    threads = connection_threads()
    assert threads >= 2
    refused = [connect(server.port) for _ in range(30)]
    for sock in refused:
        response = read_to_eof(sock)
        assert status_of(response) == 503 and b"Retry-After: 1" in response
        sock.close()
    assert connection_threads() == threads  # no thread was made for any of the 30
    assert router.calls == 2
    held[0].close()  # a slot frees when its connection ends

    def answered() -> bool:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        try:
            connection.request("GET", "/")
            return connection.getresponse().status == 200
        finally:
            connection.close()

    poll(answered, 5, "the freed slot was not given to a new connection", interval=0.01)
    held[1].close()


@pytest.mark.parametrize("where", ["head", "body"])
def test_trickling_a_byte_at_a_time_cannot_outlast_the_request_deadline(capped: tuple[HttpServer, Counting],
                                                                       where: str) -> None:
    """Each byte arrives well within any per-read timeout; the deadline (1 s here) is for the request as a whole."""
    server, router = capped
    head = b"POST / HTTP/1.1\r\nHost: costline\r\nContent-Length: 100\r\n\r\n"
    with connect(server.port) as sock:
        if where == "body":
            sock.sendall(head)
            trickle = b"x" * 100
        else:
            trickle = head
        started = time.monotonic()
        closed_after = None
        for byte in trickle:  # 0.05 s a byte: 3 s for the head, 5 s for the body
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                closed_after = time.monotonic() - started
                break
            if select.select([sock], [], [], 0.05)[0]:
                try:
                    read_to_eof(sock)
                except OSError:
                    pass
                closed_after = time.monotonic() - started
                break
    assert closed_after is not None, "the server let a trickling request run past its deadline"
    assert closed_after < 2.5
    assert router.calls == (1 if where == "body" else 0)  # the body's reader got BadBody, not a body


def test_a_declared_length_over_the_limit_is_413_before_any_of_the_body(edge: Edge) -> None:
    """Past the drain limit too, so the answer cannot wait for the body: it must come from the head alone."""
    with connect(edge.http.port) as sock:
        sock.sendall(HEAD + b"Content-Length: %d\r\n\r\n" % (100 << 20))
        response = read_to_eof(sock)  # no body sent: only an answer from the head (and the close) end this
    assert status_of(response) == 413
    assert edge.pipeline.requests == []
