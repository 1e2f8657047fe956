"""The demo's fake provider takes a client hanging up mid-request (a reset connection) quietly: `make demo` printed
a `ConnectionResetError` traceback when an app closed its connection while the provider was still reading."""

from __future__ import annotations

import socket
import struct
import time

from costline.testing.fake_provider import FakeProviderServer


def test_a_client_resetting_its_connection_prints_no_traceback(capfd) -> None:
    with FakeProviderServer() as provider:
        client = socket.create_connection(provider.server_address[:2])
        client.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        time.sleep(0.2)  # the handler is now waiting for the rest of the body
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with a reset
        client.close()
        time.sleep(0.3)  # the handler thread meets the reset
        # The provider still answers afterwards.
        probe = socket.create_connection(provider.server_address[:2])
        probe.sendall(b"GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert probe.recv(64).startswith(b"HTTP/1.1 404")
        probe.close()
    err = capfd.readouterr().err
    assert "Traceback" not in err and "ConnectionResetError" not in err, err
