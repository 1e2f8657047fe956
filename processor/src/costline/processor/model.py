"""The processor's data model: what `normalize` makes of a span, who it belongs to, and what the ledger stores.

The top of the processor's layers: the rest imports it; of the processor it imports only `units`.

* `LLMCall` — one call as normalised from a span. Token fields use *billing* semantics, which differ from the
  semconv attributes on purpose: `input_tokens` here is **uncached** input, so that the five token types are
  disjoint and sum to the total.
* `OWNER_DIMENSIONS` — the owner schema: every owner dimension once, with the span attribute that declares it,
  whether (and by default) it is a metric label, and its part in budgets. `Owner`, the ledger's columns, `group_by`,
  the metric labels, the budget scopes and forwarding's enrichment are derived from it.
* `Entry` — a call priced and attributed: what the ledger stores, the series count and forwarding enriches.
* `call_keys` — the identity of a call (when two spans are one call), shared by per-batch dedupe (`normalize`) and
  the ledger (across batches and processors). It lives here, beside the call it is a pure function of, because
  both of those layers use it and the ledger may not import `normalize`.
* `Counts` and `counts_of` — the one counter vector: the named slots every call adds to an hourly ledger row and
  to an in-memory series.
"""

from __future__ import annotations

from collections import namedtuple
from dataclasses import dataclass, field
from enum import IntEnum
from hashlib import blake2b

from costline import attributes as A
from costline.processor.units import NS_PER_S

MAX_LABEL_LENGTH = 255
"""The longest label value (provider, model, operation, service, owner values) a call carries into the series and the
ledger, in characters: the ledger's column width. Longer values are not names anyone typed."""

MAX_TOKENS = 1_000_000_000_000
"""No token count of one call comes anywhere near this; larger is impossible, not just implausible (the configurable
`limits.max_tokens_per_call` is the plausibility bound)."""


@dataclass(slots=True)
class LLMCall:
    """One LLM API call, as normalised from one span of any supported instrumentation."""

    provider: str
    """Semconv provider name (`openai`, `anthropic`, `azure.ai.openai`, ...); `unknown` when no source says."""
    request_model: str | None
    response_model: str | None
    operation: str
    """`chat`, `text_completion`, `embeddings`, ... (semconv `gen_ai.operation.name`)."""

    input_tokens: int = 0
    """Uncached input tokens: semconv input minus cache read minus cache write. Never negative."""
    output_tokens: int = 0
    """All output tokens, including reasoning (reasoning is billed at the output rate)."""
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    """Subset of `output_tokens`; reported separately, never billed twice."""
    has_usage: bool = False
    """True when the span reported any token count; a failed call without usage bills nothing."""

    error_type: str | None = None
    """`error.type`, or `_OTHER` when the span status is ERROR without one. None on success."""
    time_to_first_token_s: float | None = None
    stream: bool = False
    retries: int = 0
    """Retries the SDK made for this call (`http.request.resend_count`; the first attempt is not one)."""

    response_id: str | None = None
    trace_id: bytes = b""
    span_id: bytes = b""
    parent_span_id: bytes = b""
    start_time_unix_nano: int = 0
    end_time_unix_nano: int = 0
    source: str = "semconv"
    """Which instrumentation produced the span (`costline`, `otel-genai`, `anthropic-sdk`, `openllmetry`, `openlit`,
    `openinference`, `semconv`): the key of the row in the normalisation table that matched."""
    server_address: str | None = None

    owner: dict[str, str] = field(default_factory=dict)
    """Ownership keys found on the span then the resource (`costline.team` -> `search`), span winning per key."""
    api_key_fingerprint: str | None = None
    environment: str | None = None
    service_name: str | None = None

    adjusted: tuple[tuple[str, str], ...] = ()
    """(field, action) for each value normalisation had to bound (`normalize.bounds`): `truncated` or `sanitised`
    label values, `clamped` token counts. Counted, so that no bound is applied silently."""

    @property
    def model(self) -> str | None:
        """The model to price: the response model (what was billed) when present, else the requested one."""
        return self.response_model or self.request_model

    @property
    def total_input_tokens(self) -> int:
        return self.input_tokens + self.cache_read_tokens + self.cache_write_tokens


