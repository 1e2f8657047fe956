"""What of a received span may leave the processor when it forwards traces downstream.

The processor sits inline in a trace pipeline, so the rule differs by kind of span (docs/processor.md,
"Forwarding", says why):

* **LLM spans** (those the normalisation table recognises as a model call, `normalize_span`): an **allowlist**.
  Only what a cost span needs survives — every attribute some source row reads (model, provider, operation, usage,
  response id, owner keys, ...; not the request-parameter JSON), usage details, a few non-content request and
  response settings, and the processor's own enrichment. Peers record prompts, completions, embedding input, tool
  definitions, the end user and request headers under names no list can keep up with; an allowlist does not need
  to. Events: only `exception` events, with the semconv exception attributes.
* **Other spans** (the application's HTTP, database, queue spans, and agent/chain/tool spans of LLM frameworks): a
  **denylist**. They are the application's trace and travel on intact, minus the attributes and events each
  supported source uses for message content (`CONTENT_KEYS`, `CONTENT_EVENT_PREFIXES`).
* **Everywhere**: key-shaped strings (`sk-...`, `sk-proj-...`, `sk-ant-...`, `gsk_...`, `xai-...`, `AIza...`,
  `Bearer <token>`) are replaced by `REDACTED` in every string kept: span names, status messages, attribute values
  (nested ones included) of spans, events, links, scopes and resources.

Functions mutate the protobuf message they are given: callers pass a copy.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from costline import attributes as A
from costline.processor.ingest.normalize.sources import SOURCES

REDACTED = "[REDACTED]"

SECRET = re.compile(
    r"(?<![A-Za-z0-9_\-])(?:sk-|gsk_|xai-)[A-Za-z0-9_*\-]{16,}"  # OpenAI (sk-, sk-proj-, sk-svcacct-), Anthropic
    # (sk-ant-...), DeepSeek, OpenRouter (sk-or-...), Groq, xAI; `*` for the masked form error messages quote
    r"|(?<![A-Za-z0-9_\-])AIza[A-Za-z0-9_\-]{35}"  # Google API keys
    r"|(?<=[Bb]earer )[A-Za-z0-9._~+/\-]{8,}=*"  # any bearer credential (RFC 6750 b64token)
)
"""Key-shaped text. Deliberately broad: a false positive costs a few characters of a trace, a miss leaks a key."""


def scrub(text: str) -> str:
    """`text` with every key-shaped substring replaced by `REDACTED`."""
    return SECRET.sub(REDACTED, text) if SECRET.search(text) else text


# --- LLM spans: the allowlist ----------------------------------------------------------------------------------------
def _llm_attributes() -> frozenset[str]:
    keys: set[str] = set()
    for source in SOURCES:
        request_params = set(source.fields.get("request_params", ()))  # the whole request's JSON: `user`, tools...
        keys.update(key for key in source.keymap if key not in request_params)
    keys.update({
        A.SERVER_PORT, A.GEN_AI_OPENAI_RESPONSE_SERVICE_TIER, A.ANTHROPIC_RESPONSE_SERVICE_TIER,
        A.GEN_AI_RESPONSE_FINISH_REASONS, "llm.finish_reason", "gen_ai.output.type",
        "gen_ai.request.max_tokens", "gen_ai.request.temperature", "gen_ai.request.top_p", "gen_ai.request.top_k",
        "gen_ai.request.frequency_penalty", "gen_ai.request.presence_penalty", "gen_ai.request.seed",
        "gen_ai.request.choice.count",
        A.COSTLINE_COST_USD, A.COSTLINE_UNPRICED, A.COSTLINE_API_KEY_FINGERPRINT, *A.OWNER_KEYS,
    })
    return frozenset(keys)


LLM_ATTRIBUTES: frozenset[str] = _llm_attributes()
"""Attributes an LLM span keeps: what the normalisation table reads (so what billing used), plus settings that explain
a cost (`max_tokens`, finish reasons, service tier) and the processor's enrichment."""
LLM_ATTRIBUTE_PREFIXES = ("gen_ai.usage.", "llm.token_count.", "llm.usage.")
"""Token counts in any detail a source reports (numbers only, never text)."""
LLM_EVENTS: Mapping[str, frozenset[str]] = {
    "exception": frozenset({"exception.type", "exception.message", "exception.stacktrace", "exception.escaped"}),
}
"""Events an LLM span keeps, with the attributes each keeps (semconv exception event; text scrubbed)."""


def is_llm_attribute(key: str) -> bool:
    return key in LLM_ATTRIBUTES or key.startswith(LLM_ATTRIBUTE_PREFIXES)


