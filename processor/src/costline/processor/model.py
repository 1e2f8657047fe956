"""The processor's data model: what `normalize` makes of a span, who it belongs to, and what the ledger stores.

The top of the processor's layers: the rest imports it; of the processor it imports only `units`.

* `LLMCall` — one call as normalised from a span. Token fields use *billing* semantics, which differ from the
  semconv attributes on purpose: `input_tokens` here is **uncached** input, so that the five token types are
  disjoint and sum to the total.
* `OWNER_DIMENSIONS` — the owner schema: every owner dimension once, with the span attribute that declares it,
  whether (and by default) it is a metric label, and its part in budgets. `Owner`, the ledger's columns, `group_by`,
  the metric labels, the budget scopes and forwarding's enrichment are derived from it.
* `Entry` — a call priced and attributed: what the ledger stores, the series count and forwarding enriches.
* `call_keys`, `call_families` — the identity of a call (when two spans are one call), shared by per-batch dedupe (`normalize`) and
  the ledger (across batches and processors). It lives here, beside the call it is a pure function of, because
  both of those layers use it and the ledger may not import `normalize`.
* `Counts` and `counts_of` — the one counter vector: the named slots every call adds to an hourly ledger row and
  to an in-memory series.
"""

from __future__ import annotations

from collections import namedtuple
from dataclasses import dataclass, field
from decimal import Decimal
from enum import IntEnum
from functools import lru_cache
from hashlib import blake2b

from costline import attributes as A
from costline.processor.units import NS_PER_S, usd_to_pico

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
    cache_write_1h_tokens: int = 0
    """Of `cache_write_tokens`, those written with a one-hour lifetime (priced at their own rate)."""
    input_audio_tokens: int = 0
    """Of `input_tokens` (uncached), audio; likewise image and video. The rest of the uncached input is text."""
    input_image_tokens: int = 0
    input_video_tokens: int = 0
    output_audio_tokens: int = 0
    """Of `output_tokens`, audio; likewise image and video. The rest of the output is text (reasoning included)."""
    output_image_tokens: int = 0
    output_video_tokens: int = 0
    web_searches: int = 0
    """Server-side web searches the provider ran for the call (billed per search)."""
    code_executions: int = 0
    """Server-side code executions billed per run."""
    pairs_by_usage: bool = False
    """Its source records no response id (`Source.pairs_by_usage`): without one, the call is paired with another
    source's span of it by usage (`call_families`)."""
    has_usage: bool = False
    """True when the span reported any token count; a failed call without usage bills nothing, a successful one is
    counted as *usage missing* (`Counts.USAGE_MISSING_REQUESTS`), never silently $0."""

    service_tier: str = ""
    """The tier the provider billed at (`flex`, `priority`, ...); "" for the standard tier. A price context."""
    processing: str = ""
    """`batch` for a call run through a batch API; "" for an online call. A price context."""
    reported_cost_usd: float | None = None
    """The cost the provider, a gateway or the instrumentation computed for the call, when the span carries one:
    kept beside Costline's price (which stays the bill), compared, never billed."""
    conversation_id: str | None = None
    """`gen_ai.conversation.id`: for cost per conversation (never a metric label)."""
    session_id: str | None = None
    """`session.id`: for cost per session (never a metric label)."""

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
    sibling: int = 0
    """Of this source's spans in one batch that share trace, response id and usage and start within a second of
    each other, this one's place (`dedupe.dedupe_calls` numbers them; 0 for the usual lone span): distinct calls a
    server answered with one id are told apart by it in `call_keys` (`model.py`, "the identity of a call")."""
    server_address: str | None = None

    owner: dict[str, str] = field(default_factory=dict)
    """Ownership keys found on the span then the resource (`costline.team` -> `search`), span winning per key."""
    api_key_fingerprint: str | None = None
    environment: str | None = None
    service_name: str | None = None

    adjusted: tuple[tuple[str, str], ...] = ()
    """(field, action) for each value normalisation had to bound (`normalize.bounds`): `truncated` or `sanitised`
    label values, `clamped` token counts. Counted, so that no bound is applied silently."""
    rare: bool = False
    """True when any unit beyond the five token types (`BILLABLE_UNITS[5:]`) or a reported cost may be set: whoever
    sets those sets this too (normalisation's `_rare` step). The series' hot path reads those fields only then, one
    test per call where reading nine fields measured a sixth of its time."""

    @property
    def model(self) -> str | None:
        """The model to price: the response model (what was billed) when present, else the requested one."""
        return self.response_model or self.request_model

    @property
    def total_input_tokens(self) -> int:
        return self.input_tokens + self.cache_read_tokens + self.cache_write_tokens

    @property
    def usage_missing(self) -> bool:
        """A successful call whose span reported no usage: it cost something nobody can say (counted, flagged)."""
        return not self.has_usage and self.error_type is None


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
    OwnerDimension("feature", A.COSTLINE_FEATURE, True, budget=True),
    OwnerDimension("cost_center", A.COSTLINE_COST_CENTER, True),
    OwnerDimension("environment", None, True, budget=True),
    OwnerDimension("customer", A.COSTLINE_CUSTOMER, False, budget=True),
)
"""The owner schema. A dimension added here reaches the ledger (a column, migrated in place), `group_by`, the
optional metric labels and forwarding; one added to budgets needs config for it too."""

