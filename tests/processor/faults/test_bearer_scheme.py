"""The bearer scheme name is case-insensitive (RFC 7235 section 2.1), the token is not: `costline serve` with a token,
real OTLP/HTTP and OTLP/gRPC clients."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub

from costline.processor.clock import system_clock
from costline.processor.config.core import ApiConfig, ApiToken
from costline.processor.http.auth import ADMIN, READ, Access, BearerAuth, bearer_token, hash_token
from costline.processor.http.server import Request, Response
from tests.processor.otlp import llm_request
from tests.processor.served import Served, serve

TOKEN = "s3cret-token"
ACCEPTED = ("Bearer", "bearer", "BEARER", "bEaReR")


@pytest.fixture
def secured(tmp_path: Path, serving: list[Served]) -> Served:
    served = serve(tmp_path, f"sqlite:///{tmp_path / 'ledger.db'}", extra_env={"COSTLINE_TOKEN": TOKEN}, grpc=True)
    serving.append(served)
    return served


def _post(url: str, authorization: str) -> int:
    request = urllib.request.Request(url, llm_request(1).SerializeToString(),
                                     {"Content-Type": "application/x-protobuf", "Authorization": authorization})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


def test_http_accepts_any_case_of_the_scheme_and_only_the_exact_token(secured: Served) -> None:
    for scheme in ACCEPTED:
        assert _post(secured.otlp_url, f"{scheme} {TOKEN}") == 200, scheme
    assert _post(secured.otlp_url, f"bearer  {TOKEN}") == 200  # RFC 7235: one or more spaces
    for refused in (f"bearer {TOKEN.upper()}", f"bearer {TOKEN}x", f"bearer{TOKEN}", f"basic {TOKEN}", TOKEN,
                    "bearer"):
        assert _post(secured.otlp_url, refused) == 401, refused
    assert sum(row["requests"] for row in secured.usage()) == len(ACCEPTED) + 1


def test_grpc_metadata_accepts_any_case_of_the_scheme(secured: Served) -> None:
    assert secured.grpc_address is not None
    with grpc.insecure_channel(secured.grpc_address) as channel:
        stub = TraceServiceStub(channel)
        for scheme in ACCEPTED:
            stub.Export(llm_request(1), timeout=10, metadata=(("authorization", f"{scheme} {TOKEN}"),))
        for refused in (f"bearer {TOKEN.upper()}", f"basic {TOKEN}"):
            with pytest.raises(grpc.RpcError) as caught:
                stub.Export(llm_request(1), timeout=10, metadata=(("authorization", refused),))
            assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED, refused
    assert sum(row["requests"] for row in secured.usage()) == len(ACCEPTED)


HEADERS = [f"{scheme} {TOKEN}" for scheme in ACCEPTED] + [
    f"bearer  {TOKEN}", f" Bearer {TOKEN} ", f"bearer {TOKEN.upper()}", f"bearer {TOKEN}x", f"bearer{TOKEN}",
    f"basic {TOKEN}", TOKEN, "bearer", "bearer ", "", None]


@pytest.mark.parametrize("header", HEADERS)
def test_the_api_and_the_receivers_read_the_header_alike(header: str | None) -> None:
    """One parser (`auth.bearer_token`): a header the OTLP receivers take, the API takes too, and no other."""
    access = Access(ApiConfig(tokens=[ApiToken(name="admin", sha256=hash_token(TOKEN), role=ADMIN)]), clock=system_clock)
    request = Request("GET", "/api/v1/usage", {}, {} if header is None else {"Authorization": header})
    api_accepts = not isinstance(access.check(request, READ), Response)
    assert api_accepts == BearerAuth(TOKEN).allows(header) == (bearer_token(header) == TOKEN)
