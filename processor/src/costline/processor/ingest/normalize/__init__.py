"""OTLP spans from every supported instrumentation → `LLMCall` (billing semantics), and per-batch dedup (by `model.call_keys`, the rule the ledger shares).

* `resource_attributes(resource)` — decode a resource's attributes once per ResourceSpans;
* `normalize_span(span, resource_attrs, scope_name)` — `LLMCall` or None (cheap for non-LLM spans);
* `dedupe_calls(calls)` — spans of one batch describing the same API call become one;
* `InvalidSpan` — raised for an LLM span with impossible token counts (the pipeline rejects it);
* `bounds` — what normalisation bounds (label values, cache within input, tokens per call), applied and recorded;

The per-source knowledge lives in one table, `sources.SOURCES`; see docs/sources.md.
"""

from costline.processor.ingest.normalize.dedupe import dedupe_calls
from costline.processor.ingest.normalize.resource import resource_attributes
from costline.processor.ingest.normalize.span import normalize_span
from costline.processor.ingest.normalize.values import InvalidSpan

__all__ = ["InvalidSpan", "dedupe_calls", "normalize_span", "resource_attributes"]
