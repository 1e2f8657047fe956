"""Outcome spans through the real pipeline into the ledger's database (SQLite and PostgreSQL): owner resolved like a
call's (span, then resource, then the hierarchy), counted once however often the exporter retries."""

from __future__ import annotations

from datetime import datetime, timezone

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from costline import attributes as A
from costline.processor.config.core import parse_config
from costline.processor.ledger import Ledger
from costline.processor.service import assemble_pipeline
from tests.processor.conftest import at, db_url  # noqa: F401 - the fixture


def kv(key, value):
    return KeyValue(key=key, value=AnyValue(int_value=value) if isinstance(value, int) else AnyValue(
        string_value=value))


def request(spans, resource=None) -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.extend(kv(k, v) for k, v in (resource or {}).items())
    ss = rs.scope_spans.add()
    for i, (name, count, attrs) in enumerate(spans):
        span = ss.spans.add(name=A.OUTCOME_SPAN_PREFIX + name, trace_id=b"\x07" * 16,
                            span_id=(i + 1).to_bytes(8, "big"), start_time_unix_nano=at(2026, 11, 10))
        span.attributes.extend([kv(A.COSTLINE_OUTCOME_NAME, name), kv(A.COSTLINE_OUTCOME_COUNT, count),
                                *(kv(k, v) for k, v in attrs.items())])
    return req


def test_counted_once_per_span_owner_from_span_then_resource(db_url):  # noqa: F811
    config = parse_config({"orgs": [{"name": "acme", "teams": [{"name": "support"}]}]})
    # The processor's clock the day after the spans (outcome spans are held to the same time window as calls).
    pipeline = assemble_pipeline(config, Ledger(db_url), clock=lambda: datetime(2026, 11, 11, tzinfo=timezone.utc))
    try:
        batch = request([("ticket_resolved", 1, {A.COSTLINE_FEATURE: "auto-reply"}),
                         ("ticket_resolved", 2, {}),
                         ("ticket_resolved", 5, {A.COSTLINE_TEAM: "other"}),
                         ("bogus", 0, {}),  # count out of range: not an outcome
                         ], resource={A.COSTLINE_TEAM: "support"})
        for _ in range(3):  # the exporter's retries
            pipeline.ingest(batch)
        rows = pipeline.outcomes.outcomes(datetime(2026, 11, 1, tzinfo=timezone.utc),
                                          datetime(2026, 12, 1, tzinfo=timezone.utc), ["org", "team", "name"])
        assert rows == [{"org": "acme", "team": "support", "name": "ticket_resolved", "count": 3},
                        {"org": "unattributed", "team": "other", "name": "ticket_resolved", "count": 5}]
        assert pipeline.outcome_counter.snapshot() == {("acme", "support", "auto-reply", "ticket_resolved"): 1,
                                                       ("acme", "support", "", "ticket_resolved"): 2,
                                                       ("unattributed", "other", "", "ticket_resolved"): 5}
        assert pipeline.outcomes.outcomes(datetime(2026, 12, 1, tzinfo=timezone.utc),
                                          datetime(2027, 1, 1, tzinfo=timezone.utc), ["name"]) == []
    finally:
        pipeline.close()
