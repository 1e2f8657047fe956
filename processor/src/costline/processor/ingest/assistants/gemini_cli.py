"""Gemini CLI (`@google/gemini-cli`): one `gemini_cli.api_response` event per Gemini API response.

Format: Gemini CLI's telemetry documentation, docs/cli/telemetry.md ("Logs" → "API"),
https://github.com/google-gemini/gemini-cli/blob/main/docs/cli/telemetry.md. Each response is a log record with
`event.name` `gemini_cli.api_response` and

* `model`, `status_code`, `duration_ms`, `prompt_id`, `auth_type`;
* `input_token_count` (the API's `promptTokenCount`: **includes** the cached tokens), `cached_content_token_count`
  (of those, read from the cache), `output_token_count` (`candidatesTokenCount`, **without** thinking),
  `thoughts_token_count` (thinking, billed at the output rate), `tool_token_count` (`toolUsePromptTokenCount`, input
  the API adds for tool use, billed as input), `total_token_count`;
* the common attributes on every record: `session.id`, `installation.id`, and `user.email` when signed in with a
  Google account; `event.timestamp`.

So Costline bills: uncached input = input + tool − cached, cache read = cached, output = candidates + thoughts (of
which reasoning = thoughts). Gemini has no cache-write charge per request (explicit caches are billed by storage
time, which no event reports). Gemini CLI reports no cost of its own. `gemini_cli.api_error` is not billed.
Identity: session, prompt id and timestamp (a prompt's tool loop makes several responses, each its own time).
Gemini CLI also emits `gen_ai.client.inference.operation.details` for the same request: it is not read, so the
request bills once.
"""

from __future__ import annotations

from costline.processor.ingest.assistants.base import Assistant, LogEvent, identify, start_of
from costline.processor.ingest.normalize.bounds import clamp_cache
from costline.processor.model import LLMCall

EVENT = "gemini_cli.api_response"
_VERTEX_AUTH = ("vertex-ai", "vertex_ai", "cloud-shell", "compute-default-credentials")
"""`auth_type` values whose requests Vertex AI bills (the others go to the Gemini API)."""
_TOKENS = ("input_token_count", "output_token_count", "cached_content_token_count", "thoughts_token_count")


class GeminiCli(Assistant):
    source = "gemini-cli"
    docs = "https://github.com/google-gemini/gemini-cli/blob/main/docs/cli/telemetry.md"

    def bills(self, event: LogEvent) -> bool:
        return event.name == EVENT

    def read(self, event: LogEvent) -> LLMCall:
        model = event.text("model")
        prompt = event.tokens("input_token_count") + event.tokens("tool_token_count")
        cached, _, adjusted = clamp_cache(prompt, event.tokens("cached_content_token_count"), 0)
        thoughts = event.tokens("thoughts_token_count")
        duration = event.number("duration_ms")
        status = event.ident("status_code")
        call = LLMCall(
            provider="gcp.vertex_ai" if (event.text("auth_type") or "") in _VERTEX_AUTH else "gcp.gemini",
            request_model=model, response_model=model, operation="chat",
            input_tokens=prompt - cached, cache_read_tokens=cached,
            output_tokens=event.tokens("output_token_count") + thoughts, reasoning_tokens=thoughts,
            has_usage=any(event.has(key) for key in _TOKENS),
            error_type=status if status and status not in ("200", "OK") else None,
            session_id=event.text("session.id"),
            start_time_unix_nano=start_of(event, duration), end_time_unix_nano=event.time_unix_nano,
            source=self.source, service_name=event.service_name or None, adjusted=adjusted,
        )
        return identify(call, self.source, event.ident("session.id"), event.ident("prompt_id"),
                        event.ident("event.timestamp") or str(event.time_unix_nano), event.ident("model"))
