"""Claude Code (`@anthropic-ai/claude-code`): one `claude_code.api_request` event per Messages API request.

Format: "Monitoring usage", https://code.claude.com/docs/en/monitoring-usage ("Events" → "API request event"), and
what Claude Code 2.1.332 sent to a local receiver (`tests/fixtures/logs/claude-code/`, recorded by
`scripts/record_assistant_logs.py`). With `CLAUDE_CODE_ENABLE_TELEMETRY=1` and `OTEL_LOGS_EXPORTER=otlp` each request
is a log record whose body is `claude_code.api_request` (attribute `event.name`: `api_request`) with

* `model`; `input_tokens` (uncached: Anthropic's meaning), `output_tokens`, `cache_read_tokens`,
  `cache_creation_tokens` (all cache writes) and, of those, `cache_creation_1h_tokens` (one-hour lifetime);
* `cost_usd`: Claude Code's own estimate (kept as `reported_cost_usd` beside Costline's price, never billed);
* `duration_ms`, `ttft_ms`;
* the standard attributes: `session.id`, `event.sequence` (per session, increasing), `event.timestamp`,
  `prompt.id`, `user.id` (a hash of the installation), and when signed in with a Claude account `user.email`,
  `user.account_uuid`, `organization.id`; `anthropic.provider` (`firstParty`, `bedrock`, `vertex`, `foundry`).

Identity: session, sequence and timestamp — one request, however often the exporter sends it. `claude_code.api_error`
(a request that failed) is not billed: Anthropic does not charge for it.
"""

from __future__ import annotations

from costline.processor.ingest.assistants.base import Assistant, LogEvent, identify, start_of
from costline.processor.model import LLMCall

_PROVIDERS = {"firstParty": "anthropic", "bedrock": "aws.bedrock", "vertex": "gcp.vertex_ai",
              "foundry": "azure.ai.inference"}
"""`anthropic.provider` → the semconv provider the request was billed by (Bedrock and Vertex bill Claude themselves)."""
EVENT = "claude_code.api_request"
_TOKENS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_creation_tokens")


class ClaudeCode(Assistant):
    source = "claude-code"
    docs = "https://code.claude.com/docs/en/monitoring-usage"

    def bills(self, event: LogEvent) -> bool:
        return event.name == EVENT

    def read(self, event: LogEvent) -> LLMCall:
        model = event.text("model")
        duration = event.number("duration_ms")
        ttft = event.number("ttft_ms")
        call = LLMCall(
            provider=_PROVIDERS.get(event.text("anthropic.provider") or "", "anthropic"),
            request_model=model, response_model=model, operation="chat",
            # Anthropic's input_tokens exclude the cache: Costline's meaning already.
            input_tokens=event.tokens("input_tokens"), output_tokens=event.tokens("output_tokens"),
            cache_read_tokens=event.tokens("cache_read_tokens"),
            cache_write_tokens=event.tokens("cache_creation_tokens"),
            has_usage=any(event.has(key) for key in _TOKENS),
            reported_cost_usd=event.number("cost_usd"),
            session_id=event.text("session.id"),
            time_to_first_token_s=ttft / 1000 if ttft is not None else None,
            stream=True,
            start_time_unix_nano=start_of(event, duration), end_time_unix_nano=event.time_unix_nano,
            source=self.source, service_name=event.service_name or None,
        )
        call.cache_write_1h_tokens = min(event.tokens("cache_creation_1h_tokens"), call.cache_write_tokens)
        return identify(call, self.source, event.ident("session.id"), event.ident("event.sequence"),
                        event.ident("event.timestamp"), event.ident("prompt.id"), event.ident("request_id"))
