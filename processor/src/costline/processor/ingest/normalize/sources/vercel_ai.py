"""Vercel AI SDK (`ai` with `experimental_telemetry: {isEnabled: true}`; scope `ai`, recorded from 6.x).

Every `generateText` / `streamText` / `embed` call makes an outer span (`ai.generateText`, ...) summing its steps'
usage and one inner span per provider request (`ai.generateText.doGenerate`, `ai.streamText.doStream`,
`ai.embed.doEmbed`, ...). Only the inner ones are calls (`ai.operationId` ends with `.doGenerate`, `.doStream` or
`.doEmbed`): the outer ones are aggregates, never billed, whichever export they arrive in.

`gen_ai.usage.input_tokens` (= `ai.usage.inputTokens`) includes the cache; the split is only in
`ai.usage.inputTokenDetails.cacheReadTokens` / `cacheWriteTokens` (older releases: `ai.usage.cachedInputTokens`).
`ai.embed.doEmbed` has no `gen_ai.*` at all: its usage is `ai.usage.tokens`, its provider `ai.model.provider`.
Providers are spelt `<provider>.<api>` (`openai.chat`, `openai.responses`, `anthropic.messages`,
`openai.embedding`): the API suffix is dropped.

The scope is the bare name `ai` (a scope prefix would match unrelated scopes), so the spans are recognised by
`ai.model.provider`, which only this SDK writes.
"""

from __future__ import annotations

from collections.abc import MutableMapping

from costline import attributes as A
from costline.processor.ingest.normalize.sources.base import SEMCONV, Source, SourceDoc, extend

AI_OPERATION_ID = "ai.operationId"
AI_MODEL_PROVIDER = "ai.model.provider"
AI_MODEL_ID = "ai.model.id"

CALL_SUFFIXES = (".doGenerate", ".doStream", ".doEmbed")
"""The spans of one provider request; `ai.generateText`, `ai.streamText`, `ai.embed`, ... sum them."""

# `<provider>.<api>` prefixes that are not the semconv provider name once the API suffix is cut.
_PROVIDER_PREFIXES = {"google.vertex": "gcp.vertex_ai", "amazon-bedrock": "aws.bedrock", "azure": "azure.ai.openai",
                      "google": "gcp.gemini", "mistral": "mistral_ai", "xai": "x_ai"}

FIELDS = extend(
    SEMCONV,
    provider=(AI_MODEL_PROVIDER,),
    request_model=(AI_MODEL_ID,),
    response_model=("ai.response.model",),
    response_id=("ai.response.id",),
    input=("ai.usage.inputTokens", "ai.usage.tokens", "ai.usage.promptTokens"),
    output=("ai.usage.outputTokens", "ai.usage.completionTokens"),
    cache_read=("ai.usage.inputTokenDetails.cacheReadTokens", "ai.usage.cachedInputTokens"),
    cache_write=("ai.usage.inputTokenDetails.cacheWriteTokens",),
    reasoning=("ai.usage.outputTokenDetails.reasoningTokens", "ai.usage.reasoningTokens"),
    total=("ai.usage.totalTokens",),
    ttft=("ai.response.msToFirstChunk",),  # milliseconds: `refine` makes it seconds
)
# `ai.operationId` is this source's own call rule (`is_call`, through `extra`): not the base's generic aggregate field,
# which would take the key first and leave `is_call` nothing to read.
FIELDS["aggregate"] = ()


def _provider(raw: str) -> str:
    lowered = raw.lower()
    for prefix, provider in _PROVIDER_PREFIXES.items():
        if lowered == prefix or lowered.startswith(prefix + "."):
            return provider
    return lowered.split(".", 1)[0]


def refine(values: MutableMapping[str, object]) -> None:
    operation_id = values.get("ai_operation_id")
    if isinstance(operation_id, str):
        if operation_id.endswith(".doEmbed"):
            values["operation"] = A.OPERATION_EMBEDDINGS
        elif operation_id.endswith((".doGenerate", ".doStream")):
            values["operation"] = A.OPERATION_CHAT
            values["stream"] = operation_id.endswith(".doStream")
    provider = values.get("provider")
    if isinstance(provider, str):
        values["provider"] = _provider(provider)
    ttft = values.get("ttft")
    if isinstance(ttft, float):
        values["ttft"] = ttft / 1000


def is_call(values: MutableMapping[str, object]) -> bool:
    operation_id = values.get("ai_operation_id")
    return isinstance(operation_id, str) and operation_id.endswith(CALL_SUFFIXES)


SOURCE = Source(
    "vercel-ai", FIELDS, "genai", precedence=25, markers=(AI_MODEL_PROVIDER, AI_OPERATION_ID),
    refine=refine, is_call=is_call, extra={"ai_operation_id": (AI_OPERATION_ID,)},
    doc=SourceDoc(
        tested="ai 6.0.333 with @ai-sdk/openai 3.0.141, @ai-sdk/anthropic 3.0.140 (recorded, Node 20)",
        reports="usage with the cache split in `ai.usage.inputTokenDetails.*`, reasoning, streams, embeddings "
                "(`ai.usage.tokens`), response id, time to first chunk",
        reading="only `*.doGenerate`, `*.doStream`, `*.doEmbed` spans are calls (the outer `ai.generateText`, "
                "`ai.streamText`, `ai.embed` spans sum them); input includes the cache; provider `openai.chat` "
                "read as `openai`",
        limits="needs `experimental_telemetry: {isEnabled: true}` on every call",
    ),
)
