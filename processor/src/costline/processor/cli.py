"""The processor's `costline` sub-commands: `serve`, `check-config`, `usage`, `reprice`, `chargeback`,
`close-period`, `reconcile`.

`costline.cli` (instrumentation distribution) calls `register(subparsers)` when this distribution is installed.
`serve` is the service's lifecycle (`Service`): open the ledger, listen, reload on SIGHUP, drain on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector

from costline.processor import settings as settings_module
from costline.processor.api import AdminApi, ApiError, Unavailable, parse_instant, parse_usage_query, render_usage
from costline.processor.settings import Settings, SettingsError

log = logging.getLogger("costline.processor")


LEDGER_OPEN_BACKOFF_S = (0.5, 30.0)
"""First and longest wait between attempts to open the ledger at start (doubling, with jitter)."""
READINESS_CHECK_INTERVAL_S = 2.0
"""`/readyz` asks the ledger at most this often; probes in between get the last answer."""


class StartCancelled(Exception):
    """A stop was asked for while `Service.start` waited for the ledger."""


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
        self._clock = clock
        self.registry = CollectorRegistry()
        self.pipeline: Any = None
        self.forwarder: Any = None
        self.admin: Any = None
        self.access: Any = None
        self.otlp_http: Any = None
        self.otlp_grpc: Any = None
        self.period_totals: Any = None
        self.reconcile: Any = None
        self._reload_lock = threading.Lock()
        self._stopping = threading.Event()
        self._ledger_ready: Callable[[], bool] | None = None

    def request_stop(self) -> None:
        """Ends a wait for the ledger in `start` (safe from a signal handler)."""
        self._stopping.set()

    # -- lifecycle ---------------------------------------------------------------------------------------------

    def start(self) -> Service:
        """Raises `ConfigError` for an invalid config, `StartCancelled` when stopped while waiting for the ledger."""
        from costline.processor.auth import Access, is_loopback
        from costline.processor.clock import system_clock
        from costline.processor.config import load_config
        from costline.processor.period_gauges import PeriodCollector, PeriodTotals
        from costline.processor.pipeline import Pipeline
        from costline.processor.receivers import BearerAuth, ReceiverStats
        from costline.processor.receivers.grpc import GrpcServer, OTLPGrpcReceiver
        from costline.processor.receivers.http import OTLPHttpReceiver
        from costline.processor.server import HttpServer

        s = self.settings
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        stats = ReceiverStats()
        self.registry.register(stats)
        config = load_config(s.config_path)  # a bad config is not worth waiting for: refused at once
        self.access = Access(config.api)
        if s.http is not None:
            if self.access.open and not is_loopback(s.http.host):
                log.warning("the API listens on %s with no api.tokens configured: it answers loopback clients only; "
                            "add tokens (docs/governance.md) to let other hosts read it", s.http)
            api = AdminApi(_Backend(self), USAGE_GROUP_BY, retry_after_s=s.retry_after_s, access=self.access)
            self.admin = HttpServer(s.http, api, "api").start()

        if s.forward_otlp:
            from costline.processor.forward import Forwarder

            self.forwarder = Forwarder(s.forward_otlp, max_queue_spans=s.forward_queue_spans).start()
            self.registry.register(self.forwarder)
        ledger = self._open_ledger()
        self.pipeline = Pipeline(config, ledger, clock=self._clock, forwarder=self.forwarder)
        self.registry.register(self.pipeline.collector)
        self.registry.register(self.pipeline.outcome_counter)
        self.registry.register(self.pipeline.policy_violations)
        # Ledger-backed gauges (unpriced and spent this month), read off the scrape path: after commits and on a
        # timer, which also catches `costline reprice` and other processors writing the same ledger.
        pipeline = self.pipeline
        self.period_totals = PeriodTotals(pipeline.ledger, lambda: pipeline.config,
                                          clock=self._clock or system_clock).start()
        pipeline.on_commit.append(self.period_totals.changed)
        self.registry.register(PeriodCollector(self.period_totals.snapshot))

        auth = BearerAuth(s.token)
        if s.otlp_http is not None:
            receiver = OTLPHttpReceiver(self.pipeline, auth=auth, max_body_bytes=s.max_body_bytes, stats=stats,
                                        retry_after_s=s.retry_after_s)
            self.otlp_http = HttpServer(s.otlp_http, receiver, "otlp-http").start()
        if s.otlp_grpc is not None:
            grpc_receiver = OTLPGrpcReceiver(self.pipeline, auth=auth, stats=stats, retry_after_s=s.retry_after_s)
            self.otlp_grpc = GrpcServer(s.otlp_grpc, grpc_receiver, max_message_bytes=s.max_body_bytes).start()
        from costline.processor.reconcile.service import ReconcileService

        self.reconcile = ReconcileService(self.registry, lambda: self.pipeline.config, ledger, s.reconcile_every_s)
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

    @property
    def ready(self) -> bool:
        """The ledger is open and (checked at most every few seconds) answering."""
        return self._ledger_ready is not None and self._ledger_ready()

    def reload(self) -> str:
        """Re-read the config file (and prices); the running config stays when the new one is invalid."""
        from costline.processor.config import ConfigError, load_config

        with self._reload_lock:
            path = self.settings.config_path
            try:
                config = load_config(path) if path is not None else None
            except ConfigError as err:
                raise ApiError(f"config not reloaded: {err}") from None
            self.pipeline.reload(config)
            if config is not None:
                self.access.update(config.api)
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
        if self.reconcile is not None:
            self.reconcile.stop()
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


USAGE_GROUP_BY = ("org", "team", "project", "user", "key", "provider", "model", "operation", "feature",
                  "cost_center", "environment", "service", "hour", "day", "month")
"""Columns `group_by` accepts; the ledger decides which it has and refuses others (checked again there)."""


class _Backend:
    """The API's view of a Service (api.Backend)."""

    def __init__(self, service: Service) -> None:
        self._service = service
        self.registry = service.registry

    def ready(self) -> bool:
        return self._service.ready

    def _pipeline(self) -> Any:
        if self._service.pipeline is None:
            raise Unavailable("not ready: the ledger is not open yet")
        return self._service.pipeline

    def usage(self, start: datetime, end: datetime, group_by: Sequence[str], *, limit: int | None = None,
              offset: int = 0) -> list[dict[str, Any]]:
        with _ledger_errors():
            return list(self._pipeline().ledger.usage(start, end, list(group_by), limit=limit, offset=offset))

    def budgets(self) -> Mapping[str, Any]:
        with _ledger_errors():
            return self._pipeline().budgets_snapshot()

    def chargeback(self, period: str | None, team: str | None, fmt: str) -> tuple[str, bytes]:
        from costline.processor.chargeback.report import chargeback_document
        from costline.processor.chargeback.statement import Period, StatementError

        pipeline = self._pipeline()
        try:
            with _ledger_errors():
                return chargeback_document(pipeline.config, pipeline.ledger, pipeline.outcomes,
                                           Period.parse(period) if period else None, team, fmt)
        except StatementError as err:
            raise ApiError(str(err)) from None

    def reload(self) -> str:
        self._pipeline()
        return self._service.reload()

    def policy(self, fingerprint: str | None, declared: Mapping[str, str], models: Sequence[str]
               ) -> Mapping[str, Any]:
        from costline.processor.policy_api import policy_document

        pipeline = self._pipeline()
        with _ledger_errors():
            return policy_document(pipeline.hierarchy, pipeline.policy, pipeline.budgets, pipeline.pricer,
                                   fingerprint, declared, models)