# --- who a call belongs to -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OwnerDimension:
    """One dimension of ownership. Its `name` is the `Owner` field, the ledger column, the `group_by` value and the
    metric label alike."""

    name: str
    attribute: str | None
    """The `costline.*` span attribute that declares it, which forwarding sets to the resolved value; None when it
    comes from elsewhere (`key` from the API-key fingerprint, `environment` from the resource)."""
    metric_label: bool | None
    """None: always a metric label. True or False: an optional label (`metrics.<name>_label`), on or off by default.
    Optional ones multiply series, so the per-person and per-tenant ones are off unless asked for."""
    hierarchy: bool = False
    """Part of the org → team → user → key chain (in this order): a budget at one level covers those below it."""
    budget: bool = False
    """Budgets can be set for it (`costline_budget_*` carry it as a label)."""


OWNER_DIMENSIONS = (
    OwnerDimension("org", A.COSTLINE_ORG, None, hierarchy=True, budget=True),
    OwnerDimension("team", A.COSTLINE_TEAM, None, hierarchy=True, budget=True),
    OwnerDimension("project", A.COSTLINE_PROJECT, None, budget=True),
    OwnerDimension("user", A.COSTLINE_USER, False, hierarchy=True, budget=True),
    OwnerDimension("key", None, False, hierarchy=True, budget=True),
    OwnerDimension("feature", A.COSTLINE_FEATURE, True),
    OwnerDimension("cost_center", A.COSTLINE_COST_CENTER, True),
    OwnerDimension("environment", None, True),
    OwnerDimension("customer", A.COSTLINE_CUSTOMER, False),
)
"""The owner schema. A dimension added here reaches the ledger (a column, migrated in place), `group_by`, the
optional metric labels and forwarding; one added to budgets needs config for it too."""

OWNER_FIELDS = tuple(d.name for d in OWNER_DIMENSIONS)
"""`Owner` fields and the ledger's owner columns, in this order."""
BASE_OWNER_LABELS = tuple(d.name for d in OWNER_DIMENSIONS if d.metric_label is None)
OPTIONAL_OWNER_LABELS = {d.name: d.metric_label for d in OWNER_DIMENSIONS if d.metric_label is not None}
"""Optional owner labels -> on by default."""
HIERARCHY = tuple(d.name for d in OWNER_DIMENSIONS if d.hierarchy)
BUDGET_LABELS = tuple(d.name for d in OWNER_DIMENSIONS if d.budget)
BUDGET_SCOPES = {
    **{name: HIERARCHY[: i + 1] for i, name in enumerate(HIERARCHY)},
    **{d.name: (d.name,) for d in OWNER_DIMENSIONS if d.budget and not d.hierarchy},
}
"""Budget scope -> the owner columns that identify one budget's owner: a level of the hierarchy is named with its
parents (team `search` of org `acme`), any other budgeted dimension by itself."""
OWNER_ATTRIBUTES = {d.name: d.attribute for d in OWNER_DIMENSIONS if d.attribute is not None}
"""Dimension -> the span attribute that declares it."""

CALL_DIMENSIONS = ("provider", "model", "operation", "service")
"""What a ledger row keeps of the call besides its owner and hour."""
CALL_LABELS = ("provider", "model", "operation")
"""The call's metric labels, ahead of the owner labels."""
TIME_GROUPS = ("hour", "day", "month")
GROUP_BY = (*OWNER_FIELDS, *CALL_DIMENSIONS, *TIME_GROUPS)
"""What usage reports can be grouped by (the API's and `costline usage`'s `group_by`): every dimension of a ledger
row, and the hour, day or month (in the configured time zone)."""

Owner = namedtuple("Owner", OWNER_FIELDS, defaults=("",) * len(OWNER_FIELDS))  # type: ignore[misc]
Owner.__doc__ = """A resolved owner, one field per `OWNER_DIMENSIONS` entry ("" when unknown). A named tuple: the
ledger and the series key on it per call, and a tuple hashes and unpacks (`(*owner, ...)`) in C."""


# --- a priced, attributed call ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class Entry:
    """One priced, attributed call: what the ledger stores and the series count."""

    call: LLMCall
    owner: Owner
    cost_pico: int | None
    """Pico-dollars (`units`); None when the model could not be priced (never $0)."""
    keys: tuple[bytes, ...]
    """The call's identity keys (`call_keys`): the ledger looks them up and writes them, in the same transaction as
    its cost."""
    conflict: bool = False
    """The declared owner disagreed with the registered key's owner (the key won)."""


