"""A call's price context: the service tier and processing mode genai-prices prices it by (`price_context`).

Providers spell the standard tier several ways (OpenAI `default`/`auto`, Anthropic `standard`, Bedrock `on_demand`):
all are "" here, so one standard call is one ledger row whatever the provider said. Anthropic reports a batch call's
tier as `batch`: that is processing, not a tier.
"""

from __future__ import annotations

from costline.processor.model import MAX_LABEL_LENGTH

_STANDARD_TIERS = frozenset({"", "default", "auto", "standard", "standard_only", "on_demand", "on-demand"})
_BATCH = "batch"


def price_context(service_tier: str | None, processing: str | None) -> tuple[str, str]:
    """(service tier, processing) as the ledger keeps them: lower-case, "" for standard and online."""
    tier = (service_tier or "").strip().lower()[:MAX_LABEL_LENGTH]
    mode = (processing or "").strip().lower()[:MAX_LABEL_LENGTH]
    if tier == _BATCH:
        tier, mode = "", _BATCH
    if tier in _STANDARD_TIERS:
        tier = ""
    if mode in ("online", "sync", "realtime", "interactive"):
        mode = ""
    return tier, mode
