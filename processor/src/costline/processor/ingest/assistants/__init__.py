"""Coding assistants billed from their OpenTelemetry log events (`POST /v1/logs`, gRPC `LogsService`).

Claude Code, Gemini CLI, Codex CLI and GitHub Copilot Chat report each API request as a log record (an "event") with
its model, tokens, often a cost of their own, and the developer's account. One module per tool turns its request
event into an `LLMCall` (`claude_code.py`, `gemini_cli.py`, `codex_cli.py`, `copilot_chat.py`, each citing the
tool's documentation of the format); `AssistantLogs.ingest` attributes it through the config's `assistants:`
identities and hands the calls to `Pipeline.ingest_calls`, so they are priced, budgeted, written to the ledger and
counted exactly as a span's call is. Records of no tool's request (prompts, tool results, other applications' logs)
are accepted and ignored.

Why logs and not metrics: the tools' metrics (`claude_code.cost.usage`, `gemini_cli.token.usage`, ...) are sums per
model and session over an export interval. A sum cannot be told apart from its resend, nor split back into requests,
so a retried or duplicated metric export would bill twice with nothing to deduplicate by; each event is one request
with an identity (`base.identify`). `/v1/metrics` is accepted (the tools send metrics too, and an exporter whose
metrics are refused retries them forever) and its data points counted, never billed.

Attribution: the first of the event's accounts (`user.email`, then `user.account_uuid` / `user.account_id`) that
`assistants.identities` lists names the user, team and org; an account not listed bills to `assistants.default_team`
(or team `unattributed`) and is counted as `unmapped`. The e-mail itself is never a label or a ledger value.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from costline import attributes as A
from costline.processor.clock import Clock
from costline.processor.config.assistants import AssistantIdentity, AssistantsConfig
from costline.processor.ingest.assistants.base import Assistant, InvalidSpan, LogEvent
from costline.processor.ingest.assistants.claude_code import ClaudeCode
from costline.processor.ingest.assistants.codex_cli import CodexCli
from costline.processor.ingest.assistants.copilot_chat import CopilotChat
from costline.processor.ingest.assistants.gemini_cli import GeminiCli
from costline.processor.ingest.normalize.bounds import REJECTED, bound_labels, outside_window, over_limit
from costline.processor.ingest.pipeline import IngestResult
from costline.processor.model import LLMCall, call_keys
from costline.processor.units import NS_PER_S

__all__ = ["ASSISTANTS", "AssistantLogs", "event_of"]

ASSISTANTS: tuple[Assistant, ...] = (ClaudeCode(), GeminiCli(), CodexCli(), CopilotChat())
"""Every tool read, in the order a record is offered to them (the first that bills it reads it)."""

OUTCOMES = ("billed", "duplicate", "rejected", "unmapped")


def event_of(record: Any, resource: dict[str, Any], service: str, scope: str) -> LogEvent:
    """One log record as a `LogEvent` (`resource`: the resource's attributes as `AnyValue`s)."""
    attributes = dict(resource)
    attributes.update((kv.key, kv.value) for kv in record.attributes)
    name = getattr(record, "event_name", "") or ""
    if not name:
        value = attributes.get("event.name")
        name = value.string_value if value is not None and value.WhichOneof("value") == "string_value" else ""
    body = record.body.string_value if record.body.WhichOneof("value") == "string_value" else ""
    if "." not in name and body.endswith("." + name) and len(body) < 128:
        name = body  # Claude Code: `api_request` in event.name, `claude_code.api_request` in the body
    return LogEvent(name, attributes, record.time_unix_nano or record.observed_time_unix_nano, service, scope,
                    record.trace_id, record.span_id)


class AssistantLogs(Collector):
    """What `/v1/logs` and the gRPC LogsService hand their requests to; a Prometheus collector of its counts
    (`costline_assistant_requests_total{tool, outcome}`: billed, duplicate, rejected, unmapped)."""

    def __init__(self, pipeline: Any, *, clock: Clock) -> None:
        self._pipeline = pipeline
        self._clock = clock
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str]] = Counter()
        self._identities: tuple[AssistantsConfig | None, dict[tuple[str, str], AssistantIdentity]] = (None, {})

    def ingest(self, request: ExportLogsServiceRequest) -> IngestResult:
        """Bill every coding-assistant request of `request` once; returns after the ledger commit (raises
        `LedgerUnavailable` as `Pipeline.ingest` does, nothing billed)."""
        config = self._pipeline.config
        identities = self._lookup(config.assistants)
        now_ns = int(self._clock().timestamp() * NS_PER_S)
        calls: list[LLMCall] = []
        counts: Counter[tuple[str, str]] = Counter()
        problems: list[str] = []
        total = rejected = 0
        bounded: Counter[tuple[str, str]] = Counter()
        for resource_logs in request.resource_logs:
            resource = {kv.key: kv.value for kv in resource_logs.resource.attributes}
            service_value = resource.get("service.name")
            service = service_value.string_value if service_value is not None else ""
            for scope_logs in resource_logs.scope_logs:
                scope = scope_logs.scope.name
                for record in scope_logs.log_records:
                    total += 1
                    event = event_of(record, resource, service, scope)
                    tool = next((t for t in ASSISTANTS if t.bills(event)), None)
                    if tool is None:
                        continue
                    field = None
                    try:
                        call = bound_labels(tool.read(event))
                    except InvalidSpan as err:
                        call, why = None, f"{tool.source}: {err}"
                    else:
                        why = over_limit(call, config.limits.max_tokens_per_call)
                        field = "tokens"
                        if why is None:
                            why = outside_window(call.start_time_unix_nano, now_ns, config.max_span_age_hours,
                                                 config.limits.max_span_future_seconds)
                            field = "start_time"
                    if why is not None:
                        rejected += 1
                        counts[(tool.source, "rejected")] += 1
                        if field is not None:
                            bounded[(field, REJECTED)] += 1
                        if len(problems) < 3:
                            problems.append(why)
                        continue
                    assert call is not None
                    if not self._attribute(call, tool.accounts(event), identities, config.assistants):
                        counts[(tool.source, "unmapped")] += 1
                    calls.append(call)
        # Records of no tool's request are not spans: they are not counted as `not_llm` spans either.
        fresh = self._pipeline.ingest_calls(calls, dedupe=_first_of_each, rejected=rejected, bounded=bounded)
        billed = Counter(entry.call.source for entry in fresh)
        for source, n in Counter(call.source for call in calls).items():
            counts[(source, "billed")] += billed[source]
            counts[(source, "duplicate")] += n - billed[source]
        with self._lock:
            self._counts.update(counts)
        message = f"{rejected} log record(s) rejected: " + "; ".join(problems) if rejected else ""
        return IngestResult(accepted_spans=total - rejected, rejected_spans=rejected, error_message=message)

    def _lookup(self, assistants: AssistantsConfig) -> dict[tuple[str, str], AssistantIdentity]:
        """The identity table of the config in effect, made again only when a reload changed it."""
        made_for, table = self._identities
        if made_for is not assistants:
            table = assistants.lookup()
            self._identities = (assistants, table)
        return table

    @staticmethod
    def _attribute(call: LLMCall, accounts: list[tuple[str, str]],
                   identities: dict[tuple[str, str], AssistantIdentity], assistants: AssistantsConfig) -> bool:
        """Set the call's declared owner from the first mapped account; False when none is mapped. The account
        itself is never copied onto the call: only the mapped names are."""
        found = next((identities[account] for account in accounts if account in identities), None)
        if found is not None:
            owner = {A.COSTLINE_USER: found.user}
            if found.team:
                owner[A.COSTLINE_TEAM] = found.team
            if found.org:
                owner[A.COSTLINE_ORG] = found.org
            call.owner = owner
            return True
        owner = {}
        if assistants.default_team:
            owner[A.COSTLINE_TEAM] = assistants.default_team
        if assistants.default_org:
            owner[A.COSTLINE_ORG] = assistants.default_org
        call.owner = owner
        return False

    def counts(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return dict(self._counts)

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            "costline_assistant_requests",
            "Coding-assistant API requests received as log events, by tool and outcome (billed, duplicate: a resent "
            "event; rejected: impossible values; unmapped: billed to the default team, its account not in "
            "assistants.identities).", labels=["tool", "outcome"])
        counts = self.counts()
        for tool in ASSISTANTS:
            for outcome in OUTCOMES:
                family.add_metric([tool.source, outcome], counts.get((tool.source, outcome), 0))
        yield family


def _first_of_each(calls: list[LLMCall]) -> list[LLMCall]:
    """A batch that holds one event twice (an exporter that resent a record within one request) bills it once."""
    seen: set[bytes] = set()
    kept = []
    for call in calls:
        keys = call_keys(call)
        if keys and not seen.isdisjoint(keys):
            continue
        seen.update(keys)
        kept.append(call)
    return kept
