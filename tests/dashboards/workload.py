"""A realistic multi-team workload sent as OTLP/HTTP spans, and the processor config it is judged against.

Spans carry the attributes of docs/attributes.md exactly as the instrumentation writes them. The plan is sized so
that, with the config below:

* team `search` spends about $8.7 of its $10 monthly budget (87 %: `CostlineBudgetWarning`, not exceeded);
* team `research` spends about $1.2 of $1 (`CostlineBudgetExceeded`), and calls `acme-llama-70b` on a self-hosted
  vLLM that nobody priced (`CostlineUnpricedModel`);
* team `support` streams (time to first token), hits the prompt cache, and sees rate-limit errors and retries;
* alice's laptop key (registered by fingerprint) carries part of search's traffic, so user and key budgets move;
* team `support`'s calls serve the feature `ticket-triage`, which reports resolved tickets (`costline.outcome()`
  spans), and support is charged per ticket (`chargeback:`): cost per outcome and the chargeback gauges have data.

Calls go out in rounds, a little over a scrape interval apart, so every counter and budget gauge grows between
scrapes (rates and increases see it; a series that only ever had one value shows no increase).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from costline import attributes as a
from costline.fingerprint import fingerprint

ALICE_KEY = "sk-test-alice-laptop-0123456789"
ORG = "acme"
OUTCOME = "ticket_resolved"
SUPPORT_FEATURE = "ticket-triage"

_TODAY = datetime.now(timezone.utc).date()
LAST_MONTH = f"{_TODAY.year - (_TODAY.month == 1)}-{(_TODAY.month - 2) % 12 + 1:02d}"
PROCESSOR_CONFIG = f"""
timezone: UTC
orgs:
  - name: {ORG}
    budget: {{monthly_usd: 100}}
    teams:
      - name: search
        budget: {{monthly_usd: 10}}
        users:
          - name: alice
            budget: {{monthly_usd: 5}}
            keys:
              - {{name: alice-laptop, fingerprint: {fingerprint(ALICE_KEY)}, budget: {{monthly_usd: 4, daily_usd: 2}}}}
      - name: support
        budget: {{monthly_usd: 50}}
      - name: research
        budget: {{monthly_usd: 1}}
projects:
  - {{name: ranking, budget: {{monthly_usd: 20}}}}
prices:
  - {{provider: openai, model: gpt-4o, input_per_mtok: 2.00, cache_read_per_mtok: 1.00, output_per_mtok: 8.00}}
chargeback:
  start: {LAST_MONTH}  # fixed charges from last month on, though the workload's data is this month's
  default: {{markup_pct: 15, platform_fee_usd: 200}}
  teams:
    support: {{per_outcome_usd: {{{OUTCOME}: 0.50}}}}
  shared_costs:  # a fixed split charges search and support last month too: month-to-date has a comparison
    - {{name: platform-infra, monthly_usd: 300, split: {{search: 50, support: 50}}}}
