"""Business outcome spans (`costline.outcome(name)` in the app): an outcome span carries `costline.outcome.name`,
`costline.outcome.count` and owner keys (span first, then the resource, as for LLM calls). Counted by
`ledger.outcomes.OutcomeStore`."""

from __future__ import annotations

from typing import Any

from opentelemetry.proto.trace.v1.trace_pb2 import Span

from costline import attributes as A
from costline.processor.ingest.normalize.values import as_plain
from costline.processor.model import MAX_LABEL_LENGTH, Outcome


def read_outcome(span: Span, resource: Any) -> Outcome | None:
    """The outcome a span reports, or None when it is not an outcome span (or its name or count is unusable)."""
    if not span.name.startswith(A.OUTCOME_SPAN_PREFIX):
        return None
    values = {kv.key: as_plain(kv.value) for kv in span.attributes}
    name, count = values.get(A.COSTLINE_OUTCOME_NAME), values.get(A.COSTLINE_OUTCOME_COUNT)
    if not isinstance(name, str) or not name or len(name) > MAX_LABEL_LENGTH or not name.isprintable():
        return None
    if type(count) is not int or not 1 <= count <= A.MAX_OUTCOME_COUNT:
        return None
    span_owner = {k: v for k in A.OWNER_KEYS if isinstance(v := values.get(k), str) and v}
    owner = {**getattr(resource, "owner", {}), **span_owner}
    key = (span.trace_id + span.span_id).hex() if span.trace_id and span.span_id else ""
    return Outcome(name, count, owner, getattr(resource, "environment", None), span.start_time_unix_nano, key)
