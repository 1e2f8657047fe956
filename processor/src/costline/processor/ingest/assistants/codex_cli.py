"""Codex CLI (`@openai/codex`): the `codex.sse_event` of kind `response.completed` that ends each Responses API
request.

Format: Codex's configuration documentation, docs/config.md ("Observability and telemetry" → `[otel]`, "Event
catalog"), https://github.com/openai/codex/blob/main/docs/config.md. Telemetry is configured in
`~/.codex/config.toml` (`[otel] exporter = { otlp-http = {endpoint = ".../v1/logs", protocol = "binary"} }` or
`otlp-grpc`). Every event carries `event.timestamp`, `conversation.id`, `app.version`, `auth_mode`,
`user.account_id` and `user.email` (when signed in), `terminal.type`, `model`, `slug`; a `codex.sse_event` carries
`event.kind` and, for `response.completed`, the response's usage:

* `input_token_count` (the Responses API's `input_tokens`: **includes** the cached tokens), `cached_token_count`
  (of those, read from the cache), `output_token_count` (**includes** reasoning), `reasoning_token_count` (of
  those, reasoning), `tool_token_count` (a total Codex derives; not a billable unit, not read).

So Costline bills: uncached input = input − cached, cache read = cached, output = output (reasoning within it).
Codex reports no cost. `codex.api_request` (one per HTTP attempt, retries included, without usage) is not billed:
the completed response is the request that was billed. Identity: conversation, timestamp and model.
"""

from __future__ import annotations

from costline.processor.ingest.assistants.base import Assistant, LogEvent, identify, start_of
from costline.processor.ingest.normalize.bounds import clamp_cache
from costline.processor.model import LLMCall

EVENT = "codex.sse_event"
COMPLETED = "response.completed"
_TOKENS = ("input_token_count", "output_token_count", "cached_token_count")


class CodexCli(Assistant):
    source = "codex-cli"
    docs = "https://github.com/openai/codex/blob/main/docs/config.md"

    def bills(self, event: LogEvent) -> bool:
        return event.name == EVENT and event.text("event.kind") == COMPLETED

    def read(self, event: LogEvent) -> LLMCall:
        model = event.text("model")
        total_input = event.tokens("input_token_count")
        cached, _, adjusted = clamp_cache(total_input, event.tokens("cached_token_count"), 0)
        output = event.tokens("output_token_count")
        conversation = event.text("conversation.id")
        call = LLMCall(
            provider="openai", request_model=model, response_model=model, operation="chat",
            input_tokens=total_input - cached, cache_read_tokens=cached,
            output_tokens=output, reasoning_tokens=min(event.tokens("reasoning_token_count"), output),
            has_usage=any(event.has(key) for key in _TOKENS),
            conversation_id=conversation, session_id=conversation, stream=True,
            start_time_unix_nano=start_of(event, event.number("duration_ms")),
            end_time_unix_nano=event.time_unix_nano,
            source=self.source, service_name=event.service_name or None, adjusted=adjusted,
        )
        return identify(call, self.source, event.ident("conversation.id"),
                        event.ident("event.timestamp") or str(event.time_unix_nano), event.ident("model"),
                        event.ident("response.id"))
