"""The processor's pipeline: OTLP request in → normalise → bound → dedupe → attribute → price → ledger commit →
series, counts, listeners → forwarding.

`Pipeline.ingest` is what both receivers call. It returns only after the ledger transaction has committed, so the
receiver's acknowledgement means the cost is durable; in-memory metrics are updated after the commit, so a failed
commit (`LedgerUnavailable` → HTTP 503 / gRPC UNAVAILABLE, the exporter retries) leaves them untouched.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from costline.processor.clock import Clock
from costline.processor.config.core import CostlineConfig
from costline.processor.ingest.normalize import InvalidSpan, dedupe_calls, normalize_span, resource_attributes
from costline.processor.ingest.normalize.bounds import REJECTED, outside_window, over_limit
from costline.processor.ingest.outcomes import read_outcome
from costline.processor.ledger import Ledger, LedgerUnavailable
from costline.processor.ledger.runs import RunPolicy
from costline.processor.metrics.aggregate import SeriesAggregator
from costline.processor.metrics.collector import CostlineCollector
from costline.processor.metrics.outcomes import OutcomeCounter
from costline.processor.metrics.policy_violations import PolicyViolations
from costline.processor.model import OWNER_ATTRIBUTES, Entry, LLMCall, Outcome, call_keys
from costline.processor.ownership import Hierarchy
from costline.processor.policy import ModelPolicy
from costline.processor.pricing import Pricer
from costline.processor.reports.budgets import Budgets
from costline.processor.units import NS_PER_S, pico_to_float_usd

__all__ = ["IngestResult", "LedgerUnavailable", "Pipeline"]

log = logging.getLogger("costline.processor.ingest.pipeline")

@dataclass(slots=True)
class IngestResult:
    """What the receiver reports back to the exporter (OTLP partial success)."""

    accepted_spans: int
    rejected_spans: int
    error_message: str = ""


@dataclass(frozen=True, slots=True)
class State:
    """Everything derived from one config, swapped atomically on reload. Made by the composition root
    (`service.derive_state`), at start and on each reload; the pipeline only reads it."""

    config: CostlineConfig
    pricer: Pricer
    hierarchy: Hierarchy
    policy: ModelPolicy
    budgets: Budgets
    aggregator: SeriesAggregator


class Pipeline:
    """Ingest only: what it works with is handed in by the composition root (`service.assemble_pipeline`): the
    ledger, the `State` of the config and `derive` to make the next one on reload, the clock, the outcome and
    policy-violation counters, the forwarder."""

    def __init__(self, ledger: Ledger, state: State, *, derive: Callable[[CostlineConfig, State], State],
                 clock: Clock, outcome_counter: OutcomeCounter, policy_violations: PolicyViolations,
                 forwarder: Any = None) -> None:
        self.ledger = ledger
        self._state = state
        self._derive = derive
        self._clock = clock
        self._forwarder = forwarder
        self._counts_lock = threading.Lock()
        self._span_counts = {"billed": 0, "duplicate": 0, "rejected": 0, "not_llm": 0}
        self._bounded: Counter[tuple[str, str]] = Counter()
        """(field, action) -> spans whose value normalisation bounded (`normalize.bounds`)."""
        self.outcomes = ledger.outcomes  # the ledger's store, counting in its writer's bounded transaction
        self.outcome_counter = outcome_counter
        self.policy_violations = policy_violations
        """Registered beside `collector` by the service; counts survive reloads."""
        self.collector: CostlineCollector | None = None
        """The series and span counts as Prometheus sees them: a view of this pipeline the service makes."""
        self.on_commit: list[Callable[[], None]] = []
        """Called after each commit that billed something (e.g. to re-read ledger-backed gauges); must not raise."""

    @property
    def config(self) -> CostlineConfig:
        return self._state.config

    def span_counts(self) -> dict[str, int]:
        with self._counts_lock:
            return dict(self._span_counts)

    def bounded_counts(self) -> dict[tuple[str, str], int]:
        with self._counts_lock:
            return dict(self._bounded)

    # --- ingest ---------------------------------------------------------------------------------------------------
    def ingest(self, request: ExportTraceServiceRequest) -> IngestResult:
        """Bill every LLM span of `request` once; returns after the ledger commit. Thread-safe.

        Raises `LedgerUnavailable` when the commit fails: nothing was billed and no metric moved, so the exporter's
        retry of the whole batch is safe.
        """
        calls: list[LLMCall] = []
        outcomes: list[Outcome] = []
        total = rejected = 0
        problems: list[str] = []
        bounded: Counter[tuple[str, str]] = Counter()
        config = self._state.config
        max_tokens = config.limits.max_tokens_per_call
        max_age_hours, max_future_s = config.max_span_age_hours, config.limits.max_span_future_seconds
        now_ns = int(self._clock().timestamp() * NS_PER_S)
        # Forwarding redacts LLM spans by an allowlist: it is told which spans are calls here, once, instead of
        # normalising every span of the request again on its thread.
        llm_spans: set[tuple[bytes, bytes]] | None = set() if self._forwarder is not None else None
        for resource_spans in request.resource_spans:
            resource = resource_attributes(resource_spans.resource)
            for scope_spans in resource_spans.scope_spans:
                scope = scope_spans.scope.name
                for span in scope_spans.spans:
                    total += 1
                    try:
                        call = normalize_span(span, resource, scope)
                    except InvalidSpan as err:  # a model call with impossible values: still an LLM span
                        rejected += 1
                        if len(problems) < 3:
                            problems.append(str(err))
                        if llm_spans is not None:
                            llm_spans.add((span.trace_id, span.span_id))
                        continue
                    if call is not None and llm_spans is not None:
                        llm_spans.add((span.trace_id, span.span_id))
                    outcome = read_outcome(span, resource) if call is None else None
                    if call is None and outcome is None:
                        continue
                    implausible = None if call is None else over_limit(call, max_tokens)
                    field = "tokens"
                    if implausible is None:  # a business outcome dated 2100 would be charged in 2100's statement
                        implausible = outside_window(span.start_time_unix_nano, now_ns, max_age_hours, max_future_s)
                        field = "start_time"
                    if implausible is not None:
                        rejected += 1
                        bounded[(field, REJECTED)] += 1
                        if len(problems) < 3:
                            problems.append(implausible)
                    elif call is not None:
                        calls.append(call)
                    else:
                        outcomes.append(outcome)
        self.ingest_outcomes(outcomes)
        self.ingest_calls(calls, request=request, llm_spans=llm_spans, dedupe=dedupe_calls,
                          not_llm=total - rejected - len(calls), rejected=rejected, bounded=bounded)
        message = f"{rejected} span(s) rejected: " + "; ".join(problems) if rejected else ""
        return IngestResult(accepted_spans=total - rejected, rejected_spans=rejected, error_message=message)

    def ingest_outcomes(self, outcomes: list[Outcome]) -> None:
        """Count business outcomes (their own transaction, before the calls': a failure of either answers 503 and
        the exporter's retry counts each outcome span once, by its identity)."""
        if not outcomes:
            return
        state = self._state
        resolve = state.hierarchy.resolve
        owned = [(o, resolve(o.owner, None, o.environment)[0]) for o in outcomes]
        counted = self.outcomes.record(owned, retention_hours=state.config.dedup_retention_hours,
                                       now=int(self._clock().timestamp()))
        self.outcome_counter.add(counted)
        if counted:  # outcomes are charged too (value-based chargeback): the ledger's readers should look again
            for listener in self.on_commit:
                listener()

    def ingest_calls(self, calls: list[LLMCall], *, request: ExportTraceServiceRequest | None = None,
                     llm_spans: set[tuple[bytes, bytes]] | None = None, dedupe: Callable[[list[LLMCall]], list[LLMCall]] | None = None, not_llm: int = 0,
                     rejected: int = 0, bounded: Counter[tuple[str, str]] | None = None) -> list[Entry]:
        """The part of `ingest` after normalisation: dedupe, price, attribute, commit, then count. Returns the
        entries that were billed (not seen before). `bounded` counts the spans refused before this (by field and
        action); the bounds recorded on `calls` are added to it. `llm_spans`: the (trace id, span id) of every span
        of `request` that is a model call (billed, duplicate or rejected), for forwarding's redaction."""
        state = self._state  # one config for the whole request, even if a reload happens meanwhile
        llm_calls = len(calls)
        bounded = Counter() if bounded is None else bounded
        for call in calls:
            if call.adjusted:
                bounded.update(call.adjusted)
        if dedupe is not None:
            calls = dedupe(calls)
        resolve, rates_for = state.hierarchy.resolve, state.pricer.rates
        entries: list[Entry] = []
        for call in calls:
            owner, conflict = resolve(call.owner, call.api_key_fingerprint, call.environment)
            rates = rates_for(call.provider, call.model, call.start_time_unix_nano, call.service_tier,
                              call.processing)
            if rates is None:
                entries.append(Entry(call, owner, None, call_keys(call), conflict))
            else:
                cost_pico, unpriced_units = rates.price(call)
                entries.append(Entry(call, owner, cost_pico, call_keys(call), conflict, unpriced_units))

        runs = state.config.runs
        fresh = self.ledger.record(entries, retention_hours=state.config.dedup_retention_hours,
                                   now=int(self._clock().timestamp()),
                                   runs=RunPolicy(tuple(runs.kinds), runs.retention_days) if runs.enabled else None)
        # Committed. From here on nothing may fail the request: the exporter must not retry a billed batch.
        state.aggregator.add(fresh, conflicts=sum(e.conflict for e in fresh))
        state.budgets.committed()  # the budgets' Refresher reads the ledger again: a scrape never does
        with self._counts_lock:
            self._span_counts["billed"] += len(fresh)
            self._span_counts["duplicate"] += llm_calls - len(fresh)
            self._span_counts["rejected"] += rejected
            self._span_counts["not_llm"] += not_llm
            self._bounded.update(bounded)
        try:
            self.policy_violations.count(state.policy, fresh)
        except Exception:
            log.exception("counting policy violations failed; the calls are billed")
        if fresh:
            for listener in self.on_commit:
                listener()
        if self._forwarder is not None and request is not None:
            self._forward(request, entries, llm_spans or set())
        return fresh

    def _forward(self, request: ExportTraceServiceRequest, entries: list[Entry],
                 llm_spans: set[tuple[bytes, bytes]]) -> None:
        try:
            from costline.processor.ingest.forward import Enrichment

            enrichments = {}
            for e in entries:
                # The resolved owner replaces what the span declared, under the attributes that declare it; org
                # and team always have a value (`unattributed` at worst), the others only when known.
                owner_attrs = {attribute: value for name, attribute in OWNER_ATTRIBUTES.items()
                               if (value := getattr(e.owner, name))}
                enrichments[(e.call.trace_id, e.call.span_id)] = Enrichment(
                    pico_to_float_usd(e.cost_pico) if e.cost_pico is not None else None, e.cost_pico is None,
                    owner_attrs)
            self._forwarder.submit(request, enrichments, llm_spans | enrichments.keys())
        except Exception:
            log.exception("forwarding failed; the ledger already has the cost")

    # --- reading and control ----------------------------------------------------------------------------------------
    @property
    def state(self) -> State:
        return self._state

    @property
    def policy(self) -> ModelPolicy:
        return self._state.policy

    @property
    def hierarchy(self) -> Hierarchy:
        return self._state.hierarchy

    @property
    def budgets(self) -> Budgets:
        return self._state.budgets

    @property
    def pricer(self) -> Pricer:
        return self._state.pricer

    def budgets_snapshot(self) -> Mapping[str, Any]:
        return self._state.budgets.current().as_dict()

    def reload(self, config: CostlineConfig | None) -> None:
        """Swap config, hierarchy and prices atomically; `None` keeps the config and re-reads prices."""
        config = config if config is not None else self._state.config
        self.policy_violations.configure(config.metrics)
        self.outcome_counter.configure(config.metrics)
        self._state = self._derive(config, self._state)

    def close(self) -> None:
        self._state.budgets.stop()  # its refresher reads the ledger: not after it is closed
        self.ledger.close()

