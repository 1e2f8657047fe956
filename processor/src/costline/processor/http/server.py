"""The HTTP server under both HTTP listeners (OTLP/HTTP on 4318, metrics and API on 9464).

HTTP/1.1 parsing and framing are h11's (a well-kept, strict, sans-I/O implementation of RFC 9112): request line,
headers, Content-Length and chunked bodies, keep-alive, pipelining, and the framing of every response (chunked to
HTTP/1.1 clients, close-delimited to HTTP/1.0 ones, headers only for HEAD). What this module adds is the I/O around
it: a thread per connection (`socketserver`), a bounded number of connections, a deadline for each request as a
whole, body size limits enforced while reading, the bounded drain or lingering close of unread bodies, and sends
that gather a response's head with its body (plus `TCP_NODELAY`) so a kept-alive request never waits on Nagle.

Why threads around h11 rather than an ASGI server (uvicorn, hypercorn, granian): OTLP exporters keep one HTTP/1.1
connection open and post a batch every few seconds, and the pipeline's work is synchronous, CPU-bound and tens of
milliseconds per 1000-span batch, so an event loop would only add a thread hop per request and an ASGI adapter for
routers that are plain functions; per-request server overhead stays well under a millisecond (see
`benchmarks/http_server.py`).

The rules h11 leaves to the server, and why: a request with both Content-Length and Transfer-Encoding is refused
(RFC 9112 §6.3 allows it; it is how request smuggling starts); any framing error is answered 400 and the connection
closed, so nothing read after a bad frame is ever taken as a request.

Routers are plain functions `Request -> Response`, so the OTLP receiver and the API are testable without sockets.
"""

from __future__ import annotations

import logging
import socket
import socketserver
import struct
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

import h11

from costline.processor.config.settings import DEFAULT_MAX_CONNECTIONS, Address

log = logging.getLogger("costline.processor.http.server")

IDLE_TIMEOUT_S = 120.0
"""How long a kept-alive connection may wait for its next request (and a send for the client to read): longer than
any exporter's batch interval (OTel default 5 s) so keep-alive connections survive, short enough that abandoned
connections do not pin a thread forever."""

REQUEST_TIMEOUT_S = 30.0
"""From a request's first byte, the time its head and body have, as a whole, to arrive: a client trickling a byte at
a time cannot hold a connection past it. Three times an OTLP exporter's default timeout (10 s)."""

MAX_HEAD_BYTES = 64 * 1024
"""The request line and headers together; a longer head is answered 431."""

DRAIN_LIMIT = 64 * 1024 * 1024
"""Unread request bodies up to this size are read and discarded before answering, to keep the connection usable."""

LINGER_S = 10.0
LINGER_IDLE_S = 2.0
"""After answering a request whose body is too big to drain (or badly framed), the connection is half-closed and
what the client still sends is read and discarded for up to LINGER_S (or until it pauses for LINGER_IDLE_S) before
the socket closes: closing with unread data makes the kernel reset the connection, and the client, still sending,
then sees a broken pipe instead of our answer. nginx's `lingering_close` does the same (30 s / 5 s); the bound keeps
a client that sends for ever from holding a thread."""

_RECV_BYTES = 64 * 1024

_REFUSED = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 33\r\n"
            b"Retry-After: 1\r\nConnection: close\r\n\r\ntoo many connections; retry later\n")
"""The whole answer to a connection past the cap, sent without reading its request (h11 answers requests only)."""


class BodyTooLarge(Exception):
    """The request body is (or would be) larger than the allowed limit."""


class BadBody(Exception):
    """The request body cannot be read as HTTP framing says (bad chunk sizes, connection closed early, too slow)."""