@contextmanager
def _ledger_errors() -> Iterator[None]:
    """A ledger that cannot answer is a 503 with a short message; the details (SQL, host) go to the log only."""
    from costline.processor.ledger import LedgerUnavailable

    try:
        yield
    except LedgerUnavailable as err:
        log.warning("API request failed on the ledger: %s", err)
        raise Unavailable("ledger unavailable; retry later") from None


# -- commands ----------------------------------------------------------------------------------------------------


def _serve(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = settings_module.resolve(vars(args))
    except SettingsError as err:
        print(f"costline serve: {err}", file=sys.stderr)
        return 2
    # Signals only set a command: the work (reload, drain) runs on the main thread, outside the handler.
    commands: queue.SimpleQueue[str] = queue.SimpleQueue()
    service = Service(settings)

    def stop(*_: object) -> None:
        service.request_stop()  # ends a wait for the ledger in start()
        commands.put("stop")

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, lambda *_: commands.put("reload"))

    try:
        service.start()
    except StartCancelled:
        log.info("stopped before the ledger could be opened")
        service.stop(0)
        return 0
    except Exception as err:
        log.exception("costline serve could not start")
        service.stop(0)
        print(f"costline serve: cannot start: {err}", file=sys.stderr)
        return 1
    from costline.processor.ledger import redact_url

    config = settings.config_path or "no config (list prices, owners from spans only)"
    log.info("costline serve ready: %s; config %s; ledger %s", service.describe(), config,
             redact_url(settings.db_url))
    while True:
        command = commands.get()
        if command == "reload":
            try:
                service.reload()
            except ApiError as err:
                log.error("%s", err)
            except Exception:
                log.exception("reload failed; the running config stays")
        else:
            log.info("stopping: draining in-flight exports")
            service.stop()
            log.info("stopped")
            return 0


