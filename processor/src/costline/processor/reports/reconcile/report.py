"""What a provider's own reports say, normalised: token usage per day × model × provider identity, and billed cost
per day × billing scope. Both providers' parsers (`providers/`) produce these; `compare` consumes them.

Token types follow the ledger's billing semantics (`model.LLMCall`): `uncached_input`, `cache_read`,
`cache_write` and `output` are disjoint, so they sum to what was billed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

TOKEN_TYPES = ("uncached_input", "cache_read", "cache_write", "output")
"""The four token types compared, in the ledger's billing semantics."""

IDENTITY_KINDS = {"openai": ("api_key_id", "project_id"), "anthropic": ("api_key_id", "workspace_id")}
"""Per provider, the identities its usage report is grouped by, most specific first: a row is attributed by its
API key when that key is mapped to an owner, else by its project (OpenAI) or workspace (Anthropic)."""

PROVIDERS = tuple(IDENTITY_KINDS)


class ReportError(ValueError):
    """A provider report that cannot be used as it is: the message names where (file or page, bucket, field) and
    what is wrong. Nothing is written when one is raised."""


@dataclass(frozen=True, slots=True)
class UsageRow:
    """One result of a usage report bucket: tokens of one model under one set of provider identities on one day."""

    day: date
    model: str
    identities: tuple[tuple[str, str], ...]
    """(kind, id) pairs the report grouped by, e.g. (("api_key_id", "key_abc"), ("project_id", "proj_1"))."""
    uncached_input: int
    cache_read: int
    cache_write: int
    output: int
    requests: int | None = None
    """OpenAI reports `num_model_requests`; Anthropic's usage report has no request count."""

    def identity(self, kind: str) -> str | None:
        return dict(self.identities).get(kind)


@dataclass(frozen=True, slots=True)
class BilledRow:
    """One result of a cost report bucket: USD billed for one scope (project or workspace; "" = not grouped or the
    default workspace) on one day. Exact: parsed from the report's decimal text, never through a float."""

    day: date
    scope_kind: str
    scope_id: str
    amount_usd: Decimal
    description: str = ""
