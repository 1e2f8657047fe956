"""Environment variables read by Costline's instrumentation."""

COSTLINE_INSTRUMENT_LIBRARIES = "COSTLINE_INSTRUMENT_LIBRARIES"
"""
.. envvar:: COSTLINE_INSTRUMENT_LIBRARIES

Comma-separated list of client libraries to patch (`openai`, `anthropic`). Default: every installed one.
"""

COSTLINE_OPENAI_STREAM_USAGE = "COSTLINE_OPENAI_STREAM_USAGE"
"""
.. envvar:: COSTLINE_OPENAI_STREAM_USAGE

`true` (default) or `false`. When true, an openai streaming request that did not ask for usage gets
`stream_options={"include_usage": true}` added, and the extra usage-only chunk is hidden from the application, so
token counts are exact. Set `false` for an OpenAI-compatible server that rejects `stream_options`.
"""

COSTLINE_STAMP_FOREIGN_SPANS = "COSTLINE_STAMP_FOREIGN_SPANS"
"""
.. envvar:: COSTLINE_STAMP_FOREIGN_SPANS

`true` (default) or `false`. When true, the owner keys and API-key fingerprint are also stamped onto GenAI spans
made by other instrumentations and by the anthropic SDK's own tracing.
"""

COSTLINE_SUPPRESS_FOREIGN_CONTENT = "COSTLINE_SUPPRESS_FOREIGN_CONTENT"
"""
.. envvar:: COSTLINE_SUPPRESS_FOREIGN_CONTENT

`true` (default) or `false`. When true, `instrument()` defaults the content-capture switches of other GenAI
instrumentations to off — only where the application has not set them itself: `TRACELOOP_TRACE_CONTENT=false`
(OpenLLMetry), `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=false` (OpenTelemetry's GenAI instrumentations),
`OPENINFERENCE_HIDE_INPUTS=true` and `OPENINFERENCE_HIDE_OUTPUTS=true` (OpenInference). A started span cannot lose
attributes, so this is how Costline keeps prompts and completions out of the telemetry of a process it runs in.
"""

FOREIGN_CONTENT_SWITCHES: tuple[tuple[str, str], ...] = (
    ("TRACELOOP_TRACE_CONTENT", "false"),
    ("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "false"),
    ("OPENINFERENCE_HIDE_INPUTS", "true"),
    ("OPENINFERENCE_HIDE_OUTPUTS", "true"),
)
"""Environment switches of other instrumentations, with the value that turns their content capture off."""

COSTLINE_GUARD = "COSTLINE_GUARD"
"""
.. envvar:: COSTLINE_GUARD

`off` (default), `warn` or `block`: the in-process guard (`costline.instrumentation.policy_guard`). Before a
request leaves the process it checks the call's model against the caller's `models:` rules and the caller's
effective remaining budget, both learnt from the processor (`COSTLINE_GUARD_URL`). `warn` logs once per refresh
window and marks the span (`costline.guard.action=warned`); `block` raises `costline.ModelNotAllowed` or
`costline.BudgetExceeded` and sends nothing. Also settable in code: `CostlineInstrumentor().instrument(guard=...)`.
"""

COSTLINE_GUARD_FAIL = "COSTLINE_GUARD_FAIL"
"""
.. envvar:: COSTLINE_GUARD_FAIL

`open` (default) or `closed`: what the guard does for a caller whose policy it does not know (the processor is
unreachable, answers garbage, or has not answered yet). `open` lets the call through (said once in the log);
`closed` refuses it with `costline.GuardUnavailable` in `block` mode.
"""

COSTLINE_GUARD_URL = "COSTLINE_GUARD_URL"
"""
.. envvar:: COSTLINE_GUARD_URL

Base URL of the processor's `--http` listener (`http://costline-processor:9464`); the guard asks
`GET /api/v1/policy` there. Required when the guard is on.
"""

COSTLINE_GUARD_TOKEN = "COSTLINE_GUARD_TOKEN"
"""
.. envvar:: COSTLINE_GUARD_TOKEN

Bearer token with the `guard` role (or `admin`), sent to the policy endpoint. Not needed when the processor has no
`api.tokens` and runs on the same host.
"""

COSTLINE_GUARD_REFRESH = "COSTLINE_GUARD_REFRESH"
"""
.. envvar:: COSTLINE_GUARD_REFRESH

Seconds between policy refreshes (default 15), done by a background thread: the call path never waits on the
network. Between refreshes the guard subtracts its own process's estimated spend from the remaining budget.
"""

COSTLINE_GUARD_TIMEOUT = "COSTLINE_GUARD_TIMEOUT"
"""
.. envvar:: COSTLINE_GUARD_TIMEOUT

Seconds one policy request may take (default 2). `instrument()` waits at most this long once, at start, for the
policy of the keys in `OPENAI_API_KEY` / `ANTHROPIC_API_KEY`, so the first call is already guarded.
"""

COSTLINE_SAMPLING_SAFE = "COSTLINE_SAMPLING_SAFE"
"""
.. envvar:: COSTLINE_SAMPLING_SAFE

`true` (default) or `false`. When true, an LLM call whose span the application's trace sampler drops is recorded on
Costline's billing path instead (its own tracer provider and OTLP exporter, the span marked
`costline.sampled_out=true`), so every call is billed whatever the sampler decides; the processor does not forward
those spans downstream. `costline.instrumentation.sampling` says how. Also settable in code:
`CostlineInstrumentor().instrument(sampling_safe=False)`.
"""

COSTLINE_BILLING_ENDPOINT = "COSTLINE_BILLING_ENDPOINT"
"""
.. envvar:: COSTLINE_BILLING_ENDPOINT

Where the billing path sends the spans of sampled-out calls: the Costline processor's OTLP endpoint
(`http://costline-processor:4317` for gRPC, `http://costline-processor:4318` for OTLP/HTTP, whose `/v1/traces` is
added), in the protocol of `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL` / `OTEL_EXPORTER_OTLP_PROTOCOL`. Default: the
endpoint the application's traces go to (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` / `OTEL_EXPORTER_OTLP_ENDPOINT`). Set
it when those go to a Collector that samples (docs/scale-out.md).
"""