OWNER_FIELDS = tuple(d.name for d in OWNER_DIMENSIONS)
"""`Owner` fields and the ledger's owner columns, in this order."""
BASE_OWNER_LABELS = tuple(d.name for d in OWNER_DIMENSIONS if d.metric_label is None)
OPTIONAL_OWNER_LABELS = {d.name: d.metric_label for d in OWNER_DIMENSIONS if d.metric_label is not None}
"""Optional owner labels -> on by default."""
HIERARCHY = tuple(d.name for d in OWNER_DIMENSIONS if d.hierarchy)
BUDGET_CALL_SCOPES = ("model",)
"""Call dimensions (`CALL_DIMENSIONS`, ledger columns) a budget can be set for besides the owner's: a model's spend
across every owner."""
BUDGET_LABELS = (*(d.name for d in OWNER_DIMENSIONS if d.budget), *BUDGET_CALL_SCOPES)
BUDGET_SCOPES = {
    **{name: HIERARCHY[: i + 1] for i, name in enumerate(HIERARCHY)},
    **{d.name: (d.name,) for d in OWNER_DIMENSIONS if d.budget and not d.hierarchy},
    **{name: (name,) for name in BUDGET_CALL_SCOPES},
}
"""Budget scope -> the ledger columns that identify one budget's owner: a level of the hierarchy is named with its
parents (team `search` of org `acme`), any other budgeted dimension by itself. The one list of scope names: the
config's `budgets:` section, the budgets report, the metrics' labels and the guard's document derive from it."""
OWNER_ATTRIBUTES = {d.name: d.attribute for d in OWNER_DIMENSIONS if d.attribute is not None}
"""Dimension -> the span attribute that declares it."""

CALL_DIMENSIONS = ("provider", "model", "operation", "service", "service_tier", "processing")
"""What a ledger row keeps of the call besides its owner and hour: `service_tier` and `processing` are the call's price
context (`LLMCall`), "" for the standard tier and online processing."""
CALL_LABELS = ("provider", "model", "operation")
"""The call's metric labels, ahead of the owner labels."""
RUN_KINDS = ("trace", "conversation", "session")
"""What groups calls into a run, for cost per run (`ledger.runs`): the trace id (an agent run), `conversation_id`,
`session_id`. Never metric labels."""
RUN_RETENTION_DAYS = 90
"""How long a run is kept after its last call unless the config says (`runs.retention_days`)."""

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
    unpriced_units: tuple[str, ...] = ()
    """Of a priced call, the units (`BillableUnit.name`) its model has no price for: billed nothing, their counts
    kept in their unpriced slots for a reprice (`pricing.Rates.price`)."""


