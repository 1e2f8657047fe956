"""The attribute contract between Costline's instrumentation and its processor.

`docs/attributes.md` is the human-readable form of this module; both must stay in step. The processor imports the
names from here, so a rename is one edit. GenAI names follow the OpenTelemetry GenAI semantic conventions
(semantic-conventions-genai; all still "Development" stability).
"""

from __future__ import annotations

# --- GenAI semantic conventions -------------------------------------------------------------------------------------
GEN_AI_OPERATION_NAME = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME = "gen_ai.provider.name"
GEN_AI_SYSTEM = "gen_ai.system"  # deprecated predecessor of gen_ai.provider.name; read, never written
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
GEN_AI_REQUEST_STREAM = "gen_ai.request.stream"
GEN_AI_RESPONSE_MODEL = "gen_ai.response.model"
GEN_AI_RESPONSE_ID = "gen_ai.response.id"
GEN_AI_RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK = "gen_ai.response.time_to_first_chunk"
GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"  # includes cache read and cache write tokens
GEN_AI_USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"  # includes reasoning tokens
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS = "gen_ai.usage.cache_write.input_tokens"
GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS = "gen_ai.usage.cache_creation.input_tokens"  # v1.41 name; read only
GEN_AI_USAGE_REASONING_OUTPUT_TOKENS = "gen_ai.usage.reasoning.output_tokens"
GEN_AI_OPENAI_RESPONSE_SERVICE_TIER = "openai.response.service_tier"
# Usage by modality: each is part of `gen_ai.usage.input_tokens` / `.output_tokens` (as the providers report it).
GEN_AI_USAGE_AUDIO_INPUT_TOKENS = "gen_ai.usage.audio.input_tokens"
GEN_AI_USAGE_IMAGE_INPUT_TOKENS = "gen_ai.usage.image.input_tokens"
GEN_AI_USAGE_VIDEO_INPUT_TOKENS = "gen_ai.usage.video.input_tokens"
GEN_AI_USAGE_AUDIO_OUTPUT_TOKENS = "gen_ai.usage.audio.output_tokens"
GEN_AI_USAGE_IMAGE_OUTPUT_TOKENS = "gen_ai.usage.image.output_tokens"
GEN_AI_USAGE_VIDEO_OUTPUT_TOKENS = "gen_ai.usage.video.output_tokens"
GEN_AI_CONVERSATION_ID = "gen_ai.conversation.id"
SESSION_ID = "session.id"  # semconv `session.id` (also OpenInference's and Langfuse's session attribute)
GEN_AI_USAGE_COST_AMOUNT = "gen_ai.usage.cost.amount"  # draft semconv: written by the processor on forwarded spans
GEN_AI_USAGE_COST_CURRENCY = "gen_ai.usage.cost.currency"
GEN_AI_USAGE_COST_SOURCE = "gen_ai.usage.cost.source"
OPENAI_REQUEST_SERVICE_TIER = "openai.request.service_tier"
ANTHROPIC_RESPONSE_SERVICE_TIER = "anthropic.response.service_tier"

SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
ERROR_TYPE = "error.type"
HTTP_REQUEST_RESEND_COUNT = "http.request.resend_count"  # retries the SDK made (first attempt not counted)

# --- Operation names (gen_ai.operation.name values) ------------------------------------------------------------------
OPERATION_CHAT = "chat"
OPERATION_TEXT_COMPLETION = "text_completion"
OPERATION_EMBEDDINGS = "embeddings"
OPERATION_GENERATE_CONTENT = "generate_content"

# --- Provider names (gen_ai.provider.name values) --------------------------------------------------------------------
PROVIDER_OPENAI = "openai"
PROVIDER_ANTHROPIC = "anthropic"
PROVIDER_AZURE_OPENAI = "azure.ai.openai"
PROVIDER_GROQ = "groq"
PROVIDER_DEEPSEEK = "deepseek"
PROVIDER_MISTRAL = "mistral_ai"
PROVIDER_OPENROUTER = "openrouter"
PROVIDER_TOGETHER = "together_ai"
PROVIDER_OLLAMA = "ollama"
PROVIDER_VLLM = "vllm"
PROVIDER_AWS_BEDROCK = "aws.bedrock"  # the anthropic SDK's `AnthropicBedrock` clients
PROVIDER_GCP_VERTEX_AI = "gcp.vertex_ai"  # the anthropic SDK's `AnthropicVertex` clients

