"""GitHub Copilot Chat (VS Code extension): one `gen_ai.client.inference.operation.details` event per LLM request.

Format: "Monitoring Agent Usage with OpenTelemetry", docs/monitoring/agent_monitoring.md in
microsoft/vscode-copilot-chat (https://github.com/microsoft/vscode-copilot-chat/blob/main/docs/monitoring/agent_monitoring.md)
and https://code.visualstudio.com/docs/copilot/guides/monitoring-agents. With `COPILOT_OTEL_ENABLED=true` (or
`github.copilot.chat.otel.enabled`) each request is an event with `gen_ai.operation.name` `chat`,
`gen_ai.request.model`, `gen_ai.response.model`, `gen_ai.response.id`, `gen_ai.usage.input_tokens`,
`gen_ai.usage.output_tokens` (semconv meanings: input includes any cached tokens), `error.type` on failure; the
resource carries `service.name` `copilot-chat` and `session.id` (one per VS Code window). The events carry no
account: a developer's identity comes from `OTEL_RESOURCE_ATTRIBUTES` (`user.email=...`, docs/coding-assistants.md).

Gemini CLI emits an event of the same name, so only records of a `copilot*` service or scope are read here. Copilot
is sold per seat and premium request, not per token: Costline's price is the model's list price for the tokens (the
API-equivalent value), provider inferred from the model's name. When the chat spans reach `/v1/traces` too, Costline
bills them as well (as GenAI spans): send Copilot Chat's logs only, or its traces only (docs/coding-assistants.md).
Identity: the response id within its conversation and session.
"""

from __future__ import annotations

from costline.processor.ingest.assistants.base import Assistant, LogEvent, identify, start_of
from costline.processor.ingest.normalize.bounds import clamp_cache
from costline.processor.model import LLMCall

EVENT = "gen_ai.client.inference.operation.details"
_VENDORS = (("gpt-", "openai"), ("o1", "openai"), ("o3", "openai"), ("o4", "openai"), ("claude-", "anthropic"),
            ("gemini-", "gcp.gemini"), ("grok-", "x_ai"))


def _provider(model: str | None) -> str:
    name = (model or "").lower()
    return next((vendor for prefix, vendor in _VENDORS if name.startswith(prefix)), "github")


class CopilotChat(Assistant):
    source = "copilot-chat"
    docs = "https://github.com/microsoft/vscode-copilot-chat/blob/main/docs/monitoring/agent_monitoring.md"

    def bills(self, event: LogEvent) -> bool:
        return event.name == EVENT and ("copilot" in event.service_name.lower() or "copilot" in event.scope.lower())

    def read(self, event: LogEvent) -> LLMCall:
        request_model, response_model = event.text("gen_ai.request.model"), event.text("gen_ai.response.model")
        total_input = event.tokens("gen_ai.usage.input_tokens")
        cached, _, adjusted = clamp_cache(total_input, event.tokens("gen_ai.usage.cache_read.input_tokens"), 0)
        conversation = event.text("gen_ai.conversation.id")
        call = LLMCall(
            provider=_provider(response_model or request_model), request_model=request_model,
            response_model=response_model, operation=event.text("gen_ai.operation.name") or "chat",
            input_tokens=total_input - cached, cache_read_tokens=cached,
            output_tokens=event.tokens("gen_ai.usage.output_tokens"),
            has_usage=event.has("gen_ai.usage.input_tokens") or event.has("gen_ai.usage.output_tokens"),
            error_type=event.text("error.type"),
            conversation_id=conversation, session_id=event.text("session.id") or conversation,
            start_time_unix_nano=start_of(event, None), end_time_unix_nano=event.time_unix_nano,
            source=self.source, service_name=event.service_name or None, adjusted=adjusted,
        )
        response = event.ident("gen_ai.response.id")
        # Without a response id (a failed request), the event's time and trace context tell two requests apart.
        return identify(call, self.source, event.ident("session.id") + "/" + (conversation or ""), response,
                        "" if response else str(event.time_unix_nano), event.span_id.hex())