class Counts(IntEnum):
    """The slots of the one counter vector every call adds to: an hourly ledger row (a column per slot, named
    `name.lower()`) and an in-memory series alike. In the ledger's column order, which is also the order of the
    usage report's columns. A slot added later goes at the end (the ledger adds its column in place)."""

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
    CACHE_WRITE_1H_TOKENS = 14
    """Of the cache writes, those with a one-hour lifetime."""
    INPUT_AUDIO_TOKENS = 15
    """Of the uncached input, audio (likewise image, video); of the output, audio, image, video."""
    INPUT_IMAGE_TOKENS = 16
    INPUT_VIDEO_TOKENS = 17
    OUTPUT_AUDIO_TOKENS = 18
    OUTPUT_IMAGE_TOKENS = 19
    OUTPUT_VIDEO_TOKENS = 20
    WEB_SEARCHES = 21
    CODE_EXECUTIONS = 22
    UNPRICED_CACHE_WRITE_1H_TOKENS = 23
    UNPRICED_INPUT_AUDIO_TOKENS = 24
    UNPRICED_INPUT_IMAGE_TOKENS = 25
    UNPRICED_INPUT_VIDEO_TOKENS = 26
    UNPRICED_OUTPUT_AUDIO_TOKENS = 27
    UNPRICED_OUTPUT_IMAGE_TOKENS = 28
    UNPRICED_OUTPUT_VIDEO_TOKENS = 29
    UNPRICED_WEB_SEARCHES = 30
    UNPRICED_CODE_EXECUTIONS = 31
    USAGE_MISSING_REQUESTS = 32
    """Successful calls whose span reported no usage (`LLMCall.usage_missing`): their cost is unknown, never $0."""
    REPORTED_COST_REQUESTS = 33
    """Calls whose span carried a cost computed by someone else (provider, gateway, instrumentation)."""
    REPORTED_COST_PICO_USD = 34
    """The sum of those reported costs (pico-dollars), beside..."""
    PRICED_COST_OF_REPORTED_PICO_USD = 35
    """...Costline's price of the same calls (0 for those it could not price)."""
    COST_DISAGREEMENTS = 36
    """Calls whose reported cost and Costline's price differ by more than `COST_DISAGREEMENT` (or that Costline could
    not price at all)."""
    REQUEST_MILLISECONDS = 37
    """The calls' durations (end - start of the span, rounded to the millisecond; 0 for a call without both times):
    what a self-hosted fleet's cost is split by with `allocate_by: request_seconds`."""

    @property
    def column(self) -> str:
        return self.name.lower()


COST_DISAGREEMENT = 0.01
"""A reported cost further than this fraction from Costline's price is a disagreement (counted, alertable)."""


@dataclass(frozen=True, slots=True)
class BillableUnit:
    """One billable unit of a call: where it lives on `LLMCall`, its counter slots, and what genai-prices calls it.
    `BILLABLE_UNITS` is the one list: pricing, the ledger, the usage report and the metrics derive from it."""

    name: str
    """The unit's name: the usage report's column stem and the `type` label of `costline_tokens_total`."""
    attribute: str
    """The `LLMCall` attribute holding the call's count."""
    slot: Counts
    unpriced_slot: Counts | None
    """Where the count of an unpriced call also goes (so that a reprice can bill it); None: not billed alone."""
    price_key: str | None
    """genai-prices' usage key the unit is priced as (`genai_prices.units`), None for a unit that is only reported
    (reasoning: billed as output)."""
    part_of: str | None = None
    """The unit whose count includes this one (audio input is part of `input`): priced out of it, never twice."""
    per: str = "token"
    """`token` or `request` (web searches, code executions are counted per call made)."""