"""


@dataclass(frozen=True)
class Call:
    """One LLM API call as the instrumentation reports it."""

    team: str
    project: str
    provider: str
    model: str
    input_tokens: int = 0  # semconv: all input, cache reads and writes included
    output_tokens: int = 0
    cache_read: int = 0
    cache_write: int = 0
    reasoning: int = 0
    operation: str = a.OPERATION_CHAT
    user: str | None = None
    api_key: str | None = None
    stream_ttft_s: float | None = None
    error_type: str | None = None
    retries: int = 0
    usage: bool = True
    feature: str | None = None

    def attributes(self) -> dict[str, object]:
        attrs: dict[str, object] = {
            a.GEN_AI_OPERATION_NAME: self.operation,
            a.GEN_AI_PROVIDER_NAME: self.provider,
            a.GEN_AI_REQUEST_MODEL: self.model,
            a.GEN_AI_RESPONSE_MODEL: self.model,
            a.GEN_AI_REQUEST_STREAM: self.stream_ttft_s is not None,
            a.COSTLINE_ORG: ORG,
            a.COSTLINE_TEAM: self.team,
            a.COSTLINE_PROJECT: self.project,
        }
        if self.usage:
            attrs[a.GEN_AI_USAGE_INPUT_TOKENS] = self.input_tokens
            attrs[a.GEN_AI_USAGE_OUTPUT_TOKENS] = self.output_tokens
            if self.cache_read:
                attrs[a.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = self.cache_read
            if self.cache_write:
                attrs[a.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS] = self.cache_write
            if self.reasoning:
                attrs[a.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = self.reasoning
        if self.user:
            attrs[a.COSTLINE_USER] = self.user
        if self.feature:
            attrs[a.COSTLINE_FEATURE] = self.feature
        if self.api_key:
            attrs[a.COSTLINE_API_KEY_FINGERPRINT] = fingerprint(self.api_key)
        if self.stream_ttft_s is not None:
            attrs[a.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = self.stream_ttft_s
        if self.retries:
            attrs[a.HTTP_REQUEST_RESEND_COUNT] = self.retries
        if self.error_type:
            attrs[a.ERROR_TYPE] = self.error_type
        return attrs


def _search_round(index: int) -> list[Call]:
    # 6 rounds x 6 gpt-4o calls x $0.24 = $8.64 (60k uncached x $2 + 40k cached x $1 + 10k out x $8 per MTok).
    calls = [
        Call(
            "search",
            "ranking",
            a.PROVIDER_OPENAI,
            "gpt-4o",
            100_000,
            10_000,
            cache_read=40_000,
            user="alice" if i < 2 else None,
            api_key=ALICE_KEY if i < 2 else None,
        )
        for i in range(6)
    ]
    calls.append(
        Call("search", "ranking", a.PROVIDER_OPENAI, "gpt-4o-mini", 8_000, 400, stream_ttft_s=0.2 + index / 20)
    )
    calls.append(
        Call(
            "search",
            "autocomplete",
            a.PROVIDER_OPENAI,
            "text-embedding-3-small",
            20_000,
            0,
            operation=a.OPERATION_EMBEDDINGS,
        )
    )
    return calls


def _support_round(index: int) -> list[Call]:
    calls = [
        Call(
            "support",
            "helpdesk",
            a.PROVIDER_OPENAI,
            "gpt-4o-mini",
            12_000,
            500,
            cache_read=8_000,
            stream_ttft_s=0.3 + i / 10,
            feature=SUPPORT_FEATURE,
        )
        for i in range(4)
    ]
    calls.append(
        Call("support", "helpdesk", a.PROVIDER_OPENAI, "gpt-4o-mini", 12_000, 500, retries=2, stream_ttft_s=1.5)
    )
    calls.append(
        Call(
            "support",
            "helpdesk",
            a.PROVIDER_OPENAI,
            "gpt-4o-mini",
            usage=False,
            error_type="rate_limit_error",
            retries=2,
        )
    )
    if index == 0:  # a stream read without `stream_options.include_usage`: it succeeded, its cost is unknown
        calls.append(Call("support", "helpdesk", a.PROVIDER_OPENAI, "gpt-4o-mini", usage=False, stream_ttft_s=0.4))
    return calls


def _research_round(index: int) -> list[Call]:
    # 6 rounds x 4 claude-3-5-haiku calls x $0.06 = $1.44 of a $1 budget (list price $0.8 in / $4 out per MTok).
    calls = [
        Call(
            "research",
            "evals",
            a.PROVIDER_ANTHROPIC,
            "claude-3-5-haiku-20241022",
            50_000,
            5_000,
            cache_write=2_000,
            stream_ttft_s=0.8,
        )
        for _ in range(4)
    ]
    calls += [Call("research", "evals", a.PROVIDER_VLLM, "acme-llama-70b", 4_000, 600) for _ in range(2)]
    return calls


ROUNDS = 6
PLAN = {"search": _search_round, "support": _support_round, "research": _research_round}


@dataclass
class Workload:
    """Sends the plan to a processor's OTLP/HTTP receiver, one tracer provider (one resource) per service."""

    endpoint: str
    providers: dict[str, TracerProvider] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for team in PLAN:
            resource = Resource.create({"service.name": f"{team}-api", "deployment.environment.name": "test"})
            provider = TracerProvider(resource=resource)
            provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=self.endpoint, timeout=10)))
            self.providers[team] = provider

    def send(self, call: Call) -> None:
        tracer = self.providers[call.team].get_tracer("costline.instrumentation")
        start = time.time_ns()
        span = tracer.start_span(f"{call.operation} {call.model}", kind=SpanKind.CLIENT, start_time=start)
        span.set_attributes(call.attributes())
        if call.error_type:
            span.set_status(Status(StatusCode.ERROR, call.error_type))
        span.end(end_time=start + 1_500_000_000)

    def outcome(self, team: str, name: str, count: int, feature: str) -> None:
        """An outcome span as `costline.outcome(name, count, feature=...)` writes it."""
        tracer = self.providers[team].get_tracer("costline.instrumentation")
        span = tracer.start_span(a.OUTCOME_SPAN_PREFIX + name, kind=SpanKind.INTERNAL)
        span.set_attributes({a.COSTLINE_OUTCOME_NAME: name, a.COSTLINE_OUTCOME_COUNT: count, a.COSTLINE_ORG: ORG,
                             a.COSTLINE_TEAM: team, a.COSTLINE_FEATURE: feature})
        span.end()

    def run(self, rounds: int = ROUNDS, pause_s: float = 1.2) -> int:
        sent = 0
        for index in range(rounds):
            for make_round in PLAN.values():
                for call in make_round(index):
                    self.send(call)
                    sent += 1
            self.outcome("support", OUTCOME, 3, SUPPORT_FEATURE)
            time.sleep(pause_s)
        return sent

    def burst(self, calls: list[Call]) -> None:
        """`calls` in ONE export request (one commit): every series they create is born between two scrapes."""
        provider = TracerProvider(resource=Resource.create({"service.name": "burst-job"}))
        exporter = OTLPSpanExporter(endpoint=self.endpoint, timeout=10)
        provider.add_span_processor(BatchSpanProcessor(exporter, max_export_batch_size=len(calls) + 1,
                                                       schedule_delay_millis=60_000))
        tracer = provider.get_tracer("costline.instrumentation")
        for call in calls:
            start = time.time_ns()
            span = tracer.start_span(f"{call.operation} {call.model}", kind=SpanKind.CLIENT, start_time=start)
            span.set_attributes(call.attributes())
            span.end(end_time=start + 1_000_000_000)
        provider.shutdown()  # flushes the one batch

    def shutdown(self) -> None:
        for provider in self.providers.values():
            provider.shutdown()


BURST = [
    Call("batch", project, a.PROVIDER_OPENAI, "gpt-4o", 200_000, 20_000)
    for project in ("backfill", "reindex", "summaries")
    for _ in range(3)
]
"""A team and projects that sent nothing before: 9 gpt-4o calls, $0.56 each, whose series are all born at once."""