class Counts(IntEnum):
    """The slots of the one counter vector every call adds to: an hourly ledger row (a column per slot, named
    `name.lower()`) and an in-memory series alike. In the ledger's column order, which is also the order of the
    usage report's columns."""

    REQUESTS = 0
    ERRORS = 1
    UNPRICED_REQUESTS = 2
    """Calls whose model could not be priced (their cost is unknown, never $0)."""
    INPUT_TOKENS = 3
    """Uncached input."""
    OUTPUT_TOKENS = 4
    CACHE_READ_TOKENS = 5
    CACHE_WRITE_TOKENS = 6
    REASONING_TOKENS = 7
    UNPRICED_INPUT_TOKENS = 8
    """The tokens of unpriced calls (a subset of the totals), kept so that a reprice can bill them once priced."""
    UNPRICED_OUTPUT_TOKENS = 9
    UNPRICED_CACHE_READ_TOKENS = 10
    UNPRICED_CACHE_WRITE_TOKENS = 11
    COST_PICO_USD = 12
    """Priced cost in pico-dollars: integer sums stay exact however many calls are added."""
    RETRIES = 13
    """Retries the SDKs made before their calls' answers."""

    @property
    def column(self) -> str:
        return self.name.lower()


COUNT_COLUMNS = tuple(c.column for c in Counts)
TOKEN_TYPES = ("input", "output", "cache_read", "cache_write", "reasoning")
TOKEN_COUNTS = (Counts.INPUT_TOKENS, Counts.OUTPUT_TOKENS, Counts.CACHE_READ_TOKENS, Counts.CACHE_WRITE_TOKENS,
                Counts.REASONING_TOKENS)
"""The token slots, in `TOKEN_TYPES` order (the `type` label of `costline_tokens_total`)."""
UNPRICED_TOKEN_COUNTS = {"input": Counts.UNPRICED_INPUT_TOKENS, "output": Counts.UNPRICED_OUTPUT_TOKENS,
                         "cache_read": Counts.UNPRICED_CACHE_READ_TOKENS,
                         "cache_write": Counts.UNPRICED_CACHE_WRITE_TOKENS}
"""Token type -> the slot of its tokens still waiting for a price."""


def counts_of(call: LLMCall, cost_pico: int | None) -> tuple[int, ...]:
    """What one call adds to each `Counts` slot, in slot order (`cost_pico` None: unpriced)."""
    inp, out, read, write = call.input_tokens, call.output_tokens, call.cache_read_tokens, call.cache_write_tokens
    error = 0 if call.error_type is None else 1
    if cost_pico is None:
        return (1, error, 1, inp, out, read, write, call.reasoning_tokens, inp, out, read, write, 0, call.retries)
    return (1, error, 0, inp, out, read, write, call.reasoning_tokens, 0, 0, 0, 0, cost_pico, call.retries)


# --- the identity of a call ------------------------------------------------------------------------------------------

# `call_keys`: the identity of a call, shared by `dedupe_calls` (within a batch) and the ledger (across batches and
# processors), so that both tell "the same call described twice" from "two calls" by one rule.
#
# * **A call with a response id** is that response within its trace, *for calls that agree on usage and start within
#   `RESPONSE_WINDOW_NS` of each other*. A response id alone is no proof: OpenAI-compatible servers reuse ids
#   (Ollama answers `chatcmpl-<0..999>`, test doubles a constant), so two calls of a long agent trace can share one.
#   Two spans describing one call (two instrumentations on one SDK) report the same usage and start within
#   milliseconds; two calls that happen to share an id differ in usage or start later. The time test is in keys, so
#   that the ledger can apply it with its unique index: a call is written under its start's window and the next
#   one, and looks those two up, so two starts less than a window apart always share a key and starts two windows
#   or more apart never do. Sharing a *written* key is what makes two processors billing the two spans of one call
#   at the same moment conflict in the database (the second one's insert waits for the first's commit, then finds
#   the key taken); a key written under the start's window alone and three looked up would let both commit.
# * **A call with trace and span ids but no response id** is its span: an exporter's retry resends the same ids.
# * **A call without a trace id or span id** (not valid OTLP; hand-written JSON senders omit them) is its content:
#   start and end time, provider, models, operation, tokens, response id, owner and service. A retry resends the same
#   content; two calls differ at least in their nanosecond times. Without a start time nothing tells a retry from a
#   new call, so such a span has no key: every copy is billed (billing twice is visible, dropping a call would not be).
#
# Every key is a pure function of the span, so a retried batch gets the same keys on any processor that shares the
# ledger, whatever else its batch holds.