BILLABLE_UNITS: tuple[BillableUnit, ...] = (
    BillableUnit("input", "input_tokens", Counts.INPUT_TOKENS, Counts.UNPRICED_INPUT_TOKENS, "input_tokens"),
    BillableUnit("output", "output_tokens", Counts.OUTPUT_TOKENS, Counts.UNPRICED_OUTPUT_TOKENS, "output_tokens"),
    BillableUnit("cache_read", "cache_read_tokens", Counts.CACHE_READ_TOKENS, Counts.UNPRICED_CACHE_READ_TOKENS,
                 "cache_read_tokens"),
    BillableUnit("cache_write", "cache_write_tokens", Counts.CACHE_WRITE_TOKENS, Counts.UNPRICED_CACHE_WRITE_TOKENS,
                 "cache_write_tokens"),
    BillableUnit("reasoning", "reasoning_tokens", Counts.REASONING_TOKENS, None, None, part_of="output"),
    BillableUnit("cache_write_1h", "cache_write_1h_tokens", Counts.CACHE_WRITE_1H_TOKENS,
                 Counts.UNPRICED_CACHE_WRITE_1H_TOKENS, "cache_write_1h_tokens", part_of="cache_write"),
    BillableUnit("input_audio", "input_audio_tokens", Counts.INPUT_AUDIO_TOKENS, Counts.UNPRICED_INPUT_AUDIO_TOKENS,
                 "input_audio_tokens", part_of="input"),
    BillableUnit("input_image", "input_image_tokens", Counts.INPUT_IMAGE_TOKENS, Counts.UNPRICED_INPUT_IMAGE_TOKENS,
                 "input_image_tokens", part_of="input"),
    BillableUnit("input_video", "input_video_tokens", Counts.INPUT_VIDEO_TOKENS, Counts.UNPRICED_INPUT_VIDEO_TOKENS,
                 "input_video_tokens", part_of="input"),
    BillableUnit("output_audio", "output_audio_tokens", Counts.OUTPUT_AUDIO_TOKENS,
                 Counts.UNPRICED_OUTPUT_AUDIO_TOKENS, "output_audio_tokens", part_of="output"),
    BillableUnit("output_image", "output_image_tokens", Counts.OUTPUT_IMAGE_TOKENS,
                 Counts.UNPRICED_OUTPUT_IMAGE_TOKENS, "output_image_tokens", part_of="output"),
    BillableUnit("output_video", "output_video_tokens", Counts.OUTPUT_VIDEO_TOKENS,
                 Counts.UNPRICED_OUTPUT_VIDEO_TOKENS, "output_video_tokens", part_of="output"),
    BillableUnit("web_search", "web_searches", Counts.WEB_SEARCHES, Counts.UNPRICED_WEB_SEARCHES, "web_searches",
                 per="request"),
    BillableUnit("code_execution", "code_executions", Counts.CODE_EXECUTIONS, Counts.UNPRICED_CODE_EXECUTIONS,
                 "code_executions", per="request"),
)
"""Every billable unit, in `Counts` order. The first five are the token types every release had."""
UNITS_BY_NAME = {unit.name: unit for unit in BILLABLE_UNITS}

COUNT_COLUMNS = tuple(c.column for c in Counts)
TOKEN_TYPES = ("input", "output", "cache_read", "cache_write", "reasoning")
TOKEN_COUNTS = (Counts.INPUT_TOKENS, Counts.OUTPUT_TOKENS, Counts.CACHE_READ_TOKENS, Counts.CACHE_WRITE_TOKENS,
                Counts.REASONING_TOKENS)
"""The token slots, in `TOKEN_TYPES` order (the `type` label of `costline_tokens_total`)."""
UNPRICED_TOKEN_COUNTS = {unit.name: unit.unpriced_slot for unit in BILLABLE_UNITS if unit.unpriced_slot is not None}
"""Unit -> the slot of its count still waiting for a price."""
_EXTRA_UNITS = BILLABLE_UNITS[5:]
_MS_NS = 1_000_000
_HALF_MS_NS = _MS_NS // 2


