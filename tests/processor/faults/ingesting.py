"""A real `Service` (OTLP/HTTP receiver, pipeline, ledger, /metrics and the usage API) in this process, on SQLite
or on the real PostgreSQL server, for the fault tests about what ingestion makes of odd spans."""

from __future__ import annotations

import http.client
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from costline.processor.config.settings import Address, Settings
from costline.processor.service import Service
from tests.processor.conftest import db_url  # noqa: F401 - the fixture: SQLite and a fresh PostgreSQL database
from tests.processor.served import CONFIG, http_get


@dataclass
class Ingest:
    service: Service

    def post(self, body: bytes, content_type: str = "application/x-protobuf") -> tuple[int, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.service.otlp_http.port, timeout=60)
        try:
            connection.request("POST", "/v1/traces", body=body, headers={"Content-Type": content_type})
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def export(self, request: ExportTraceServiceRequest) -> ExportTraceServiceResponse:
        """Post as protobuf; the response must be 200 (anything else fails the test, with the body)."""
        status, body = self.post(request.SerializeToString())
        assert status == 200, (status, body[:500])
        return ExportTraceServiceResponse.FromString(body)

    def export_json(self, document: dict) -> dict:
        status, body = self.post(json.dumps(document).encode(), "application/json")
        assert status == 200, (status, body[:500])
        return json.loads(body or b"{}")

    def usage(self, group_by: str = "team", to: str | None = None) -> list[dict]:
        """`GET /api/v1/usage`; without `to` the window ends at the service's clock's now."""
        until = f"&to={to}" if to else ""
        return json.loads(http_get(f"{self.service.admin.url}/api/v1/usage?group_by={group_by}&format=json{until}")
                          )["rows"]

    def metrics(self) -> str:
        return http_get(f"{self.service.admin.url}/metrics").decode()

    def sample(self, name: str, **labels: str) -> float | None:
        """The value of the one sample of `name` whose labels include `labels`, None when there is none."""
        found = None
        for line in self.metrics().splitlines():
            match = re.match(r"^(\w+)(?:\{(.*)\})? (\S+)$", line)
            if not match or match.group(1) != name:
                continue
            have = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(2) or ""))
            if all(have.get(k) == v for k, v in labels.items()):
                assert found is None, f"more than one {name} sample matches {labels}"
                found = float(match.group(3))
        return found


def start(workdir: Path, db_url: str, config: str = CONFIG) -> Service:  # noqa: F811 - a parameter
    (workdir / "costline.yaml").write_text(config)
    settings = Settings(config_path=workdir / "costline.yaml", db_url=db_url, otlp_http=Address("127.0.0.1", 0),
                        otlp_grpc=None, http=Address("127.0.0.1", 0))
    return Service(settings).start()


@pytest.fixture
def ingest(tmp_path: Path, db_url: str) -> Iterator[Ingest]:  # noqa: F811
    service = start(tmp_path, db_url)
    try:
        yield Ingest(service)
    finally:
        service.stop(2)
