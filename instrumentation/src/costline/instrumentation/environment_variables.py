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