def counts_of(call: LLMCall, cost_pico: int | None, unpriced_units: tuple[str, ...] = ()) -> tuple[int, ...]:
    """What one call adds to each `Counts` slot, in slot order (`cost_pico` None: unpriced; `unpriced_units`: of a
    priced call, the units its model has no price for, whose counts also go to their unpriced slots)."""
    inp, out, read, write = call.input_tokens, call.output_tokens, call.cache_read_tokens, call.cache_write_tokens
    error = 0 if call.error_type is None else 1
    extra = (call.cache_write_1h_tokens, call.input_audio_tokens, call.input_image_tokens, call.input_video_tokens,
             call.output_audio_tokens, call.output_image_tokens, call.output_video_tokens, call.web_searches,
             call.code_executions)
    missing = 1 if not call.has_usage and error == 0 else 0
    # The duration: two reads and a subtraction; a span missing either time (or ending before it starts) has none.
    start, end = call.start_time_unix_nano, call.end_time_unix_nano
    ms = (end - start + _HALF_MS_NS) // _MS_NS if start and end > start else 0
    reported = call.reported_cost_usd
    if reported is None:
        tail: tuple[int, ...] = (missing, 0, 0, 0, 0, ms)
    else:
        reported_pico = usd_to_pico(Decimal(repr(reported)))  # the float's shortest decimal form
        priced = cost_pico or 0
        disagree = cost_pico is None or abs(reported_pico - priced) > COST_DISAGREEMENT * max(abs(priced), 1)
        tail = (missing, 1, reported_pico, priced, 1 if disagree else 0, ms)
    if cost_pico is None:
        return (1, error, 1, inp, out, read, write, call.reasoning_tokens, inp, out, read, write, 0, call.retries,
                *extra, *extra, *tail)
    if unpriced_units:
        counts = [1, error, 0, inp, out, read, write, call.reasoning_tokens, 0, 0, 0, 0, cost_pico, call.retries,
                  *extra, 0, 0, 0, 0, 0, 0, 0, 0, 0, *tail]
        for name in unpriced_units:
            unit = UNITS_BY_NAME[name]
            counts[unit.unpriced_slot] = counts[unit.slot]  # type: ignore[index]
        return tuple(counts)
    return (1, error, 0, inp, out, read, write, call.reasoning_tokens, 0, 0, 0, 0, cost_pico, call.retries,
            *extra, 0, 0, 0, 0, 0, 0, 0, 0, 0, *tail)


# --- the identity of a call ------------------------------------------------------------------------------------------

# `call_keys` and `call_families`: the identity of a call, shared by `dedupe_calls` (within a batch) and the ledger
# (across batches and processors), so that both tell "the same call described twice" from "two calls" by one rule:
#
# * **A span is one call of its source.** An exporter's retry resends the same trace and span ids: the *span key*
#   (`s:` trace, span) is met, nothing is billed. Two spans of one source with different span ids are two calls,
#   whatever else they share (a server that answers every call with one id, identical usage, the same second: five
#   such spans bill five).
# * **Two sources describing one call** (two instrumentations on one SDK) share a *family* and are paired by their
#   place in it. A family is what the two spans agree on:
#   - `r` (response): trace, response id and usage, starts less than a second apart (`RESPONSE_WINDOW_NS`). A
#     response id alone is no proof: OpenAI-compatible servers reuse ids (Ollama answers `chatcmpl-<0..999>`, test
#     doubles a constant).
#   - `u` (usage, across traces): service, provider, model, operation and the token counts, starts less than a
#     second apart — for spans where one side has no response id (OpenInference's streams sit in another trace than
#     the anthropic SDK's span and record no id). Spans with a response id are matched this way only to spans
#     without one, never to each other.
#   Within a family each source numbers its own spans 0, 1, 2, ... (its *ordinal*: in a batch, by start; across
#   batches, after the ordinals that source already holds there, remembered by *marks* `f:`). Source A's n-th span
#   and source B's n-th span are one call; A's first and A's second are two. The response family's claim of
#   ordinal n is a key both sources write (under the start's second and the next, and looked up under both, so
#   that two starts less than a window apart always share one): two processors billing the two spans of one call at
#   the same moment collide in the ledger's unique index, and the second one's insert finds the key taken. The
#   usage family's claims and every mark are written under the start's second and looked up under it and the
#   seconds beside it; they settle what arrives in turn, not a race.
# * **A call without a trace id or span id** (not valid OTLP; hand-written JSON senders omit them) is its content:
#   start and end time, provider, models, operation, tokens, response id, owner and service. A retry resends the same
#   content; two calls differ at least in their nanosecond times. Without a start time nothing tells a retry from a
#   new call, so such a span has no key: every copy is billed (billing twice is visible, dropping a call would not be).
#
# The span key and the response claims (`call_keys`) are pure functions of the span and its in-batch ordinal, so a
# retried batch gets the same keys on any processor that shares the ledger. The response claim of ordinal 0 is the
# key earlier releases wrote for a response, so a ledger upgraded with calls of the old keys in it meets them.
#
# Failure modes, all needing identical usage within a second: two *different* calls of one service, described by
# two different sources, one of them without a response id, are paired as one (billed once, the other's owner keys
# merged); a source's same-family spans billed at the same moment on two processors take the same ordinal, and
# the second is dropped as a duplicate. Both show as a request count below the provider's.