# --- Costline's own attributes ---------------------------------------------------------------------------------------
COSTLINE_ORG = "costline.org"
COSTLINE_TEAM = "costline.team"
COSTLINE_PROJECT = "costline.project"
COSTLINE_USER = "costline.user"
COSTLINE_COST_CENTER = "costline.cost_center"
COSTLINE_FEATURE = "costline.feature"
COSTLINE_CUSTOMER = "costline.customer"

OWNER_KEYS: tuple[str, ...] = (
    COSTLINE_ORG,
    COSTLINE_TEAM,
    COSTLINE_PROJECT,
    COSTLINE_USER,
    COSTLINE_COST_CENTER,
    COSTLINE_FEATURE,
    COSTLINE_CUSTOMER,
)
"""Ownership keys: span attributes, W3C baggage entries and resource attributes all use these same names."""

COSTLINE_API_KEY_FINGERPRINT = "costline.api_key.fingerprint"
"""First 16 hex characters of SHA-256 of the API key the client used (`costline.fingerprint.fingerprint`)."""

# Billable units the semantic conventions have no name for yet (Costline's spans write them; the processor reads them).
COSTLINE_USAGE_CACHE_WRITE_1H_TOKENS = "costline.usage.cache_write_1h.input_tokens"
"""Of `gen_ai.usage.cache_write.input_tokens`, those written with a one-hour lifetime (Anthropic's `ttl: 1h`)."""
COSTLINE_USAGE_WEB_SEARCHES = "costline.usage.web_search.requests"
"""Server-side web searches the provider ran for the call (Anthropic `server_tool_use.web_search_requests`, OpenAI's
`web_search_call` output items): billed per search."""
COSTLINE_USAGE_CODE_EXECUTIONS = "costline.usage.code_execution.requests"
"""Server-side code executions billed per run (`server_tool_use.code_execution_requests`)."""
COSTLINE_REQUEST_PROCESSING = "costline.request.processing"
"""`batch` for a call run through a provider's batch API (billed at batch rates); absent for an online call."""
COSTLINE_SERVICE_TIER = "costline.service_tier"
"""The service tier the provider billed the call at (`flex`, `priority`, ...), whatever the provider."""

COSTLINE_SAMPLED_OUT = "costline.sampled_out"
"""`true` on the span of an LLM call the application's trace sampler dropped, recorded on Costline's billing path
(`costline.instrumentation.sampling`): the processor bills it and does not forward it downstream."""

COSTLINE_OUTCOME_NAME = "costline.outcome.name"
"""On an outcome span (`costline.outcome(name)`): the business outcome, e.g. `ticket_resolved`."""
COSTLINE_OUTCOME_COUNT = "costline.outcome.count"
"""On an outcome span: how many outcomes it reports (an int, 1 to `MAX_OUTCOME_COUNT`)."""
OUTCOME_SPAN_PREFIX = "costline.outcome "
"""An outcome span's name is this prefix and the outcome's name."""
MAX_OUTCOME_COUNT = 1_000_000
"""Most outcomes one span may report: a count above it is a bug in the caller, not a day's work."""
COSTLINE_GUARD_ACTION = "costline.guard.action"
"""`blocked` (the call was refused; nothing was sent) or `warned` (`COSTLINE_GUARD=warn`), set by the guard."""
COSTLINE_GUARD_RULE = "costline.guard.rule"
"""The budget or model rule behind `costline.guard.action` (or why the policy was unknown)."""
GUARD_BLOCKED = "blocked"
GUARD_WARNED = "warned"

COSTLINE_COST_USD = "costline.cost.usd"
"""Written by the processor on spans it forwards downstream, never by the instrumentation."""

COSTLINE_UNPRICED = "costline.unpriced"
"""Written by the processor on forwarded spans whose model it could not price."""

DEPLOYMENT_ENVIRONMENT = "deployment.environment.name"  # resource attribute; `deployment.environment` also read
DEPLOYMENT_ENVIRONMENT_OLD = "deployment.environment"
SERVICE_NAME = "service.name"

INSTRUMENTATION_SCOPE = "costline.instrumentation"
"""The instrumentation scope name of the spans Costline itself creates."""