def _check_config(args: argparse.Namespace) -> int:
    from costline.processor.config import check_config

    errors = list(check_config(Path(args.file)) or [])
    for error in errors:
        # Problems with the file itself (unreadable, not YAML, duplicate keys) already name it.
        print(error if error.startswith(f"{args.file}: ") else f"{args.file}: {error}", file=sys.stderr)
    if errors:
        return 1
    print(f"{args.file}: ok")
    return 0


def _open_pipeline(args: argparse.Namespace) -> Any:
    from costline.processor.config import ConfigError
    from costline.processor.pipeline import LedgerUnavailable, build_pipeline

    settings = settings_module.resolve({"config": args.config, "db": args.db})
    try:
        return build_pipeline(settings.config_path, settings.db_url)
    except ConfigError as err:
        raise SettingsError(f"{settings.config_path}: {err}") from None
    except LedgerUnavailable as err:
        raise SettingsError(str(err)) from None


def _usage(args: argparse.Namespace) -> int:
    params = {"from": args.from_, "to": args.to, "group_by": args.group_by, "format": args.format}
    try:
        query = parse_usage_query(params.get, USAGE_GROUP_BY)
        pipeline = _open_pipeline(args)
    except (ApiError, SettingsError) as err:
        print(f"costline usage: {err}", file=sys.stderr)
        return 2
    try:
        _, body = render_usage(query, list(pipeline.ledger.usage(query.start, query.end, list(query.group_by))))
    finally:
        pipeline.close()
    out = sys.stdout.buffer
    out.write(body if query.format == "csv" else body + b"\n")
    out.flush()
    return 0


def _reprice(args: argparse.Namespace) -> int:
    try:
        since = parse_instant(args.since, "--since")
        pipeline = _open_pipeline(args)
    except (ApiError, SettingsError) as err:
        print(f"costline reprice: {err}", file=sys.stderr)
        return 2
    try:
        count = pipeline.ledger.reprice(since)
    finally:
        pipeline.close()
    print(f"repriced {count} ledger rows since {since.isoformat()}")
    return 0


def _chargeback(args: argparse.Namespace) -> int:
    from costline.processor.chargeback.report import chargeback_document
    from costline.processor.chargeback.statement import Period, StatementError
    from costline.processor.ledger import LedgerUnavailable

    try:
        period = Period.parse(args.period) if args.period else None
        pipeline = _open_pipeline(args)
    except (StatementError, SettingsError) as err:
        print(f"costline chargeback: {err}", file=sys.stderr)
        return 2
    try:
        _, body = chargeback_document(pipeline.config, pipeline.ledger, pipeline.outcomes, period, args.team,
                                      args.format)
    except (StatementError, LedgerUnavailable) as err:
        print(f"costline chargeback: {err}", file=sys.stderr)
        return 2
    finally:
        pipeline.close()
    sys.stdout.buffer.write(body)
    sys.stdout.buffer.flush()
    return 0