RESPONSE_WINDOW_NS = NS_PER_S
"""Spans of one call start within milliseconds of each other; distinct calls that reuse a response id seconds
apart (each call takes that long). One second: starts < 1 s apart are one call, >= 2 s apart are two."""

KEY_BYTES = 16
"""Every identity key is 16 bytes: its call's start second (4 bytes, big-endian) and a 12-byte digest of the rest of
its identity. Short fixed-size index entries (the text keys they replace were ~80 characters), and time first: the
keys a batch writes land together at the recent end of the ledger's key index (a few pages to write and sync per
batch), where random keys dirty one page per key once the index is large."""
_SECOND_BYTES = 4
_DIGEST_BYTES = KEY_BYTES - _SECOND_BYTES
_DIGEST_BITS = 8 * _DIGEST_BYTES
_LAST_SECOND = 2 ** (8 * _SECOND_BYTES) - 2  # unsigned seconds until 2106; its neighbour after must fit too

_MAX_RESPONSE_ID_IN_KEY = 100
"""Response ids are far shorter in practice; a longer one is cut (as the text keys of earlier releases were)."""

RESPONSE, USAGE_WITH_ID, USAGE_WITHOUT_ID = b"r", b"ur", b"un"
"""The claim spaces of the families: a span claims its ordinal in one, and is the same call as a span of another
source whose claim of that ordinal it finds in one of its `evidence` spaces."""


@dataclass(frozen=True, slots=True)
class Family:
    """One family a call belongs to (see above): who else may be describing it, and how the ledger pairs them.

    Its keys are derived from one digest of its identity: each claim and mark is that digest XOR a tag of what it
    is (space, ordinal, and for a mark the source), so a span's dozen keys cost one hash, not a dozen. A tag of 0 is
    the response family's first claim: the key earlier releases wrote. Two keys of different families meet only if
    their digests differ by exactly the XOR of their tags: as unlikely as two 96-bit digests meeting."""

    identity: bytes
    """What the spans of one call agree on (trace, response id, usage; or service, provider, model, usage)."""
    source: str
    second: int
    """The call's start second (clamped into the keys' range)."""
    claim: bytes
    """The space its ordinal is claimed in."""
    evidence: tuple[bytes, ...]
    """The spaces where another source's claim of the same ordinal makes this span a duplicate."""
    exclusive: bool
    """Claims are written under the second and the next and collide in the unique index (a race is settled); else
    written under the second alone, a mark, and looked up under the seconds beside it too."""
    digest: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "digest", int.from_bytes(_digest(self.identity), "big"))

    def claim_key(self, space: bytes, ordinal: int, second: int) -> bytes:
        return ((second << _DIGEST_BITS) | (self.digest ^ _tag(b"c", space, ordinal, ""))).to_bytes(KEY_BYTES, "big")

    def claim_windows(self, space: bytes) -> tuple[int, ...]:
        """Where a claim in `space` is looked up (and, for an exclusive one, written)."""
        s = self.second
        return (s, s + 1) if space == RESPONSE else (s - 1, s, s + 1)

    def mark_key(self, ordinal: int, second: int, space: bytes | None = None) -> bytes:
        """Its source holds `ordinal` in this family's claim space, or in `space` (it claimed it, or found its other
        span). A claim in an evidence space its own source holds is not evidence: it is one of its own calls."""
        tag = _tag(b"f", space or self.claim, ordinal, self.source)
        return ((second << _DIGEST_BITS) | (self.digest ^ tag)).to_bytes(KEY_BYTES, "big")


def is_usage_family(family: Family) -> bool:
    """The usage family (pairing spans of two sources when one of them records no response id)."""
    return family.claim != RESPONSE


def records_no_response_id(family: Family) -> bool:
    """A usage family of a span without a response id (OpenInference, Langfuse...): its ledger pairs usage."""
    return family.claim == USAGE_WITHOUT_ID


@lru_cache(maxsize=4096)
def _tag(kind: bytes, space: bytes, ordinal: int, source: str) -> int:
    if kind == b"c" and space == RESPONSE and ordinal == 0:
        return 0
    return int.from_bytes(_digest(b"%s:%s:%d:%s" % (kind, space, ordinal, source.encode())), "big")


