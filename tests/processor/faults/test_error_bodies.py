"""What a broken ledger tells OTLP clients: a short retryable message, never its SQL, bound values or database host.

`costline serve` on a real PostgreSQL database, broken mid-run in two ways: a table the write path reads is gone (the
driver's error then carries the SQL statement and its parameters), and the whole database is dropped (the error then
carries host, port and database name). Clients on OTLP/HTTP (protobuf and JSON) and OTLP/gRPC must see only the short
message; the details go to the server's log, where the operator needs them.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import json_format
from google.rpc import code_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub
from sqlalchemy import create_engine, text

from costline.processor.ingest.receivers import LEDGER_UNAVAILABLE_MESSAGE
from tests.processor.otlp import llm_request, otlp_json
from tests.processor.served import Served, serve

POSTGRES_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
REVEALING = ("SELECT", "INSERT", "costline_call_keys", "costline_usage_hourly", "[parameters", "[SQL",
             "127.0.0.1", "5432", "psycopg", "postgres")


@pytest.fixture
def database() -> Iterator[str]:
    name = f"costline_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield name
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _served(tmp_path: Path, database: str, serving: list[Served]) -> Served:
    served = serve(tmp_path, f"postgresql+psycopg://postgres@127.0.0.1:5432/{database}", grpc=True)
    serving.append(served)
    return served


def _post(url: str, body: bytes, content_type: str) -> tuple[int, bytes]:
    request = urllib.request.Request(url, body, {"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=20) as response:  # noqa: S310 - loopback
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def _answers(served: Served, secret_values: tuple[str, ...]) -> list[str]:
    """Export one batch over each transport and encoding; every answer must be the retryable short one."""
    messages = []
    request = llm_request(2)
    code, body = _post(served.otlp_url, request.SerializeToString(), "application/x-protobuf")
    assert code == 503, body
    messages.append(status_pb2.Status.FromString(body).message)
    code, body = _post(served.otlp_url, json.dumps(otlp_json(request)).encode(), "application/json")
    assert code == 503, body
    status = json_format.Parse(body, status_pb2.Status())
    assert status.code == code_pb2.UNAVAILABLE
    messages.append(status.message)
    messages.append(body.decode())
    assert served.grpc_address is not None
    with grpc.insecure_channel(served.grpc_address) as channel:
        with pytest.raises(grpc.RpcError) as caught:
            TraceServiceStub(channel).Export(request, timeout=20)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    messages.append(caught.value.details())
    trailing = dict(caught.value.trailing_metadata())
    messages.append(status_pb2.Status.FromString(trailing["grpc-status-details-bin"]).message)
    trace_ids = tuple(span.trace_id.hex() for span in request.resource_spans[0].scope_spans[0].spans)
    for message in messages:
        for revealing in (*REVEALING, *secret_values, *trace_ids):
            assert revealing not in message, (revealing, message)
    return messages


def test_missing_table_reveals_no_sql_nor_parameters(tmp_path: Path, database: str, serving: list[Served]) -> None:
    served = _served(tmp_path, database, serving)
    assert _post(served.otlp_url, llm_request(1).SerializeToString(), "application/x-protobuf")[0] == 200
    engine = create_engine(f"postgresql+psycopg://postgres@127.0.0.1:5432/{database}", isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("ALTER TABLE costline_call_keys RENAME TO costline_call_keys_gone"))
    engine.dispose()
    messages = _answers(served, (database,))
    assert messages[0] == LEDGER_UNAVAILABLE_MESSAGE
    # The operator still learns what happened, from the server's log.
    assert "costline_call_keys" in served.log.read_text()


def test_dropped_database_reveals_no_host(tmp_path: Path, database: str, serving: list[Served]) -> None:
    served = _served(tmp_path, database, serving)
    assert _post(served.otlp_url, llm_request(1).SerializeToString(), "application/x-protobuf")[0] == 200
    admin = create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{database}" WITH (FORCE)'))
    admin.dispose()
    messages = _answers(served, (database,))
    assert messages[0] == LEDGER_UNAVAILABLE_MESSAGE
    assert database in served.log.read_text()