def _close_period(args: argparse.Namespace) -> int:
    from costline.processor.chargeback.report import close_period
    from costline.processor.chargeback.statement import Period, StatementError
    from costline.processor.ledger import LedgerUnavailable

    try:
        period = Period.parse(args.period)
        pipeline = _open_pipeline(args)
    except (StatementError, SettingsError) as err:
        print(f"costline close-period: {err}", file=sys.stderr)
        return 2
    try:
        closed = close_period(pipeline.config, pipeline.ledger, pipeline.outcomes, period)
    except (StatementError, LedgerUnavailable) as err:
        print(f"costline close-period: {err}", file=sys.stderr)
        return 2
    finally:
        pipeline.close()
    statement = closed.statement
    print(f"closed {period} at {closed.closed_at.isoformat()}: total {statement.total} USD over "
          f"{len(statement.teams)} teams; sha256 {closed.sha256}")
    return 0


def _reconcile(args: argparse.Namespace) -> int:
    from costline.processor.reconcile.cli import run

    return run(args, _open_pipeline)


def _hash_token(args: argparse.Namespace) -> int:
    from costline.processor.auth import hash_token

    token = sys.stdin.readline().strip()
    if not token:
        print("costline hash-token: no token on standard input", file=sys.stderr)
        return 2
    print(hash_token(token))
    return 0