RESPONSE_WINDOW_NS = NS_PER_S
"""Spans of one call start within milliseconds of each other; distinct calls that reuse a response id seconds
apart (each call takes that long). One second: starts < 1 s apart are one call, >= 2 s apart are two."""

KEY_BYTES = 16
"""Every identity key is 16 bytes: its call's start second (4 bytes, big-endian) and a 12-byte digest of the rest of
its identity. Short fixed-size index entries (the text keys they replace were ~80 characters), and time first: the
keys a batch writes land together at the recent end of the ledger's key index (a few pages to write and sync per
batch), where random keys dirty one page per key once the index is large."""
_SECOND_BYTES = 4
_LAST_SECOND = 2 ** (8 * _SECOND_BYTES) - 2  # unsigned seconds until 2106; its neighbour after must fit too

_MAX_RESPONSE_ID_IN_KEY = 100
"""Response ids are far shorter in practice; a longer one is cut (as the text keys of earlier releases were)."""


def call_keys(call: LLMCall) -> tuple[bytes, ...]:
    """The call's identity: the keys it is remembered under; it is a call already billed when any of its keys is a
    billed call's key. A response's keys are its digest under its start second and under the second after
    (`RESPONSE_WINDOW_NS`); every other call has one key. Keys are `KEY_BYTES` long."""
    # Clamped, so that a nonsense start time (none, or past 2106) still makes keys: such a call's seconds meet a
    # little more widely.
    second = min(max(call.start_time_unix_nano // RESPONSE_WINDOW_NS, 1), _LAST_SECOND)
    trace = call.trace_id
    if trace and call.response_id:
        usage = f"{call.total_input_tokens}.{call.output_tokens}" if call.has_usage else "-"
        digest = _digest(f"r:{trace.hex()}:{call.response_id[:_MAX_RESPONSE_ID_IN_KEY]}:{usage}".encode())
        return _key(second, digest), _key(second + 1, digest)
    if trace and call.span_id:
        return (_key(second, _digest(b"s:" + trace + call.span_id)),)
    if call.start_time_unix_nano:
        return (_key(second, _digest(b"c:" + _content(call))),)
    return ()


def _digest(identity: bytes) -> bytes:
    return blake2b(identity, digest_size=KEY_BYTES - _SECOND_BYTES).digest()


def _key(second: int, digest: bytes) -> bytes:
    return second.to_bytes(_SECOND_BYTES, "big") + digest


def text_call_keys(call: LLMCall) -> tuple[str, ...]:
    """The same identity as the text keys releases before 16-byte keys wrote (`r:<trace>:<response>:<usage>:<second>`,
    `s:<trace><span>`, `c:<content digest>`), in `call_keys`' order: the ledger looks them up in its table of text
    keys while that table may still hold keys within the retention, so a retry straddling the upgrade is met."""
    trace = call.trace_id
    if trace and call.response_id:
        usage = f"{call.total_input_tokens}.{call.output_tokens}" if call.has_usage else "-"
        prefix = f"r:{trace.hex()}:{call.response_id[:_MAX_RESPONSE_ID_IN_KEY]}:{usage}:"
        window = call.start_time_unix_nano // RESPONSE_WINDOW_NS
        return (f"{prefix}{window}", f"{prefix}{window - 1}", f"{prefix}{window + 1}")
    if trace and call.span_id:
        return (f"s:{trace.hex()}{call.span_id.hex()}",)
    if call.start_time_unix_nano:
        return (f"c:{blake2b(_content(call), digest_size=20).hexdigest()}",)
    return ()


def _content(call: LLMCall) -> bytes:
    content = (
        call.trace_id.hex(), call.span_id.hex(), call.start_time_unix_nano, call.end_time_unix_nano, call.provider,
        call.request_model, call.response_model, call.operation, call.input_tokens, call.output_tokens,
        call.cache_read_tokens, call.cache_write_tokens, call.reasoning_tokens, call.response_id,
        sorted(call.owner.items()), call.api_key_fingerprint, call.service_name, call.source,
    )
    return repr(content).encode()


@dataclass(slots=True)
class Outcome:
    """A business outcome a span reports (`costline.outcome(name)` in the app), before its owner is resolved."""

    name: str
    count: int
    owner: dict[str, str] = field(default_factory=dict)
    environment: str | None = None
    start_time_unix_nano: int = 0
    key: str = ""
    """Trace id and span id, hex: the span's identity for deduplication."""
