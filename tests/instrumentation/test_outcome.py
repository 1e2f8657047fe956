"""`costline.outcome(...)`: one span per call with the documented attributes; owner from code, then baggage."""

from __future__ import annotations

import pytest

import costline
from costline import attributes as A


def test_one_span_with_name_count_and_owner_from_code_then_baggage(tracer_provider):
    with costline.owner(org="acme", team="support", feature="auto-reply"):
        costline.outcome("ticket_resolved", tracer_provider=tracer_provider)
        costline.outcome("ticket_resolved", count=3, team="billing", tracer_provider=tracer_provider)
    costline.outcome("escalated", tracer_provider=tracer_provider)
    first, second, third = tracer_provider._test_exporter.get_finished_spans()
    assert first.name == A.OUTCOME_SPAN_PREFIX + "ticket_resolved"
    assert dict(first.attributes) == {A.COSTLINE_OUTCOME_NAME: "ticket_resolved", A.COSTLINE_OUTCOME_COUNT: 1,
                                      A.COSTLINE_ORG: "acme", A.COSTLINE_TEAM: "support",
                                      A.COSTLINE_FEATURE: "auto-reply"}
    assert second.attributes[A.COSTLINE_TEAM] == "billing" and second.attributes[A.COSTLINE_OUTCOME_COUNT] == 3
    assert dict(third.attributes) == {A.COSTLINE_OUTCOME_NAME: "escalated", A.COSTLINE_OUTCOME_COUNT: 1}


@pytest.mark.parametrize(("args", "kwargs", "message"), [
    (("",), {}, "name must be 1-63 letters"),
    (("a b",), {}, "name must be 1-63 letters"),
    (("x", 0), {}, "count must be an integer from 1 to 1000000"),
    (("x", True), {}, "count must be an integer"),
    (("x", 1.5), {}, "count must be an integer"),
    (("x",), {"tem": "a"}, "unknown owner key 'tem'"),
    (("x",), {"team": ""}, "team must be a non-empty string"),
])
def test_bad_arguments_are_refused_at_once(tracer_provider, args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        costline.outcome(*args, tracer_provider=tracer_provider, **kwargs)
    assert tracer_provider._test_exporter.get_finished_spans() == ()


def test_sending_never_raises(monkeypatch):
    from costline.instrumentation import guard

    class Broken:
        def get_tracer(self, *args, **kwargs):
            raise RuntimeError("exporter on fire")

    before = guard.internal_errors()
    costline.outcome("x", tracer_provider=Broken())
    assert guard.internal_errors() == before + 1