def _env_help(name: str) -> str:
    return f"(env {settings_module.ENV[name]})"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the processor's sub-commands to the `costline` parser."""
    serve = subparsers.add_parser(
        "serve", help="run the processor: OTLP in, Prometheus metrics, budgets and the ledger out",
        description="Receive OTLP spans, price and attribute every LLM call, serve /metrics and the API. "
        "Every flag is optional and has a COSTLINE_* environment variable; the flag wins. "
        "A listener address of 'off' disables that listener. See docs/processor.md.",
    )
    serve.add_argument("--config", help=f"config file (default: ./costline.yaml if present, else none) "
                                        f"{_env_help('config')}")
    serve.add_argument("--db", help=f"ledger URL (default {settings_module.DEFAULT_DB}) {_env_help('db')}")
    serve.add_argument("--otlp-http", dest="otlp_http",
                       help=f"OTLP/HTTP listen address (default {settings_module.DEFAULT_OTLP_HTTP}) "
                            f"{_env_help('otlp_http')}")
    serve.add_argument("--otlp-grpc", dest="otlp_grpc",
                       help=f"OTLP/gRPC listen address (default {settings_module.DEFAULT_OTLP_GRPC}) "
                            f"{_env_help('otlp_grpc')}")
    serve.add_argument("--http", help=f"metrics and API listen address (default {settings_module.DEFAULT_HTTP}) "
                                      f"{_env_help('http')}")
    serve.add_argument("--token-file", dest="token_file",
                       help=f"file holding the bearer token OTLP clients must send {_env_help('token_file')}; "
                            f"or set {settings_module.ENV['token']} (a flag would show the token in `ps`)")
    serve.add_argument("--max-body-bytes", dest="max_body_bytes", type=int,
                       help=f"largest OTLP request, compressed and decompressed (default "
                            f"{settings_module.DEFAULT_MAX_BODY_BYTES}) {_env_help('max_body_bytes')}")
    serve.add_argument("--forward-otlp", dest="forward_otlp", metavar="URL",
                       help=f"forward every span to this OTLP/HTTP endpoint {_env_help('forward_otlp')}")
    serve.add_argument("--forward-queue-spans", dest="forward_queue_spans", type=int,
                       help=f"spans buffered for forwarding before dropping (default "
                            f"{settings_module.DEFAULT_FORWARD_QUEUE_SPANS}) {_env_help('forward_queue_spans')}")
    serve.add_argument("--ledger-timeout", dest="ledger_timeout", type=float, metavar="SECONDS",
                       help=f"longest wait on the ledger (a lock, a connection) before an export is answered 503 "
                            f"(default {settings_module.DEFAULT_LEDGER_TIMEOUT_S:g}) {_env_help('ledger_timeout')}")
    serve.add_argument("--reconcile-every", dest="reconcile_every", metavar="DURATION",
                       help=f"reconcile the providers under reconcile.providers in the background this often "
                            f"(30m, 6h, 1d; default: never) {_env_help('reconcile_every')}")
    serve.add_argument("--log-level", default=os.environ.get("COSTLINE_LOG_LEVEL", "info"),
                       choices=["debug", "info", "warning", "error"], help="(env COSTLINE_LOG_LEVEL)")
    serve.set_defaults(func=_serve)

    hashed = subparsers.add_parser(
        "hash-token", help="print the sha256: value of an API token for api.tokens[].sha256 (token on stdin)",
        description="Reads the token from standard input (keeping it out of the shell history and `ps`) and prints "
        "the value the config stores instead of it.")
    hashed.set_defaults(func=_hash_token)

    check = subparsers.add_parser("check-config", help="validate a config file; non-zero exit naming key and rule")
    check.add_argument("file")
    check.set_defaults(func=_check_config)

    usage = subparsers.add_parser("usage", help="cost and tokens from the ledger, grouped (CSV or JSON)",
                                  description="Reads the ledger directly; same options and output as "
                                  "GET /api/v1/usage.")
    _ledger_flags(usage)
    usage.add_argument("--from", dest="from_", help="start, ISO date or datetime (default: the beginning)")
    usage.add_argument("--to", help="end, exclusive; a bare date includes that day (default: now)")
    usage.add_argument("--group-by", dest="group_by", default="team,model",
                       help=f"comma-separated columns among {','.join(USAGE_GROUP_BY)} (default team,model)")
    usage.add_argument("--format", choices=["csv", "json"], default="csv")
    usage.set_defaults(func=_usage)

    reprice = subparsers.add_parser("reprice", help="price ledger rows again with the current config and prices",
                                    description="Rows recorded as unpriced become priced once a price exists.")
    _ledger_flags(reprice)
    reprice.add_argument("--since", required=True, help="ISO date or datetime")
    reprice.set_defaults(func=_reprice)

    chargeback = subparsers.add_parser(
        "chargeback", help="a month's chargeback statement per team (table, CSV, JSON, FOCUS or HTML)",
        description="What each team is charged for a calendar month in the configured time zone, by the config's "
        "`chargeback:` section; the same document as GET /api/v1/chargeback. See docs/chargeback.md.")
    _ledger_flags(chargeback)
    chargeback.add_argument("--period", help="the month, YYYY-MM (default: the current month)")
    chargeback.add_argument("--team", help="only this team (`team` or `org/team`)")
    chargeback.add_argument("--format", default="table",
                            help="table (default), csv, json, focus (FOCUS 1.2 CSV) or html (a page per team)")
    chargeback.set_defaults(func=_chargeback)
    from costline.processor.reconcile.cli import add_arguments

    reconcile = subparsers.add_parser(
        "reconcile", help="hold the ledger against a provider's own usage and cost reports",
        description="Compare the provider's usage report (live or saved) with the ledger per day, model and "
        "owner of a provider identity; store the result. See docs/reconciliation.md.")
    _ledger_flags(reconcile)
    add_arguments(reconcile)
    reconcile.set_defaults(func=_reconcile)

    close = subparsers.add_parser(
        "close-period", help="freeze a past month's chargeback statement (stored in the ledger with its hash)",
        description="Stores the month's statement as it is now; `costline chargeback` then serves the stored one, "
        "and spans arriving later for that month appear as corrections in the first open month. See "
        "docs/chargeback.md.")
    _ledger_flags(close)
    close.add_argument("period", help="the month, YYYY-MM; it must have ended in the configured time zone")
    close.set_defaults(func=_close_period)


def _ledger_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help=f"config file (prices, owners) {_env_help('config')}")
    parser.add_argument("--db", help=f"ledger URL (default {settings_module.DEFAULT_DB}) {_env_help('db')}")
