"""`costline.outcome(...)`: say in code that a business outcome happened, so cost can be set against it.

    import costline

    costline.outcome("ticket_resolved")
    costline.outcome("document_summarised", count=3, team="support", feature="summaries")

Each call sends one short span named `costline.outcome <name>` carrying `costline.outcome.name`,
`costline.outcome.count` and the owner keys: those given here, else those of the `costline.owner(...)` context
(baggage); the processor adds the resource's (`OTEL_RESOURCE_ATTRIBUTES=costline.team=support`) for the keys still
missing, as for every LLM call. The processor counts outcomes per hour, owner, feature and name in its ledger; value-
based chargeback prices them (docs/chargeback.md). Without an OpenTelemetry SDK configured, this does nothing.
"""

from __future__ import annotations

import re
from typing import Any

from costline.attributes import COSTLINE_OUTCOME_COUNT, COSTLINE_OUTCOME_NAME, MAX_OUTCOME_COUNT, OUTCOME_SPAN_PREFIX
from costline.attribution import OWNER_KEYWORDS

TRACER_NAME = "costline.outcome"

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,62}$")


def outcome(name: str, count: int = 1, *, tracer_provider: Any = None, **owner: str) -> None:
    """Record `count` outcomes called `name` (1-63 letters, digits, `_ . -`). Owner keywords as `costline.owner`:
    `org`, `team`, `project`, `user`, `cost_center`, `feature`, `customer`. `tracer_provider` defaults to the global
    one (what `opentelemetry-instrument` configures).

    Raises `ValueError` for arguments that cannot be an outcome (a programming error, found on the first run);
    sending never raises.
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"costline.outcome: name must be 1-63 letters, digits, '_', '.', '-', got {name!r}")
    if type(count) is not int or not 1 <= count <= MAX_OUTCOME_COUNT:
        raise ValueError(f"costline.outcome: count must be an integer from 1 to {MAX_OUTCOME_COUNT}, got {count!r}")
    attributes: dict[str, Any] = {COSTLINE_OUTCOME_NAME: name, COSTLINE_OUTCOME_COUNT: count}
    for key, value in owner.items():
        if key not in OWNER_KEYWORDS:
            raise ValueError(f"costline.outcome: unknown owner key {key!r}; keys are {', '.join(OWNER_KEYWORDS)}")
        if value is not None:
            if not isinstance(value, str) or not value:
                raise ValueError(f"costline.outcome: {key} must be a non-empty string, got {value!r}")
            attributes[OWNER_KEYWORDS[key]] = value
    try:
        from opentelemetry import baggage, trace

        for attribute in OWNER_KEYWORDS.values():
            if attribute not in attributes:
                value = baggage.get_baggage(attribute)
                if isinstance(value, str) and value:
                    attributes[attribute] = value
        span = trace.get_tracer(TRACER_NAME, tracer_provider=tracer_provider).start_span(OUTCOME_SPAN_PREFIX + name, attributes=attributes)
        span.end()
    except Exception:  # noqa: BLE001 - telemetry must not break the application
        from costline.instrumentation.guard import swallow

        swallow("costline.outcome")
