"""Spans dated far from the processor's clock are rejected, not billed: one from 2100 would sit in a month to come
(and, before budget sums ended with their periods, in today's budgets until then), one from 1970 in a month long
closed. The window is `limits.max_span_age_hours` (default `dedup_retention_hours`) before the injected clock and
`limits.max_span_future_seconds` (default 300) after it; the sender is told through OTLP partial success on
OTLP/HTTP and OTLP/gRPC, and the rejections are counted. A real `Service` on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub

from costline.processor.config.core import ConfigError, parse_config
from costline.processor.config.settings import Address, Settings
from costline.processor.service import Service
from tests.processor.otlp import llm_span, request_of
from tests.processor.served import CONFIG

from .ingesting import Ingest

NOW = datetime(2026, 11, 20, 15, tzinfo=timezone.utc)
NOW_NS = int(NOW.timestamp()) * 10**9
MINUTE = 60 * 10**9
HOUR = 60 * MINUTE


def test_spans_outside_the_window_are_rejected_on_http_and_grpc(tmp_path: Path, db_url: str) -> None:
    (tmp_path / "costline.yaml").write_text(CONFIG)
    settings = Settings(config_path=tmp_path / "costline.yaml", db_url=db_url, otlp_http=Address("127.0.0.1", 0),
                        otlp_grpc=Address("127.0.0.1", 0), http=Address("127.0.0.1", 0))
    service = Service(settings, clock=lambda: NOW).start()
    try:
        ingest = Ingest(service)

        def batch():
            accepted = [NOW_NS - HOUR, NOW_NS + 4 * MINUTE, NOW_NS - 71 * HOUR]
            rejected = [int(datetime(2100, 1, 1, tzinfo=timezone.utc).timestamp()) * 10**9, 86_400 * 10**9,
                        NOW_NS + 6 * MINUTE, NOW_NS - 73 * HOUR]
            return request_of([llm_span(team="engineering", start_ns=t) for t in accepted + rejected])

        response = ingest.export(batch())
        assert response.partial_success.rejected_spans == 4
        message = response.partial_success.error_message
        assert "span start 2100-01-01T00:00:00Z is more than 300 s after" in message, message
        assert "limits.max_span_future_seconds" in message and "limits.max_span_age_hours" in message
        with grpc.insecure_channel(f"127.0.0.1:{service.otlp_grpc.port}") as channel:
            response = TraceServiceStub(channel).Export(batch(), timeout=30)
        assert response.partial_success.rejected_spans == 4
        assert "1970-01-02T00:00:00Z is more than 72 h before" in response.partial_success.error_message

        # The usage window ends at the service's clock unless told: the span 4 minutes after it is asked for too.
        assert sum(r["requests"] for r in ingest.usage(to="2026-11-21") if r["team"] == "engineering") == 6
        months = {r["month"] for r in ingest.usage("month", to="2026-11-21")}
        assert months == {"2026-11"}, months
        assert ingest.sample("costline_span_values_bounded_total", field="start_time", action="rejected") == 8
        assert ingest.sample("costline_spans_received_total", result="rejected") == 8
    finally:
        service.stop(2)


def test_the_window_is_configured_and_checked() -> None:
    limits = parse_config({}).limits
    assert (limits.max_span_age_hours, limits.max_span_future_seconds) == (None, 300)
    assert parse_config({"dedup_retention_hours": 200}).max_span_age_hours == 200  # the retention by default
    assert parse_config({"limits": {"max_span_age_hours": 24}}).max_span_age_hours == 24
    with pytest.raises(ConfigError) as err:
        parse_config({"limits": {"max_span_age_hours": 100}})
    assert err.value.errors[0].startswith("limits.max_span_age_hours: 100 exceeds dedup_retention_hours (72)")
    with pytest.raises(ConfigError) as err:
        parse_config({"limits": {"max_span_future_seconds": -1}})
    assert err.value.errors[0].startswith("limits.max_span_future_seconds: ")


def test_a_business_outcome_outside_the_window_is_rejected_too(tmp_path: Path) -> None:
    """A `costline.outcome` span dated 2100 would be charged (value-based chargeback) in 2100's statement."""
    from tests.processor.faults.test_stalled_ledger import outcome_span

    (tmp_path / "costline.yaml").write_text(CONFIG)
    settings = Settings(config_path=tmp_path / "costline.yaml", db_url=f"sqlite:///{tmp_path / 'l.db'}",
                        otlp_http=Address("127.0.0.1", 0), otlp_grpc=None, http=Address("127.0.0.1", 0))
    service = Service(settings, clock=lambda: NOW).start()
    try:
        spans = [outcome_span(), outcome_span()]
        spans[0].start_time_unix_nano = NOW_NS - HOUR
        spans[1].start_time_unix_nano = int(datetime(2100, 1, 1, tzinfo=timezone.utc).timestamp()) * 10**9
        response = Ingest(service).export(request_of(spans))
        assert response.partial_success.rejected_spans == 1
        assert "span start 2100-01-01T00:00:00Z" in response.partial_success.error_message
        counted = service.pipeline.outcomes.outcomes(datetime(1970, 1, 1, tzinfo=timezone.utc),
                                                     datetime(2101, 1, 1, tzinfo=timezone.utc), ["name"])
        assert [(row["name"], row["count"]) for row in counted] == [("ticket_resolved", 1)], counted
    finally:
        service.stop(2)
