"""The HTTP server under both HTTP listeners (OTLP/HTTP on 4318, metrics and API on 9464).

Why the standard library's `ThreadingHTTPServer` rather than an ASGI stack: OTLP exporters keep one HTTP/1.1
connection open and post a batch every few seconds, so what matters is keep-alive (which `BaseHTTPRequestHandler`
does once `protocol_version` is `HTTP/1.1`) and a thread per connection (a handful of exporters or one Collector).
The pipeline's work is synchronous, CPU-bound and tens of milliseconds per 1000-span batch, so an event loop would
only add a thread hop per request; per-request server overhead is ~0.1 ms, invisible next to the batch (see the
benchmark).
It also adds no dependency to the processor.

Routers are plain functions `Request -> Response`, so the OTLP receiver and the API are testable without sockets.
"""

from __future__ import annotations

import logging
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from email.message import Message
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from costline.processor.settings import Address

log = logging.getLogger("costline.processor.server")

IDLE_TIMEOUT_S = 120.0
"""Socket timeout: longer than any exporter's batch interval (OTel default 5 s) so keep-alive connections survive,
short enough that abandoned connections do not pin a thread forever."""


DRAIN_LIMIT = 64 * 1024 * 1024
"""Unread request bodies up to this size are read and discarded after answering, to keep the connection usable."""

LINGER_S = 10.0
LINGER_IDLE_S = 2.0
"""After answering a request whose body is too big to drain (or unframed), the connection is half-closed and what
the client still sends is read and discarded for up to LINGER_S (or until it pauses for LINGER_IDLE_S) before the
socket closes: closing with unread data makes the kernel reset the connection, and the client, still sending, then
sees a broken pipe instead of our 413. nginx's `lingering_close` does the same (30 s / 5 s); the bound keeps a
client that sends for ever from holding a thread."""


class BodyTooLarge(Exception):
    """The request body is (or would be) larger than the allowed limit."""


class BadBody(Exception):
    """The request body cannot be read as HTTP framing says (bad chunk sizes, connection closed early)."""


@dataclass(slots=True)
class Request:
    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Message | Mapping[str, str]
    """Case-insensitive `get` (an `email.message.Message` from the handler)."""
    read_body: Callable[[int], bytes] = field(default=lambda limit: b"")
    """Reads the whole body, raising `BodyTooLarge` past `limit` bytes without reading the rest."""
    client: str = "127.0.0.1"
    """The peer's IP address (the API answers only loopback peers while no tokens are configured)."""

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None


@dataclass(slots=True)
class Response:
    status: int
    body: bytes | Iterable[bytes] = b""
    """The whole body, or a stream of blocks written as they come (`/metrics`: hundreds of MiB never held whole):
    chunked over HTTP/1.1, close-delimited over HTTP/1.0. A stream that raises after the first block is cut off
    with a connection reset, never ended as if complete."""
    content_type: str = "text/plain; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def text(cls, status: int, text: str, headers: list[tuple[str, str]] | None = None) -> Response:
        return cls(status, text.encode(), headers=headers or [])


