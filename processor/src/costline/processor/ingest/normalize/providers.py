"""Provider names as the instrumentations spell them → semconv `gen_ai.provider.name` values.

Pricing looks providers up by the semconv name, so every alias a peer uses must land on it. Matching is
case-insensitive (OpenLIT and OpenInference use `OpenAI`/`Anthropic`-style or upper-case values).
"""

from __future__ import annotations

UNKNOWN = "unknown"

ALIASES: dict[str, str] = {
    # old gen_ai.system values and OpenLIT's
    "xai": "x_ai",
    "x.ai": "x_ai",
    "gemini": "gcp.gemini",
    "google_gemini": "gcp.gemini",
    "google.gemini": "gcp.gemini",
    "vertex_ai": "gcp.vertex_ai",
    "vertexai": "gcp.vertex_ai",
    "google_vertexai": "gcp.vertex_ai",
    "az.ai.openai": "azure.ai.openai",
    "azure_openai": "azure.ai.openai",
    "azure": "azure.ai.openai",
    "az.ai.inference": "azure.ai.inference",
    "azure_ai_inference": "azure.ai.inference",
    "mistralai": "mistral_ai",
    "mistral": "mistral_ai",
    "bedrock": "aws.bedrock",
    "aws_bedrock": "aws.bedrock",
    "together": "together_ai",
    "togetherai": "together_ai",
    "cohere": "cohere",
    "ibm.watsonx.ai": "ibm.watsonx.ai",
    "watsonx": "ibm.watsonx.ai",
    # OpenInference llm.provider / llm.system values
    "google": "gcp.gen_ai",
    "aws": "aws.bedrock",
}


def canonical_provider(raw: str | None) -> str:
    if not raw:
        return UNKNOWN
    lowered = raw.strip().lower()
    if not lowered:
        return UNKNOWN
    return ALIASES.get(lowered, lowered)
