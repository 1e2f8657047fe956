"""Semconv provider names (`gen_ai.provider.name`) -> genai-prices provider ids."""

from __future__ import annotations

GENAI_PRICES_PROVIDER: dict[str, str] = {
    "openai": "openai",
    "anthropic": "anthropic",
    # Azure OpenAI bills OpenAI's list prices for the same models; genai-prices' `azure` covers only some of them,
    # so Azure is looked up as azure first, then openai (see `candidates`).
    "azure.ai.openai": "azure",
    "azure.ai.inference": "azure",
    "aws.bedrock": "aws",
    "gcp.gemini": "google",
    "gcp.vertex_ai": "google",
    "gcp.gen_ai": "google",
    "mistral_ai": "mistral",
    "x_ai": "x-ai",
    "deepseek": "deepseek",
    "groq": "groq",
    "cohere": "cohere",
    "perplexity": "perplexity",
    "openrouter": "openrouter",
    "together_ai": "together",
    "fireworks": "fireworks",
}

FALLBACK: dict[str, tuple[str, ...]] = {
    "azure.ai.openai": ("openai",),
    "azure.ai.inference": ("openai",),
}


SELF_HOSTED = frozenset({"ollama", "vllm"})
"""Self-hosted servers: nobody's list price applies; only a config override prices them."""


def candidates(provider: str) -> tuple[str | None, ...]:
    """genai-prices provider ids to try, in order. `None` lets genai-prices infer the provider from the model."""
    if provider in SELF_HOSTED:
        return ()
    first = GENAI_PRICES_PROVIDER.get(provider)
    if first is None:
        # Self-hosted (ollama, vllm) or unknown: a price can only come from a config override or model inference.
        return (None,)
    return (first, *FALLBACK.get(provider, ()))