Router = Callable[[Request], Response]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "costline"
    sys_version = ""
    timeout = IDLE_TIMEOUT_S
    server: HttpServer

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's signature
        log.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:  # noqa: N802
        self._dispatch()

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch()

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch()

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch()

    def do_HEAD(self) -> None:  # noqa: N802
        self._dispatch()

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        consumed = False

        def read_body(limit: int) -> bytes:
            nonlocal consumed
            body = self._read_body(limit)
            consumed = True
            return body

        request = Request(self.command, url.path, parse_qs(url.query), self.headers, read_body,
                          str(self.client_address[0]))
        stream: Iterator[bytes] | None = None
        first = b""
        with self.server.tracking():
            try:
                response = self.server.router(request)
                if not isinstance(response.body, bytes):
                    stream = iter(response.body)
                    if self.command != "HEAD":
                        # The first block before the status line: a stream that fails at once is still a 500.
                        first = next(stream, b"")
            except Exception:
                log.exception("unhandled error serving %s %s", self.command, url.path)
                response, stream = Response.text(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error\n"), None
        # A body left unread would be parsed as the next request on this connection. A moderately oversized one is
        # drained, so the client (which is still sending) can read our 413 instead of seeing a broken pipe; anything
        # bigger or unframed is answered, then the connection lingers and closes.
        linger = not consumed and self._has_body() and not self._drain(DRAIN_LIMIT)
        if linger:
            self.close_connection = True
        if stream is None:
            self._send(response)
        else:
            try:
                self._send_stream(response, first, stream, url.path)
            finally:
                close = getattr(stream, "close", None)
                if close is not None:  # a generator cut short (HEAD, a client gone) ends its work now
                    close()
        if linger:
            self._linger()

    def _drain(self, limit: int) -> bool:
        try:
            length = int(self.headers.get("Content-Length") or "x")
        except ValueError:
            return False
        if length > limit or self.headers.get("Transfer-Encoding"):
            return False
        while length > 0:
            chunk = self.rfile.read(min(length, 1 << 20))
            if not chunk:
                return False
            length -= len(chunk)
        return True

    def _linger(self) -> None:
        """Half-close after the answer, then discard what the client still sends (bounded; see LINGER_S)."""
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_WR)  # the answer is complete: the client can read it and stop
            deadline = time.monotonic() + LINGER_S
            while (remaining := deadline - time.monotonic()) > 0:
                self.connection.settimeout(min(remaining, LINGER_IDLE_S))
                if not self.connection.recv(1 << 20):
                    return  # the client closed its side
        except OSError:
            pass  # reset, or silent for LINGER_IDLE_S: close now

    def _has_body(self) -> bool:
        length = self.headers.get("Content-Length")
        return bool(self.headers.get("Transfer-Encoding")) or (length is not None and length.strip() not in ("", "0"))

    def _read_body(self, limit: int) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked(limit)
        length_text = self.headers.get("Content-Length")
        if length_text is None:
            return b""
        try:
            length = int(length_text)
        except ValueError:
            raise BadBody(f"invalid Content-Length {length_text!r}") from None
        if length < 0:
            raise BadBody("negative Content-Length")
        if length > limit:
            raise BodyTooLarge(f"body of {length} bytes exceeds the limit of {limit}")
        body = self.rfile.read(length)
        if len(body) != length:
            raise BadBody("connection closed before the end of the body")
        return body

    def _read_chunked(self, limit: int) -> bytes:
        parts: list[bytes] = []
        size = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                chunk = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise BadBody("invalid chunk size") from None
            if chunk == 0:
                while self.rfile.readline(1024).strip():  # trailers
                    pass
                return b"".join(parts)
            size += chunk
            if size > limit:
                raise BodyTooLarge(f"chunked body exceeds the limit of {limit} bytes")
            data = self.rfile.read(chunk)
            if len(data) != chunk:
                raise BadBody("connection closed inside a chunk")
            parts.append(data)
            self.rfile.readline(8)  # the CRLF after the chunk

    def _send_head(self, response: Response, framing: tuple[str, str] | None) -> None:
        """Status line and headers; `framing` is how the body's end is told (none: the connection's close)."""
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        if framing is not None:
            self.send_header(*framing)
        for name, value in response.headers:
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()

    def _send(self, response: Response) -> None:
        self._send_head(response, ("Content-Length", str(len(response.body))))
        if self.command != "HEAD" and response.body:
            self.wfile.write(response.body)

    def _send_stream(self, response: Response, first: bytes, stream: Iterator[bytes], path: str) -> None:
        chunked = self.request_version not in ("HTTP/1.0", "HTTP/0.9")  # chunked framing is HTTP/1.1's
        if not chunked:
            self.close_connection = True  # the body ends where the connection does
        self._send_head(response, ("Transfer-Encoding", "chunked") if chunked else None)
        if self.command == "HEAD":
            return
        block: bytes | None = first
        while block is not None:
            try:
                if block and chunked:  # (an empty chunk would end the body)
                    # One gathered write per chunk: no copy of the block, and no small write of its framing alone
                    # (which Nagle's algorithm would hold back until the previous segment is acknowledged).
                    _send_all(self.connection, (b"%X\r\n" % len(block), block, b"\r\n"))
                elif block:
                    self.connection.sendall(block)
            except OSError:
                self._abort()  # a client stalled past the timeout must not read a FIN as the end of the body
                raise
            try:
                block = next(stream, None)
            except Exception:
                log.exception("error making the body of %s %s after its headers were sent: connection reset, "
                              "the client sees a failed response", self.command, path)
                self._abort()
                return
        if chunked:
            self.connection.sendall(b"0\r\n\r\n")

    def _abort(self) -> None:
        """Reset the connection so the client sees a failed response, not an end of body: a FIN would end a
        close-delimited body as if it were complete, and the server's own close sends one first."""
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.rfile.close()  # the socket's reader holds it open until it closes (the writer does not)
        self.connection.close()


def _send_all(connection: socket.socket, parts: Iterable[bytes]) -> None:
    """`sendall` of the parts' concatenation, written from the parts themselves (`sendmsg` gathers them)."""
    views = [memoryview(part) for part in parts]
    while views:
        sent = connection.sendmsg(views)
        while views and sent >= len(views[0]):
            sent -= len(views.pop(0))
        if views:
            views[0] = views[0][sent:]


class HttpServer(ThreadingHTTPServer):
    """A threaded HTTP/1.1 server for one router, run on a background thread."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: Address, router: Router, name: str) -> None:
        self.address_family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
        super().__init__((address.host, address.port), _Handler)
        self.router = router
        self.name = name
        self._active = 0
        self._idle = threading.Condition()
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def url(self) -> str:
        host = self.server_address[0]
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    def start(self) -> HttpServer:
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.2},
                                        name=f"costline-{self.name}", daemon=True)
        self._thread.start()
        return self

    def handle_error(self, request: object, client_address: object) -> None:
        # Clients that hang up (often after a 413 we answered without reading their body) are routine, not errors.
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, TimeoutError)):
            log.debug("connection from %s ended: %s", client_address, error)
        else:
            log.exception("error on connection from %s", client_address)

    def tracking(self) -> _Active:
        return _Active(self)

    def stop(self, drain_timeout_s: float = 10.0) -> None:
        """Stop accepting, wait (bounded) for requests being processed, then close the listening socket.

        Requests still in the pipeline after the timeout are cut off; their exporters got no acknowledgement and
        will retry, and the ledger's dedup keys make the retry count once.
        """
        self.shutdown()
        with self._idle:
            self._idle.wait_for(lambda: self._active == 0, timeout=drain_timeout_s)
        self.server_close()


class _Active:
    def __init__(self, server: HttpServer) -> None:
        self._server = server

    def __enter__(self) -> None:
        with self._server._idle:
            self._server._active += 1

    def __exit__(self, *exc: object) -> None:
        with self._server._idle:
            self._server._active -= 1
            self._server._idle.notify_all()
