"""Which provider an openai client talks to: Azure by class, OpenAI-compatible servers by host."""

from __future__ import annotations

from functools import lru_cache

from costline import attributes as A

_HOST_SUFFIXES: tuple[tuple[str, str], ...] = (
    ("openrouter.ai", A.PROVIDER_OPENROUTER),
    ("groq.com", A.PROVIDER_GROQ),
    ("together.xyz", A.PROVIDER_TOGETHER),
    ("together.ai", A.PROVIDER_TOGETHER),
    ("deepseek.com", A.PROVIDER_DEEPSEEK),
    ("mistral.ai", A.PROVIDER_MISTRAL),
    ("openai.azure.com", A.PROVIDER_AZURE_OPENAI),
    ("api.openai.com", A.PROVIDER_OPENAI),
)
"""Host suffix -> semconv provider name. A suffix matches the whole host or a dot-separated tail of it."""

_LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1", "0.0.0.0")


@lru_cache(maxsize=256)
def provider_for(host: str, port: int | None, is_azure: bool) -> str:
    """The `gen_ai.provider.name` for a client whose base URL has `host` and `port`."""
    if is_azure:
        return A.PROVIDER_AZURE_OPENAI
    host = host.lower().rstrip(".")
    for suffix, provider in _HOST_SUFFIXES:
        if host == suffix or host.endswith("." + suffix):
            return provider
    # Self-hosted servers: by their conventional service names and default ports.
    first_label = host.split(".", 1)[0]
    if first_label == "ollama" or port == 11434:
        return A.PROVIDER_OLLAMA
    if first_label == "vllm" or (port == 8000 and host in _LOCAL_HOSTS):
        return A.PROVIDER_VLLM
    # Unknown OpenAI-compatible host: `openai`, with `server.address` telling the processor where it went.
    return A.PROVIDER_OPENAI