def _second(call: LLMCall) -> int:
    # Clamped, so that a nonsense start time (none, or past 2106) still makes keys: such a call's seconds meet a
    # little more widely.
    return min(max(call.start_time_unix_nano // RESPONSE_WINDOW_NS, 1), _LAST_SECOND)


def _usage_text(call: LLMCall) -> str:
    return f"{call.total_input_tokens}.{call.output_tokens}" if call.has_usage else "-"


def _response_identity(call: LLMCall) -> bytes:
    return f"r:{call.trace_id.hex()}:{call.response_id[:_MAX_RESPONSE_ID_IN_KEY]}:{_usage_text(call)}".encode()


def call_keys(call: LLMCall) -> tuple[bytes, ...]:
    """The call's exclusive identity keys: it is a call already billed when any of them is a billed call's key. A
    span with trace and span ids has its span key; one with a response id also claims its in-batch ordinal
    (`LLMCall.sibling`) of its response family, under its start second and the second after. A span without ids has
    its content key. Keys are `KEY_BYTES` long. The families (`call_families`) take the ledger further."""
    second = _second(call)
    trace = call.trace_id
    keys: tuple[bytes, ...] = ()
    if trace and call.response_id:
        family = Family(_response_identity(call), call.source, second, RESPONSE, (RESPONSE,), True)
        keys = tuple(family.claim_key(RESPONSE, call.sibling, w) for w in (second, second + 1))
    if trace and call.span_id:
        return (*keys, _key(second, _digest(b"s:" + trace + call.span_id)))
    if keys:
        return keys
    if call.start_time_unix_nano:
        return (_key(second, _digest(b"c:" + _content(call))),)
    return ()


def call_families(call: LLMCall) -> tuple[Family, ...]:
    """The families the ledger pairs the call in across batches (see above): its response family when it has a
    trace and a response id, its usage family when it reports usage and has a start time."""
    second = _second(call)
    families: list[Family] = []
    if call.trace_id and call.response_id:
        families.append(Family(_response_identity(call), call.source, second, RESPONSE, (RESPONSE,), True))
    if call.has_usage and call.start_time_unix_nano and call.trace_id and call.span_id:
        usage = (f"u:{call.service_name or ''}:{call.provider}:{call.model or ''}:{call.operation}:"
                 f"{call.input_tokens}.{call.output_tokens}.{call.cache_read_tokens}.{call.cache_write_tokens}")
        if call.response_id:
            families.append(Family(usage.encode(), call.source, second, USAGE_WITH_ID, (USAGE_WITHOUT_ID,), False))
        elif call.pairs_by_usage:  # a source that records no response id: paired by usage (see above)
            families.append(Family(usage.encode(), call.source, second, USAGE_WITHOUT_ID,
                                   (USAGE_WITH_ID, USAGE_WITHOUT_ID), False))
    return tuple(families)


def _digest(identity: bytes) -> bytes:
    return blake2b(identity, digest_size=KEY_BYTES - _SECOND_BYTES).digest()


def _key(second: int, digest: bytes) -> bytes:
    return second.to_bytes(_SECOND_BYTES, "big") + digest


USAGE_FAMILY_ON = _key(0, _digest(b"costline:usage family on"))
"""A reserved key in the call keys (second 0: no call's key is under it, `_second` starts at 1): the ledger has seen
a span of a source that records no response id, so every span's usage family is written and looked up from then on
(`ledger.writer`). Written once, never retired (`USAGE_FAMILY_ON_KEPT_UNTIL`)."""
USAGE_FAMILY_ON_KEPT_UNTIL = 2 ** 62
"""The flag's `billed_at`: past any retention cutoff."""


def text_call_keys(call: LLMCall) -> tuple[str, ...]:
    """The same identity as the text keys releases before 16-byte keys wrote (`r:<trace>:<response>:<usage>:<second>`,
    `s:<trace><span>`, `c:<content digest>`): the ledger looks them up in its table of text keys while that table may
    still hold keys within the retention, so a retry straddling the upgrade is met."""
    trace = call.trace_id
    if trace and call.response_id:
        prefix = f"r:{trace.hex()}:{call.response_id[:_MAX_RESPONSE_ID_IN_KEY]}:{_usage_text(call)}:"
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