# --- other spans: the denylist ---------------------------------------------------------------------------------------
CONTENT_KEYS: frozenset[str] = frozenset({
    # OpenTelemetry GenAI semantic conventions (also the official instrumentations and the anthropic SDK)
    "gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions", "gen_ai.tool.definitions",
    "gen_ai.tool.call.arguments", "gen_ai.tool.call.result", "gen_ai.prompt", "gen_ai.completion",
    "gen_ai.retrieval.query.text", "gen_ai.retrieval.documents", "gen_ai.user", "gen_ai.request.user",
    # anthropic SDK
    "anthropic.tool_result.content",
    # OpenLLMetry (gen_ai.prompt.N.*, gen_ai.completion.N.* above)
    "llm.prompts", "llm.completions", "llm.request.functions", "gen_ai.request.functions", "llm.headers",
    "gen_ai.headers", "llm.user", "traceloop.entity.input", "traceloop.entity.output",
    "gen_ai.request.structured_output_schema",
    # OpenLIT
    "gen_ai.content.prompt", "gen_ai.content.completion", "gen_ai.content.reasoning", "gen_ai.tool.args",
    # OpenInference
    "input.value", "output.value", "llm.input_messages", "llm.output_messages", "llm.prompt_template",
    "llm.tools", "llm.invocation_parameters", "embedding.embeddings", "embedding.text",
    "embedding.invocation_parameters", "retrieval.documents", "reranker.input_documents",
    "reranker.output_documents", "reranker.query", "tool.parameters", "tool.json_schema",
    "tool_call.function.arguments", "message.content", "message.contents", "message.tool_calls",
    "document.content", "user.id", "metadata", "tag.tags",
    # Vercel AI SDK (`ai.prompt.messages`, `ai.prompt.tools`, ... and the outer spans' `ai.response.text`)
    "ai.prompt", "ai.response.text", "ai.response.object", "ai.response.toolCalls", "ai.response.reasoning",
    "ai.toolCall.args", "ai.toolCall.result", "ai.request.headers", "ai.value", "ai.values", "ai.embedding",
    "ai.embeddings", "ai.schema", "ai.telemetry.metadata",
    # Langfuse
    "langfuse.observation.input", "langfuse.observation.output", "langfuse.observation.metadata",
    "langfuse.trace.input", "langfuse.trace.output", "langfuse.trace.metadata", "langfuse.user.id",
})
"""Attribute names (and, with a `.` after them, namespaces: `gen_ai.prompt.0.content`) that carry message content,
tool arguments, embedding input, request headers or the end user in some supported source (normalize/sources/),
on any span. Dropped from every forwarded span."""
CONTENT_EVENT_PREFIXES = ("gen_ai.",)
"""Span events that carry content: semconv's `gen_ai.user.message`, `gen_ai.choice`,
`gen_ai.client.inference.operation.details`, OpenLIT's `gen_ai.content.prompt`/`completion`. Dropped whole."""


def is_content(key: str) -> bool:
    if key in CONTENT_KEYS:
        return True
    dot = key.find(".")
    while dot != -1:  # every namespace prefix of the key: `llm.input_messages.0.message.content` -> ...
        if key[:dot] in CONTENT_KEYS:
            return True
        dot = key.find(".", dot + 1)
    return False


# --- applying the rules ----------------------------------------------------------------------------------------------
def redact_llm_span(span: Span) -> None:
    """Keep only the allowlisted attributes and events of an LLM span; scrub keys from all text kept."""
    _filter(span.attributes, is_llm_attribute)
    events = [event for event in span.events if event.name in LLM_EVENTS]
    if len(events) != len(span.events):
        del span.events[:]
        span.events.extend(events)
    for event in span.events:
        _filter(event.attributes, LLM_EVENTS[event.name].__contains__)
    _scrub_common(span)


def redact_span(span: Span) -> None:
    """Drop content attributes and content events of any other span; scrub keys from all text kept."""
    _filter(span.attributes, lambda key: not is_content(key))
    events = [event for event in span.events if not event.name.startswith(CONTENT_EVENT_PREFIXES)]
    if len(events) != len(span.events):
        del span.events[:]
        span.events.extend(events)
    for event in span.events:
        _filter(event.attributes, lambda key: not is_content(key))
    for link in span.links:
        _filter(link.attributes, lambda key: not is_content(key))
    _scrub_common(span)


def scrub_attributes(attributes) -> None:  # RepeatedCompositeFieldContainer[KeyValue]
    for kv in attributes:
        _scrub_value(kv.value)


def _scrub_common(span: Span) -> None:
    # Protobuf field writes cost more than the search: write only what changes.
    if SECRET.search(span.name):
        span.name = scrub(span.name)
    if span.status.message and SECRET.search(span.status.message):
        span.status.message = scrub(span.status.message)
    scrub_attributes(span.attributes)
    for event in span.events:
        if SECRET.search(event.name):
            event.name = scrub(event.name)
        scrub_attributes(event.attributes)
    for link in span.links:
        scrub_attributes(link.attributes)


def _filter(attributes, keep) -> None:  # attributes: RepeatedCompositeFieldContainer[KeyValue]
    if all(keep(kv.key) for kv in attributes):
        return
    kept = [kv for kv in attributes if keep(kv.key)]
    del attributes[:]
    attributes.extend(kept)


def _scrub_value(value: AnyValue) -> None:
    kind = value.WhichOneof("value")
    if kind == "string_value":
        text = value.string_value
        if SECRET.search(text):
            value.string_value = SECRET.sub(REDACTED, text)
    elif kind == "array_value":
        for item in value.array_value.values:
            _scrub_value(item)
    elif kind == "kvlist_value":
        for kv in value.kvlist_value.values:
            _scrub_value(kv.value)
