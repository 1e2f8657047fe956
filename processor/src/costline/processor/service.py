"""The composition root of `costline serve`: the service built from its settings, and its lifecycle.

`Service.start` opens the ledger (retried with backoff while it is unavailable), builds the pipeline from the config,
and starts the listeners in an order that never acknowledges an export before it could be persisted; `reload`
swaps config and prices; `stop` drains. The clock is injected here (`Service(settings, clock=...)`) and handed to
the pipeline, the budgets and the period gauges: tests move time through it. `cli.py` only parses commands.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector

from costline.processor.clock import Clock, system_clock
from costline.processor.config.settings import Settings
from costline.processor.http.api import AdminApi, ApiError, Unavailable
from costline.processor.model import BASE_OWNER_LABELS, CALL_LABELS, GROUP_BY, OPTIONAL_OWNER_LABELS
from costline.processor.refresher import Refresher
from costline.processor.units import NS_PER_S

if TYPE_CHECKING:
    from costline.processor.config.core import CostlineConfig
    from costline.processor.ingest.pipeline import Pipeline, State
    from costline.processor.ledger import Ledger

log = logging.getLogger("costline.processor")



LEDGER_OPEN_BACKOFF_S = (0.5, 30.0)
"""First and longest wait between attempts to open the ledger at start (doubling, with jitter)."""
ADMIN_REFRESH_S = 2.0
"""How often a processor looks for administrative changes another processor stored (one `max(id)` query)."""
READINESS_CHECK_INTERVAL_S = 2.0
"""`/readyz` asks the ledger at most this often; probes in between get the last answer."""


class StartCancelled(Exception):
    """A stop was asked for while `Service.start` waited for the ledger."""


class ListenError(OSError):
    """A listener could not bind (the port is taken, the address is not this host's); the message names the
    listener, its flag and the address."""


def _listen(what: str, flag: str, address: Any, start: Callable[[], Any]) -> Any:
    try:
        return start()
    except (OSError, RuntimeError) as err:  # grpc says RuntimeError("Failed to bind to address ...")
        reason = (err.strerror if isinstance(err, OSError) and err.strerror
                  else "the port is in use or the address is not this host's")
        raise ListenError(f"cannot listen on {address} for {what} ({flag}): {reason}") from None


class LedgerReadiness:
    """Whether the ledger answers a trivial query, asked at most every `interval_s`.

    A flood of `/readyz` probes costs one round trip per interval, and a probe arriving while another one is asking
    gets the previous answer instead of queueing behind it (the ask itself is bounded by the ledger timeout).
    """

    def __init__(self, ping: Callable[[], bool], interval_s: float = READINESS_CHECK_INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._ping = ping
        self._interval = interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._checked_at = -math.inf
        self._ok = True  # just opened

    def __call__(self) -> bool:
        if self._clock() - self._checked_at >= self._interval and self._lock.acquire(blocking=False):
            try:
                ok = self._ping()
                if ok != self._ok:
                    log.log(logging.INFO if ok else logging.WARNING, "ledger %s",
                            "reachable again: ready" if ok else "not reachable: /readyz answers 503")
                self._ok, self._checked_at = ok, self._clock()
            finally:
                self._lock.release()
        return self._ok


class Service:
    """A running processor: the pipeline, its ledger, the listeners and the optional forwarder.

    Start order matters: the API listener comes up first so `/healthz` answers and `/readyz` says 503 while the
    ledger opens (a migration on PostgreSQL can take a while, or the database is still starting beside us: opening
    is retried with backoff until it succeeds or a stop is asked for); the OTLP listeners come up only once the
    pipeline can commit, so nothing is acknowledged before it could be persisted.
    """

    def __init__(self, settings: Settings, *, clock: Callable[[], datetime] | None = None) -> None:
        self.settings = settings
        self.clock: Clock = clock or system_clock
        """The one clock: handed to everything that asks what time it is (tests pass a fixed one)."""
        self.registry = CollectorRegistry()
        self.pipeline: Any = None
        self.forwarder: Any = None
        self.admin: Any = None
        self.access: Any = None
        self.otlp_http: Any = None
        self.otlp_grpc: Any = None
        self.period_totals: Any = None
        self.chargeback_totals: Any = None
        self.reconcile: Any = None
        self.exports: Any = None
        self.review: Any = None
        self.administration: Any = None
        self.admin_refresher: Any = None
        self._reload_lock = threading.Lock()
        self._stopping = threading.Event()
        self._ledger_ready: Callable[[], bool] | None = None

    def request_stop(self) -> None:
        """Ends a wait for the ledger in `start` (safe from a signal handler)."""
        self._stopping.set()

    # -- lifecycle ---------------------------------------------------------------------------------------------

    def start(self) -> Service:
        """Raises `ConfigError` for an invalid config, `LedgerUrlError` for a ledger URL that cannot name a ledger,
        `ListenError` when a listener cannot bind, `StartCancelled` when stopped while waiting for the ledger."""
        from costline.processor.config.core import load_config
        from costline.processor.http.auth import Access, BearerAuth, is_loopback
        from costline.processor.http.otlp_grpc import GrpcServer, OTLPGrpcReceiver
        from costline.processor.http.otlp_http import OTLPHttpReceiver
        from costline.processor.http.server import HttpServer
        from costline.processor.ingest.receivers import ReceiverStats
        from costline.processor.ledger import check_url
        from costline.processor.metrics.chargeback_gauges import ChargebackCollector, ChargebackTotals
        from costline.processor.metrics.period_gauges import PeriodCollector, PeriodTotals

        s = self.settings
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        stats = ReceiverStats()
        self.registry.register(stats)
        config = load_config(s.config_path)  # a bad config is not worth waiting for: refused at once
        check_url(s.db_url)  # nor is a URL that names no ledger (`ledger.db`, `sqlite://x.db`, `mysql://`)
        self.access = Access(config.api, self.clock)
        if s.http is not None:
            if self.access.open and not is_loopback(s.http.host):
                log.warning("the API listens on %s with no api.tokens configured: it answers loopback clients only; "
                            "add tokens (docs/governance.md) to let other hosts read it", s.http)
            api = AdminApi(_Backend(self), GROUP_BY, clock=self.clock, retry_after_s=s.retry_after_s, access=self.access)
            self.admin = _listen("metrics and the API", "--http", s.http,
                                 lambda: HttpServer(s.http, api, "api", max_connections=s.max_connections).start())

        if s.forward_otlp:
            from costline.processor.ingest.forward import Forwarder

            self.forwarder = Forwarder(s.forward_otlp, max_queue_spans=s.forward_queue_spans).start()
            self.registry.register(self.forwarder)
        ledger = self._open_ledger()
        # The YAML file is the baseline; the admin API's changes, stored in the ledger, are laid over it
        # (`governance.overlay`): the pipeline and the API's tokens run on the merged config.
        self.administration = open_administration(config, ledger, clock=self.clock)
        merged = self.administration.merged()
        self.access.update(merged.config.api, merged.refused_tokens)
        self.pipeline = assemble_pipeline(merged.config, ledger, clock=self.clock, forwarder=self.forwarder)
        self.administration.on_change(self._merged_changed)
        # Another processor's change reaches this one on this loop (its own apply at once).
        self.admin_refresher = Refresher(self.administration.tick, "costline-admin",
                                         interval_s=ADMIN_REFRESH_S).start()
        from costline.processor.metrics.approvals import ApprovalCollector

        self.registry.register(ApprovalCollector(lambda: self.administration, self.clock))
        self.registry.register(self.pipeline.collector)
        self.registry.register(self.pipeline.outcome_counter)
        self.registry.register(self.pipeline.policy_violations)
        # Ledger-backed gauges (unpriced and spent this month), read off the scrape path: after commits and on a
        # timer, which also catches `costline reprice` and other processors writing the same ledger.
        pipeline = self.pipeline
        self.period_totals = PeriodTotals(pipeline.ledger, lambda: pipeline.config,
                                          clock=self.clock).start()
        pipeline.on_commit.append(self.period_totals.changed)
        self.registry.register(PeriodCollector(self.period_totals.snapshot))
        # The open period's chargeback statement as gauges, made off the scrape path the same way.
        self.chargeback_totals = ChargebackTotals(pipeline.ledger, lambda: pipeline.config,
                                                  clock=self.clock).start()
        pipeline.on_commit.append(self.chargeback_totals.changed)
        self.registry.register(ChargebackCollector(self.chargeback_totals.snapshot, self.clock))

        auth = BearerAuth(s.token)
        # Coding assistants' events (`/v1/logs`) are billed through the same pipeline; metrics are only counted.
        from costline.processor.ingest.assistants import AssistantLogs
        from costline.processor.ingest.receivers import MetricPoints

        logs, metrics = AssistantLogs(self.pipeline, clock=self.clock), MetricPoints()
        self.registry.register(logs)
        if s.otlp_http is not None:
            receiver = OTLPHttpReceiver(self.pipeline, auth=auth, max_body_bytes=s.max_body_bytes, stats=stats,
                                        retry_after_s=s.retry_after_s, logs=logs, metrics=metrics)
            self.otlp_http = _listen("OTLP/HTTP", "--otlp-http", s.otlp_http,
                                     lambda: HttpServer(s.otlp_http, receiver, "otlp-http",
                                                                max_connections=s.max_connections).start())
        if s.otlp_grpc is not None:
            grpc_receiver = OTLPGrpcReceiver(self.pipeline, auth=auth, stats=stats, retry_after_s=s.retry_after_s,
                                             logs=logs, metrics=metrics)
            self.otlp_grpc = _listen("OTLP/gRPC", "--otlp-grpc", s.otlp_grpc, lambda: GrpcServer(
                s.otlp_grpc, grpc_receiver, max_message_bytes=s.max_body_bytes).start())
        from costline.processor.metrics.reconciliation import ReconcileService

        self.reconcile = ReconcileService(self.registry, lambda: self.pipeline.config, ledger, s.reconcile_every_s,
                                          clock=self.clock)
        if s.export_dir is not None:
            from costline.processor.reports.exports.scheduled import ScheduledExports

            self.exports = ScheduledExports(lambda: self.pipeline.config, ledger, s.export_dir, s.export_every_s,
                                            clock=self.clock).start()
            self.registry.register(self.exports)
        if s.review_every_s is not None and s.review_webhook:
            from costline.processor.reports.review.scheduled import ScheduledReview

            self.review = ScheduledReview(lambda: self.pipeline.config, ledger, s.review_webhook, s.review_every_s,
                                          clock=self.clock).start()
            self.registry.register(self.review)
        # Ready only now: a probe that sees 200 may export at once, so every listener must already be listening.
        self._ledger_ready = LedgerReadiness(ledger.ping)
        return self

    def _open_ledger(self) -> Any:
        """Open the ledger, retrying while it is unavailable (exponential backoff with jitter, each failure logged),
        until it opens or `request_stop` is called. Errors that waiting cannot fix (an unsupported URL) raise."""
        import tenacity

        from costline.processor.ledger import Ledger, LedgerUnavailable, redact_url

        first, longest = LEDGER_OPEN_BACKOFF_S

        def wait(seconds: float) -> None:
            if self._stopping.wait(seconds):
                raise StartCancelled("stopped while waiting for the ledger")

        def log_failure(state: tenacity.RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome is not None else None
            log.warning("ledger at %s not available (attempt %d): %s; retrying in %.1f s",
                        redact_url(self.settings.db_url), state.attempt_number, error,
                        state.next_action.sleep if state.next_action else 0.0)

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(LedgerUnavailable),
            wait=tenacity.wait_exponential(multiplier=first, max=longest) + tenacity.wait_random(0, first),
            stop=lambda _state: self._stopping.is_set(),
            sleep=wait, before_sleep=log_failure, reraise=True,
        )
        try:
            return retrying(Ledger, self.settings.db_url, timeout_s=self.settings.ledger_timeout_s)
        except LedgerUnavailable:
            if self._stopping.is_set():
                raise StartCancelled("stopped while waiting for the ledger") from None
            raise

    def _merged_changed(self, merged: Any) -> None:
        """A new merged config (a change here or in another processor, a reloaded baseline): swap it in."""
        self.pipeline.reload(merged.config)
        self.access.update(merged.config.api, merged.refused_tokens)

    @property
    def ready(self) -> bool:
        """The ledger is open and (checked at most every few seconds) answering."""
        return self._ledger_ready is not None and self._ledger_ready()

    def reload(self) -> str:
        """Re-read the config file (and prices); the running config stays when the new one is invalid."""
        from costline.processor.config.core import ConfigError, load_config

        with self._reload_lock:
            path = self.settings.config_path
            try:
                config = load_config(path) if path is not None else None
            except ConfigError as err:
                raise ApiError(f"config not reloaded: {err}") from None
            if config is not None:
                self.administration.set_baseline(config)  # the API's changes laid over it again: none dropped
            else:
                self.pipeline.reload(None)
        detail = f"reloaded {path}" if path is not None else "reloaded prices (no config file)"
        log.info(detail)
        return detail

    def stop(self, grace_s: float = 10.0) -> None:
        """Refuse new exports, let those in flight commit, flush forwarding, close the ledger, then the API."""
        if self.otlp_grpc is not None:
            self.otlp_grpc.stop(grace_s)
        if self.otlp_http is not None:
            self.otlp_http.stop(grace_s)
        if self.forwarder is not None:
            self.forwarder.stop(min(grace_s, 5.0))
        if self.period_totals is not None:
            self.period_totals.stop()
        if self.chargeback_totals is not None:
            self.chargeback_totals.stop()
        if self.reconcile is not None:
            self.reconcile.stop()
        if self.exports is not None:
            self.exports.stop()
        if self.review is not None:
            self.review.stop()
        if self.admin_refresher is not None:
            self.admin_refresher.stop()
        if self.pipeline is not None:
            self.pipeline.close()
        if self.admin is not None:
            self.admin.stop(1.0)

    def describe(self) -> str:
        parts = []
        if self.otlp_http is not None:
            parts.append(f"OTLP/HTTP {self.otlp_http.url}/v1/traces")
        if self.otlp_grpc is not None:
            parts.append(f"OTLP/gRPC {self.otlp_grpc.target}")
        if self.admin is not None:
            parts.append(f"metrics and API {self.admin.url}")
        return ", ".join(parts) or "no listener"


class _Backend:
    """The API's view of a Service (api.Backend)."""

    def __init__(self, service: Service) -> None:
        self._service = service
        self.registry = service.registry
        self.clock = service.clock

    def ready(self) -> bool:
        return self._service.ready

    def _pipeline(self) -> Any:
        if self._service.pipeline is None:
            raise Unavailable("not ready: the ledger is not open yet")
        return self._service.pipeline

    def usage(self, start: datetime, end: datetime, group_by: Sequence[str], *, limit: int | None = None,
              offset: int = 0) -> list[dict[str, Any]]:
        with _ledger_errors():
            pipeline = self._pipeline()
            return pipeline.ledger.reader.usage(start, end, list(group_by), tz=pipeline.config.zone, limit=limit,
                                                offset=offset)

    def runs(self, start: datetime, end: datetime, *, kind: str | None, scope: Mapping[str, str],
             limit: int) -> list[dict[str, Any]]:
        with _ledger_errors():
            return self._pipeline().ledger.top_runs(start, end, kind=kind, scope=scope, limit=limit)

    def run(self, kind: str, run_id: str, *, scope: Mapping[str, str]) -> list[dict[str, Any]]:
        with _ledger_errors():
            return self._pipeline().ledger.run(kind, run_id, scope=scope)

    def zone(self) -> Any:
        return self._pipeline().config.zone

    def cost_changes(self, start: datetime, end: datetime, *, limit: int | None = None,
                     offset: int = 0) -> list[dict[str, Any]]:
        from costline.processor.reports.reprice import cost_changes

        with _ledger_errors():
            return cost_changes(self._pipeline().ledger, start, end, limit=limit, offset=offset)

    def budgets(self) -> Mapping[str, Any]:
        with _ledger_errors():
            return self._pipeline().budgets_snapshot()

    def chargeback(self, period: str | None, team: str | None, fmt: str, *, private: bool = False,
                   limit: str | None = None, page_token: str | None = None) -> tuple[str, bytes, str | None]:
        from costline.processor.reports.chargeback.report import chargeback_page, parse_page
        from costline.processor.reports.chargeback.statement import Period, StatementError

        pipeline = self._pipeline()
        try:
            with _ledger_errors():
                return chargeback_page(pipeline.config, pipeline.ledger, Period.parse(period) if period else None, team,
                                       fmt, clock=self.clock, private=private,
                                       page=parse_page(limit, page_token), token=page_token)
        except StatementError as err:
            raise ApiError(str(err)) from None

    def customers(self, period: str | None, customer: str | None, fmt: str) -> tuple[str, bytes]:
        from costline.processor.reports.chargeback.customers import customers_document
        from costline.processor.reports.chargeback.statement import Period, StatementError

        pipeline = self._pipeline()
        try:
            with _ledger_errors():
                return customers_document(pipeline.config, pipeline.ledger, Period.parse(period) if period else None,
                                          customer, fmt, clock=self.clock)
        except StatementError as err:
            raise ApiError(str(err)) from None

    def reload(self) -> str:
        self._pipeline()
        return self._service.reload()

    def policy(self, fingerprint: str | None, declared: Mapping[str, str], models: Sequence[str]
               ) -> Mapping[str, Any]:
        from costline.processor.http.policy_api import policy_document

        pipeline = self._pipeline()
        with _ledger_errors():
            return policy_document(pipeline.hierarchy, pipeline.policy, pipeline.budgets, pipeline.pricer,
                                   fingerprint, declared, models, now_ns=int(self.clock().timestamp() * NS_PER_S))


    # -- delegated administration ------------------------------------------------------------------------------

    def _administration(self) -> Any:
        if self._service.administration is None:
            raise Unavailable("not ready: the ledger is not open yet")
        return self._service.administration

    def admin_change(self, name: str, role: str, kind: str, body: Mapping[str, Any], if_match: str | None
                     ) -> dict[str, Any]:
        from costline.processor.governance.changes import Actor
        from costline.processor.governance.scope import Role

        with _ledger_errors():
            return self._administration().change(Actor(name, Role.parse(role)), kind, body, if_match)

    def admin_state(self) -> Mapping[str, Any]:
        from costline.processor.governance.changes import describe

        with _ledger_errors():
            administration = self._administration()
            administration.refresh()
            return describe(administration.merged())

    def admin_audit(self) -> list[dict[str, Any]]:
        from costline.processor.governance.changes import audit_rows

        with _ledger_errors():
            administration = self._administration()
            administration.refresh()
            return audit_rows(administration.rows())

    def admin_export(self) -> str:
        from costline.processor.governance.export import export_yaml

        with _ledger_errors():
            administration = self._administration()
            administration.refresh()
            return export_yaml(administration.merged().config)


def open_administration(config: CostlineConfig, ledger: Ledger, *, clock: Clock) -> Any:
    """The overlay of the API's changes stored in `ledger` on the baseline `config` (`governance.changes`)."""
    from costline.processor.governance.changes import Administration

    return Administration(config, ledger.admin, clock=clock)


@contextmanager
def _ledger_errors() -> Iterator[None]:
    """A ledger that cannot answer is a 503 with a short message; the details (SQL, host) go to the log only."""
    from costline.processor.ledger import LedgerUnavailable

    try:
        yield
    except LedgerUnavailable as err:
        log.warning("API request failed on the ledger: %s", err)
        raise Unavailable("ledger unavailable; retry later") from None


BASE_LABELS = (*CALL_LABELS, *BASE_OWNER_LABELS)
"""Metric labels every series has; the optional owner labels (`metrics.<name>_label`) follow in schema order."""


def metric_labels(config: CostlineConfig) -> tuple[str, ...]:
    return BASE_LABELS + tuple(name for name in OPTIONAL_OWNER_LABELS if getattr(config.metrics, f"{name}_label"))


def derive_state(config: CostlineConfig, previous: State | None, *, ledger: Ledger, clock: Clock) -> State:
    """Everything the pipeline derives from one config, at start (`previous` None) and on each reload: prices,
    hierarchy, policy, budgets (on `clock`) and the series, which carry over when their labels and buckets do."""
    from costline.processor.ingest.pipeline import State
    from costline.processor.metrics.aggregate import SeriesAggregator
    from costline.processor.ownership import Hierarchy
    from costline.processor.policy import ModelPolicy
    from costline.processor.pricing import Pricer
    from costline.processor.reports.budgets import Budgets

    labels, m = metric_labels(config), config.metrics
    aggregator = previous.aggregator if previous is not None else None
    if aggregator is None or aggregator.label_names != labels or aggregator.ttft_bounds != tuple(m.ttft_buckets):
        # New label set or buckets: new series (Prometheus sees counters reset, which rate() handles).
        aggregator = SeriesAggregator(labels, m.cardinality_limit, m.ttft_buckets, m.cardinality_limits)
    else:
        aggregator.set_limits(m.cardinality_limit, m.cardinality_limits)
    return State(config, Pricer(config.prices, config.fleets), Hierarchy(config), ModelPolicy(config), Budgets(config, ledger, clock),
                 aggregator)


def assemble_pipeline(config: CostlineConfig, ledger: Ledger, *, clock: Clock, forwarder: Any = None) -> Pipeline:
    """The pipeline and what it works with, made from `config`: its state (`derive_state`, again on each reload),
    the outcome and policy-violation counters, and the collector that shows its series and counts."""
    from functools import partial

    from costline.processor.ingest.pipeline import Pipeline
    from costline.processor.metrics.collector import CostlineCollector
    from costline.processor.metrics.outcomes import OutcomeCounter
    from costline.processor.metrics.policy_violations import PolicyViolations

    derive = partial(derive_state, ledger=ledger, clock=clock)
    pipeline = Pipeline(ledger, derive(config, None), derive=derive, clock=clock,
                        outcome_counter=OutcomeCounter(config.metrics),
                        policy_violations=PolicyViolations(config.metrics), forwarder=forwarder)
    pipeline.collector = CostlineCollector(lambda: pipeline.state.aggregator, lambda: pipeline.budgets,
                                           pipeline.span_counts, pipeline.bounded_counts)
    return pipeline


def build_pipeline(config_path: str | None, db_url: str, *, clock: Clock = system_clock,
                   forwarder: Any = None, create: bool = True) -> Any:
    """A pipeline without listeners (tests and benchmarks fill a ledger with it; the commands open a ledger only):
    load the config (raises `ConfigError`), open the ledger (raises `LedgerUnavailable`, or `LedgerUrlError`:
    without `create`, a SQLite ledger must exist)."""
    from costline.processor.config.core import load_config
    from costline.processor.ledger import Ledger

    return assemble_pipeline(load_config(config_path), Ledger(db_url, create=create), clock=clock,
                             forwarder=forwarder)