class Headers(Mapping[str, str]):
    """A request's headers by lower-cased name; repeated fields joined with ", " (RFC 9110 §5.3)."""

    __slots__ = ("_fields",)

    def __init__(self, fields: Iterable[tuple[bytes, bytes]]) -> None:
        self._fields: dict[str, str] = {}
        for name, value in fields:
            key, text = name.decode("latin-1"), value.decode("latin-1")
            self._fields[key] = f"{self._fields[key]}, {text}" if key in self._fields else text

    def __getitem__(self, name: str) -> str:
        return self._fields[name.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._fields


@dataclass(slots=True)
class Request:
    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]
    """Case-insensitive `get` (`Headers` from the server)."""
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


class _Timeout(Exception):
    """The request's deadline (or the keep-alive idle time) passed."""


class _Connection(socketserver.BaseRequestHandler):
    """One connection: h11 parses what arrives and frames what is sent; this drives the socket."""

    server: HttpServer
    request: socket.socket

    def setup(self) -> None:
        self.sock = self.request
        # Our writes are whole responses or whole chunks: never hold one back waiting for an ACK (Nagle + the
        # client's delayed ACK cost ~40 ms per kept-alive request).
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD_BYTES)
        self.deadline: float | None = None

    def handle(self) -> None:
        while True:
            self.deadline = time.monotonic() + self.server.request_timeout_s if self.h11.trailing_data[0] else None
            try:
                event = self._next_event()
            except (_Timeout, OSError):
                return
            except h11.RemoteProtocolError as err:
                self._refuse(err.error_status_hint, f"bad request: {err}\n")
                return
            if not isinstance(event, h11.Request):
                return  # ConnectionClosed between requests
            if not self._serve(event):
                return
            if self.h11.our_state is not h11.DONE or self.h11.their_state is not h11.DONE:
                return  # h11 says the connection ends here (Connection: close, HTTP/1.0, a close-delimited body)
            self.h11.start_next_cycle()

    # -- reading -------------------------------------------------------------------------------------------------

    def _next_event(self) -> h11.Event:
        """The next event, receiving as needed: before a request's first byte up to the idle timeout, then until
        the request's deadline."""
        while (event := self.h11.next_event()) is h11.NEED_DATA:
            if self.deadline is None:
                timeout = self.server.idle_timeout_s
            elif (timeout := self.deadline - time.monotonic()) <= 0:
                raise _Timeout
            self.sock.settimeout(timeout)
            size = _RECV_BYTES
            if self.h11.their_state is h11.IDLE:
                # h11 measures a head only while it is incomplete: never hand it more than one byte past the limit,
                # or a long head that arrives whole in one read would pass.
                size = max(1, min(size, MAX_HEAD_BYTES + 1 - len(self.h11.trailing_data[0])))
            try:
                data = self.sock.recv(size)
            except TimeoutError:
                raise _Timeout from None
            if self.deadline is None:
                self.deadline = time.monotonic() + self.server.request_timeout_s
            self.h11.receive_data(data)  # b"" tells h11 the peer closed
        return event

    def _body(self) -> Iterator[bytes]:
        """The request body's blocks as they arrive; BadBody when it cannot be read as framed or in time."""
        while True:
            try:
                event = self._next_event()
            except h11.RemoteProtocolError as err:
                raise BadBody(f"invalid request body framing: {err}") from None
            except _Timeout:
                raise BadBody(f"request body not received within {self.server.request_timeout_s:g} s") from None
            except OSError as err:
                raise BadBody(f"connection failed while reading the body: {err}") from None
            if isinstance(event, h11.Data):
                yield event.data
            elif isinstance(event, h11.EndOfMessage):
                return
            else:  # ConnectionClosed
                raise BadBody("connection closed before the end of the body")

    def _read_body(self, limit: int, declared: str | None) -> bytes:
        if declared is not None and int(declared) > limit:  # h11 checked it is digits
            raise BodyTooLarge(f"body of {declared} bytes exceeds the limit of {limit}")
        if self.h11.they_are_waiting_for_100_continue:
            self._send_parts(self.h11.send_with_data_passthrough(h11.InformationalResponse(status_code=100, headers=[])))
        parts: list[bytes] = []
        size = 0
        for block in self._body():
            size += len(block)
            if size > limit:
                raise BodyTooLarge(f"body exceeds the limit of {limit} bytes")
            parts.append(block)
        return b"".join(parts)

    def _drain(self, limit: int, declared: str | None) -> bool:
        """Read and discard the rest of the body (up to `limit` bytes, before the deadline); False if it could not."""
        if self.h11.their_state is not h11.SEND_BODY or self.h11.they_are_waiting_for_100_continue:
            return self.h11.their_state is h11.DONE
        if declared is not None and int(declared) > limit:
            return False
        size = 0
        try:
            for block in self._body():
                size += len(block)
                if size > limit:
                    return False
        except BadBody:
            return False
        return True

    # -- serving -------------------------------------------------------------------------------------------------

    def _serve(self, event: h11.Request) -> bool:
        """Answer one request; False when the connection must end now (after the answer)."""
        method = event.method.decode("ascii")
        url = urlsplit(event.target.decode("latin-1"))
        headers = Headers(event.headers)
        if "content-length" in headers and "transfer-encoding" in headers:
            self._refuse(400, "bad request: both Content-Length and Transfer-Encoding\n")
            return False
        consumed = False

        def read_body(limit: int) -> bytes:
            nonlocal consumed
            if consumed:
                return b""
            consumed = True
            return self._read_body(limit, headers.get("content-length"))

        request = Request(method, url.path, parse_qs(url.query), headers, read_body, str(self.client_address[0]))
        stream: Iterator[bytes] | None = None
        first = b""
        with self.server.tracking():
            try:
                response = self.server.router(request)
                if not isinstance(response.body, bytes):
                    stream = iter(response.body)
                    if method != "HEAD":
                        # The first block before the status line: a stream that fails at once is still a 500.
                        first = next(stream, b"")
            except Exception:
                log.exception("unhandled error serving %s %s", method, url.path)
                response, stream = Response.text(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error\n"), None
        # A body left unread (or cut off at the limit, or badly framed) must not be parsed as the next request. A
        # moderately oversized one is drained, so the client (which is still sending) can read our 413 instead of
        # seeing a broken pipe; anything bigger, unframed or too slow is answered, then the connection lingers.
        linger = self.h11.their_state is h11.ERROR or (
            self.h11.their_state is not h11.DONE and not self._drain(DRAIN_LIMIT, headers.get("content-length")))
        try:
            if stream is None:
                self._send_whole(method, response, close=linger)
            else:
                try:
                    if not self._send_stream(method, response, first, stream, url.path, close=linger):
                        return False
                finally:
                    close = getattr(stream, "close", None)
                    if close is not None:  # a generator cut short (HEAD, a client gone) ends its work now
                        close()
        except OSError:
            return False
        if linger:
            self._linger()
            return False
        return True

    def _head(self, response: Response, framing: list[tuple[str, str]], close: bool) -> list[bytes]:
        headers = [("Content-Type", response.content_type), *framing, *response.headers,
                   ("Server", "costline"), ("Date", formatdate(usegmt=True))]
        if close:
            headers.append(("Connection", "close"))
        try:
            reason = HTTPStatus(response.status).phrase.encode()
        except ValueError:
            reason = b""
        head = self.h11.send_with_data_passthrough(h11.Response(status_code=response.status, headers=headers,
                                                                reason=reason))
        assert head is not None
        return head

    def _send_whole(self, method: str, response: Response, close: bool) -> None:
        body = response.body
        assert isinstance(body, bytes)
        parts = self._head(response, [("Content-Length", str(len(body)))], close)
        if method != "HEAD" and body:
            parts += self.h11.send_with_data_passthrough(h11.Data(data=body)) or []
        parts += self.h11.send_with_data_passthrough(h11.EndOfMessage()) or []
        self._send_parts(parts)  # one gathered write: head and body leave in one segment when they fit

    def _send_stream(self, method: str, response: Response, first: bytes, stream: Iterator[bytes], path: str,
                     close: bool) -> bool:
        """Head, then the blocks as they come (h11 frames them: chunked, or close-delimited for HTTP/1.0); False
        when the connection was reset because the stream failed."""
        parts = self._head(response, [], close)
        block: bytes | None = first if method != "HEAD" else None
        while block is not None:
            if block:
                parts += self.h11.send_with_data_passthrough(h11.Data(data=block)) or []
            try:
                self._send_parts(parts)  # one gathered write per chunk: no copy of the block, no lone framing write
            except OSError:
                self._abort()  # a client stalled past the timeout must not read a FIN as the end of the body
                raise
            parts = []
            try:
                block = next(stream, None)
            except Exception:
                log.exception("error making the body of %s %s after its headers were sent: connection reset, "
                              "the client sees a failed response", method, path)
                self._abort()
                return False
        self._send_parts(parts + (self.h11.send_with_data_passthrough(h11.EndOfMessage()) or []))
        return True

    def _send_parts(self, parts: list[bytes]) -> None:
        """`sendall` of the parts' concatenation, written from the parts themselves (`sendmsg` gathers them)."""
        self.sock.settimeout(self.server.idle_timeout_s)
        views = [memoryview(part) for part in parts if part]
        while views:
            sent = self.sock.sendmsg(views)
            while views and sent >= len(views[0]):
                sent -= len(views.pop(0))
            if views:
                views[0] = views[0][sent:]

    def _refuse(self, status: int, message: str) -> None:
        """Answer a request h11 (or this server) rejected, then close; nothing of it reached a router."""
        log.debug("refused a request from %s: %s", self.client_address[0], message.strip())
        if self.h11.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        try:
            self._send_whole("GET", Response.text(status, message), close=True)
        except (OSError, h11.LocalProtocolError):
            return
        self._linger()

    def _abort(self) -> None:
        """Reset the connection so the client sees a failed response, not an end of body: a FIN would end a
        close-delimited body as if it were complete, and a normal close sends one."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def _linger(self) -> None:
        """Half-close after the answer, then discard what the client still sends (bounded; see LINGER_S)."""
        try:
            self.sock.shutdown(socket.SHUT_WR)  # the answer is complete: the client can read it and stop
            deadline = time.monotonic() + LINGER_S
            while (remaining := deadline - time.monotonic()) > 0:
                self.sock.settimeout(min(remaining, LINGER_IDLE_S))
                if not self.sock.recv(1 << 20):
                    return  # the client closed its side
        except OSError:
            pass  # reset, or silent for LINGER_IDLE_S: close now


class HttpServer(socketserver.ThreadingTCPServer):
    """A threaded HTTP/1.1 server for one router, run on a background thread: a thread per connection, at most
    `max_connections` of them."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: Address, router: Router, name: str, *,
                 max_connections: int = DEFAULT_MAX_CONNECTIONS, request_timeout_s: float = REQUEST_TIMEOUT_S,
                 idle_timeout_s: float = IDLE_TIMEOUT_S) -> None:
        self.address_family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
        super().__init__((address.host, address.port), _Connection)
        self.router = router
        self.name = name
        self.max_connections = max_connections
        self.request_timeout_s = request_timeout_s
        self.idle_timeout_s = idle_timeout_s
        self._slots = threading.BoundedSemaphore(max_connections)
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

    def process_request(self, request: socket.socket, client_address: object) -> None:  # type: ignore[override]
        """A thread for the connection, or, past `max_connections`, a 503 sent from the accepting thread without
        waiting (the socket's buffer is empty) and the connection closed: no thread is made for it."""
        if not self._slots.acquire(blocking=False):
            log.warning("%s: %d connections open, the most allowed: refusing one from %s", self.name,
                        self.max_connections, client_address)
            try:
                request.setblocking(False)
                request.send(_REFUSED)
                while request.recv(_RECV_BYTES):  # what already arrived, so the close is a FIN, not a reset
                    pass
            except OSError:
                pass  # nothing more to read now (or the client is gone): close
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: socket.socket, client_address: object) -> None:  # type: ignore[override]
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request: object, client_address: object) -> None:
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
