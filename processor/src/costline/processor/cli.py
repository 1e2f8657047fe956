"""The processor's `costline` sub-commands: `serve`, `check-config`, `usage`, `runs`, `reprice`, `cost-changes`,
`chargeback`, `close-period`, `reconcile`.

`costline.cli` (instrumentation distribution) calls `register(subparsers)` when this distribution is installed.
This module only parses commands and runs them: `serve` builds and runs the service (`service.Service`, the
composition root); every other command opens a ledger (`_open_ledger`: the config and a `Ledger` with its stores) and
hands it, with `CLOCK`, to the report that reads or re-prices it — `usage`, `runs`, `cost-changes`, `reprice`, `chargeback`,
`close-period`, `reconcile`. None of them builds a pipeline, a pricer or anything else: that is the reports' and the
service's work.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import queue
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from costline.processor.clock import system_clock
from costline.processor.config import settings as settings_module
from costline.processor.config.settings import SettingsError
from costline.processor.model import GROUP_BY
from costline.processor.units import PERIODS

log = logging.getLogger("costline.processor")

CLOCK = system_clock
"""What the commands take "now" to be (a default `--to`, the current month, when a month was closed): the system
clock, read here as in `service.py` (the two composition roots); every report is handed it."""


# -- commands ----------------------------------------------------------------------------------------------------


def _serve(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = settings_module.resolve(vars(args))
    except SettingsError as err:
        print(f"costline serve: {err}", file=sys.stderr)
        return 2
    from costline.processor.config.core import ConfigError
    from costline.processor.http.api import ApiError
    from costline.processor.ledger import LedgerUrlError
    from costline.processor.service import ListenError, Service, StartCancelled

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
    except (ConfigError, LedgerUrlError, ListenError) as err:
        # Mistakes the user can fix from the message alone (it names the key, the URL or the listener): no traceback.
        service.stop(0)
        where = f"{settings.config_path}: " if isinstance(err, ConfigError) else ""
        where = "" if str(err).startswith(where) else where  # problems with the file itself already name it
        print(f"costline serve: cannot start: {where}{err}", file=sys.stderr)
        return 1
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
    from costline.processor.config.core import check_config

    errors = list(check_config(Path(args.file)) or [])
    for error in errors:
        # Problems with the file itself (unreadable, not YAML, duplicate keys) already name it.
        print(error if error.startswith(f"{args.file}: ") else f"{args.file}: {error}", file=sys.stderr)
    if errors:
        return 1
    print(f"{args.file}: ok")
    return 0


def _open_ledger(args: argparse.Namespace) -> tuple[Any, Any]:
    """(config, ledger) for the commands that read or write the ledger (the caller closes the ledger).
    Raises `SettingsError` naming the config or the ledger URL when either cannot be opened, `LedgerUrlError`
    (`_refusing_bad_ledgers`) when the URL names no ledger or no existing file."""
    from costline.processor.config.core import ConfigError, load_config
    from costline.processor.ledger import Ledger, LedgerUnavailable

    settings = settings_module.resolve({"config": args.config, "db": args.db})
    try:
        config = load_config(settings.config_path)
    except ConfigError as err:
        raise SettingsError(f"{settings.config_path}: {err}") from None
    try:
        return config, Ledger(settings.db_url, create=False)  # a typo in --db must not make an empty ledger
    except LedgerUnavailable as err:
        raise SettingsError(str(err)) from None


def _write(body: bytes, fmt: str) -> int:
    """A CSV or JSON answer on stdout, as the API gives it (JSON with a final newline for the terminal)."""
    out = sys.stdout.buffer
    out.write(body if fmt == "csv" else body + b"\n")
    out.flush()
    return 0


def _usage(args: argparse.Namespace) -> int:
    from costline.processor.http.api import ApiError, parse_usage_query, render_usage

    params = {"from": args.from_, "to": args.to, "group_by": args.group_by, "format": args.format}
    try:
        query = parse_usage_query(params.get, GROUP_BY, CLOCK)
        config, ledger = _open_ledger(args)
    except (ApiError, SettingsError) as err:
        print(f"costline usage: {err}", file=sys.stderr)
        return 2
    try:
        rows = ledger.reader.usage(query.start, query.end, list(query.group_by), tz=config.zone)
    finally:
        ledger.close()
    _, body = render_usage(query, rows)
    return _write(body, query.format)


def _cost_changes(args: argparse.Namespace) -> int:
    from costline.processor.http.api import ApiError, parse_usage_query, render_cost_changes
    from costline.processor.reports.reprice import cost_changes

    params = {"from": args.from_, "to": args.to, "format": args.format}
    try:
        query = parse_usage_query(params.get, (), CLOCK, default_group_by=())
        _, ledger = _open_ledger(args)
    except (ApiError, SettingsError) as err:
        print(f"costline cost-changes: {err}", file=sys.stderr)
        return 2
    try:
        rows = cost_changes(ledger, query.start, query.end)
    finally:
        ledger.close()
    _, body = render_cost_changes(query, rows)
    return _write(body, query.format)


def _runs(args: argparse.Namespace) -> int:
    from costline.processor.http.runs_api import (
        RunsQueryError,
        parse_format,
        parse_run_id,
        parse_runs_query,
        render_run,
        render_top,
    )
    from costline.processor.ledger import LedgerUnavailable

    one = [(kind, value) for kind, value in (("trace", args.trace), ("conversation", args.conversation),
                                             ("session", args.session)) if value is not None]
    params = {"month": args.month, "from": args.since, "to": args.until, "kind": args.kind, "limit": args.limit,
              "format": args.format, "org": args.org, "team": args.team, "project": args.project, "user": args.user}
    try:
        if len(one) > 1:
            raise RunsQueryError("ask for one run: --trace, --conversation or --session, once")
        if one and any(params[k] for k in ("month", "from", "to", "kind", "limit")):
            raise RunsQueryError("one run has no period, kind or limit: drop --month, --since, --until, --kind and "
                                 "--limit, or the run")
        config, ledger = _open_ledger(args)
    except (RunsQueryError, SettingsError) as err:
        print(f"costline runs: {err}", file=sys.stderr)
        return 2
    try:
        if one:
            kind, run_id = one[0][0], parse_run_id(*one[0])
            fmt = parse_format(args.format, "table")
            scope = {k: v for k in ("org", "team", "project", "user") if (v := params[k])}
            rows = ledger.run(kind, run_id, scope=scope)
            if not rows:
                print(f"costline runs: no {kind} {run_id!r} in the ledger (never billed, or older than "
                      "runs.retention_days)", file=sys.stderr)
                return 1
            content_type, body = render_run(kind, run_id, rows, fmt)
        else:
            query = parse_runs_query(params.get, CLOCK, config.zone, default_format="table")
            fmt = query.format
            content_type, body = render_top(query, ledger.top_runs(query.start, query.end, kind=query.kind,
                                                                   scope=query.scope, limit=query.limit))
    except RunsQueryError as err:
        print(f"costline runs: {err}", file=sys.stderr)
        return 2
    except LedgerUnavailable as err:
        print(f"costline runs: {err}", file=sys.stderr)
        return 2
    finally:
        ledger.close()
    return _write(body, "json" if fmt == "json" else "csv")


def _reprice(args: argparse.Namespace) -> int:
    from costline.processor.http.api import ApiError, parse_instant
    from costline.processor.reports.reprice import reprice_with

    try:
        since = parse_instant(args.since, "--since")
        config, ledger = _open_ledger(args)
    except (ApiError, SettingsError) as err:
        print(f"costline reprice: {err}", file=sys.stderr)
        return 2
    try:
        count, tiered = reprice_with(config, ledger, since, every_row=args.all, now=int(CLOCK().timestamp()))
    finally:
        ledger.close()
    print(f"repriced {count} ledger rows since {since.isoformat()}")
    if tiered:
        print(f"kept the billed cost of {tiered} rows whose model has tiered (long-context) prices: a row sums many "
              "calls, and each call's tier is lost in the sum")
    return 0


def _on_statements(command: str, args: argparse.Namespace, period_text: str | None, action: Callable[..., Any]) -> int:
    """Open the ledger and run `action(config, ledger, period)` for a statement command; a bad period, setting or
    an unreachable ledger is one line on stderr and exit code 2."""
    from costline.processor.ledger import LedgerUnavailable
    from costline.processor.reports.chargeback.statement import Period, StatementError

    try:
        period = Period.parse(period_text) if period_text is not None else None
        config, ledger = _open_ledger(args)
    except (StatementError, SettingsError) as err:
        print(f"costline {command}: {err}", file=sys.stderr)
        return 2
    try:
        action(config, ledger, period)
    except (StatementError, LedgerUnavailable) as err:
        print(f"costline {command}: {err}", file=sys.stderr)
        return 2
    finally:
        ledger.close()
    return 0


def _chargeback(args: argparse.Namespace) -> int:
    from costline.processor.reports.chargeback.report import chargeback_document

    def write(config: Any, ledger: Any, period: Any) -> None:
        _, body = chargeback_document(config, ledger, period, args.team, args.format,
                                      clock=CLOCK)
        sys.stdout.buffer.write(body)
        sys.stdout.buffer.flush()

    return _on_statements("chargeback", args, args.period, write)


def _customers(args: argparse.Namespace) -> int:
    from costline.processor.reports.chargeback.customers import customers_document

    def write(config: Any, ledger: Any, period: Any) -> None:
        _, body = customers_document(config, ledger, period, args.customer, args.format, clock=CLOCK)
        sys.stdout.buffer.write(body)
        sys.stdout.buffer.flush()

    return _on_statements("customers", args, args.period, write)


def _chargeback_by(args: argparse.Namespace) -> int:
    """`costline chargeback --by customer` is `costline customers`; `--by team` (the default) the statement."""
    if args.by == "customer":
        if args.format not in ("table", "json"):
            print("costline chargeback: --by customer writes table or json", file=sys.stderr)
            return 2
        args.customer = None
        return _customers(args)
    return _chargeback(args)


def _close_period(args: argparse.Namespace) -> int:
    from costline.processor.reports.chargeback.report import close_period

    def close(config: Any, ledger: Any, period: Any) -> None:
        closed = close_period(config, ledger, period, now=CLOCK)
        statement = closed.statement
        print(f"closed {period} at {closed.closed_at.isoformat()}: total {statement.total} USD over "
              f"{len(statement.teams)} teams; sha256 {closed.sha256}")

    return _on_statements("close-period", args, args.period, close)


def _reconcile(args: argparse.Namespace) -> int:
    from costline.processor.reports.reconcile.cli import run

    return run(args, _open_ledger, CLOCK)


def _hash_token(args: argparse.Namespace) -> int:
    from costline.processor.http.auth import hash_token

    token = sys.stdin.readline().strip()
    if not token:
        print("costline hash-token: no token on standard input", file=sys.stderr)
        return 2
    print(hash_token(token))
    return 0


def _refusing_bad_ledgers(command: str, run: Callable[[argparse.Namespace], int]
                          ) -> Callable[[argparse.Namespace], int]:
    """`run`, but a `--db` that names no ledger (not a database URL, unsupported, or a SQLite file that does not
    exist: these commands never create one) is one line naming it and exit code 1."""

    def guarded(args: argparse.Namespace) -> int:
        from costline.processor.ledger import LedgerUrlError

        try:
            return run(args)
        except LedgerUrlError as err:
            print(f"costline {command}: {err}", file=sys.stderr)
            return 1

    return guarded


TO_RULE = "last day, included: --from 2026-11-01 --to 2026-11-30 is all of November; a datetime ends just before it"
"""The one rule for `--to` (`usage`, `reconcile`) and the API's `to`: a bare date is the last day wanted, which is what
finance means by "from the 1st to the 30th"."""


def _env_help(name: str) -> str:
    return f"(env {settings_module.ENV[name]})"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the processor's sub-commands to the `costline` parser (in the order `costline --help` lists them)."""
    for add in (_add_serve, _add_hash_token, _add_check_config, _add_usage, _add_runs, _add_reprice,
                _add_cost_changes, _add_chargeback, _add_customers, _add_reconcile, _add_close_period, _add_export,
                _add_budgets, _add_review, _add_admin):
        add(subparsers)


def _add_serve(subparsers: argparse._SubParsersAction) -> None:
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
    serve.add_argument("--max-connections", dest="max_connections", type=int,
                       help=f"connections each HTTP listener serves at once; one more is answered 503 (default "
                            f"{settings_module.DEFAULT_MAX_CONNECTIONS}) {_env_help('max_connections')}")
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
    serve.add_argument("--export-dir", dest="export_dir", metavar="DIR",
                       help=f"keep the daily Parquet exports (see `costline export`) current here "
                            f"{_env_help('export_dir')}")
    serve.add_argument("--export-every", dest="export_every", metavar="DURATION",
                       help=f"re-export the days that can still change this often (default 1h) "
                            f"{_env_help('export_every')}")
    serve.add_argument("--review-every", dest="review_every", metavar="DURATION",
                       help=f"build the cost review of the last interval and POST it to --review-webhook this often "
                            f"(e.g. 14d) {_env_help('review_every')}")
    serve.add_argument("--review-webhook", dest="review_webhook", metavar="URL",
                       help=f"where the scheduled review goes (JSON, HTML inline) {_env_help('review_webhook')}")
    serve.add_argument("--log-level", default=os.environ.get("COSTLINE_LOG_LEVEL", "info"),
                       choices=["debug", "info", "warning", "error"], help="(env COSTLINE_LOG_LEVEL)")
    serve.set_defaults(func=_serve)


def _add_hash_token(subparsers: argparse._SubParsersAction) -> None:
    hashed = subparsers.add_parser(
        "hash-token", help="print the sha256: value of an API token for api.tokens[].sha256 (token on stdin)",
        description="Reads the token from standard input (keeping it out of the shell history and `ps`) and prints "
        "the value the config stores instead of it.")
    hashed.set_defaults(func=_hash_token)


def _add_check_config(subparsers: argparse._SubParsersAction) -> None:
    check = subparsers.add_parser("check-config", help="validate a config file; non-zero exit naming key and rule")
    check.add_argument("file")
    check.set_defaults(func=_check_config)


def _ledger_command(subparsers: argparse._SubParsersAction, name: str, run: Callable[[argparse.Namespace], int],
                    summary: str, description: str) -> argparse.ArgumentParser:
    """The parser of a command that opens a ledger: `--config` and `--db` first, and a `--db` that names no ledger
    refused in one line (`_refusing_bad_ledgers`); the caller adds the command's own flags."""
    parser = subparsers.add_parser(name, help=summary, description=description)
    _ledger_flags(parser)
    parser.set_defaults(func=_refusing_bad_ledgers(name, run))
    return parser


def _add_usage(subparsers: argparse._SubParsersAction) -> None:
    usage = _ledger_command(subparsers, "usage", _usage, "cost and tokens from the ledger, grouped (CSV or JSON)",
                            "Reads the ledger directly; same options and output as GET /api/v1/usage.")
    _export_flags(usage, "start, ISO date or datetime, included (default: the beginning)")
    usage.add_argument("--group-by", dest="group_by", default="team,model",
                       help=f"comma-separated columns among {','.join(GROUP_BY)} (default team,model)")


def _add_runs(subparsers: argparse._SubParsersAction) -> None:
    runs = _ledger_command(
        subparsers, "runs", _runs, "cost per agent run (trace), conversation and session: the top runs, or one",
        "Without --trace/--conversation/--session: the runs that cost most in the period, one line per "
        "run and team. With one of them: that run's cost, per owner and in total. Reads the ledger directly; the "
        "same answers as GET /api/v1/runs and GET /api/v1/runs/<kind>/<id>. See docs/processor.md.")
    one = runs.add_argument_group("one run")
    one.add_argument("--trace", metavar="HEX", help="the trace id of an agent run (32 hex digits)")
    one.add_argument("--conversation", metavar="ID", help="a gen_ai.conversation.id")
    one.add_argument("--session", metavar="ID", help="a session.id")
    period = runs.add_argument_group("the period (default: every run kept)")
    period.add_argument("--month", metavar="YYYY-MM", help="what runs cost in this month (the configured time zone)")
    period.add_argument("--since", metavar="DATE", help="what runs cost from then on, ISO date or datetime")
    period.add_argument("--until", metavar="DATE", help=f"and before this: {TO_RULE} (default: now)")
    scope = runs.add_argument_group("the scope")
    scope.add_argument("--kind", choices=["trace", "conversation", "session"], help="only runs of this kind")
    for name in ("org", "team", "project", "user"):
        scope.add_argument(f"--{name}", help=f"only the calls of this {name}")
    runs.add_argument("--limit", default=None, help="at most this many runs (default 20)")
    runs.add_argument("--format", choices=["table", "csv", "json"], default="table")


def _add_reprice(subparsers: argparse._SubParsersAction) -> None:
    reprice = _ledger_command(
        subparsers, "reprice", _reprice, "price ledger rows again with the current config and prices",
        "Rows recorded as unpriced become priced once a price exists; with --all, every row is re-rated at the price "
        "in effect at its hour (after a price correction), each changed cost recorded in the ledger's audit trail.")
    reprice.add_argument("--since", required=True, help="ISO date or datetime")
    reprice.add_argument("--all", action="store_true",
                         help="re-rate priced rows too, not only those waiting for a price")


def _add_cost_changes(subparsers: argparse._SubParsersAction) -> None:
    changes = _ledger_command(
        subparsers, "cost-changes", _cost_changes,
        "the audit trail of `reprice --all`: each re-rated ledger row's cost before and after",
        "Reads the ledger directly; same options and output as GET /api/v1/cost-changes. --from and --to bound when "
        "the re-rate was made.")
    _export_flags(changes, "re-rates made from then on, ISO date or datetime (default: the first)")


def _add_chargeback(subparsers: argparse._SubParsersAction) -> None:
    chargeback = _ledger_command(
        subparsers, "chargeback", _chargeback_by,
        "a month's chargeback statement per team (table, CSV, JSON, FOCUS or HTML)",
        "What each team is charged for a calendar month in the configured time zone, by the config's `chargeback:` "
        "section; the same document as GET /api/v1/chargeback. See docs/chargeback.md.")
    chargeback.add_argument("--period", help="the month, YYYY-MM (default: the current month)")
    chargeback.add_argument("--team", help="only this team (`team` or `org/team`)")
    chargeback.add_argument("--format", default="table",
                            help="table (default), csv, json, focus (FOCUS 1.2 CSV) or html (a page per team)")
    chargeback.add_argument("--by", choices=("team", "customer"), default="team",
                            help="team (default): the statement; customer: as `costline customers`")


def _add_customers(subparsers: argparse._SubParsersAction) -> None:
    customers = _ledger_command(
        subparsers, "customers", _customers, "a month's cost, revenue and margin per customer (table or JSON)",
        "Per customer (the `customer` owner): token cost, share of the self-hosted fleets, revenue from "
        "`chargeback.customers.revenue`, margin per customer and per outcome, budget; the same document as "
        "GET /api/v1/customers. See docs/chargeback.md.")
    customers.add_argument("--period", help="the month, YYYY-MM (default: the current month)")
    customers.add_argument("--customer", help="only this customer")
    customers.add_argument("--format", default="table", help="table (default) or json")


def _add_reconcile(subparsers: argparse._SubParsersAction) -> None:
    from costline.processor.reports.reconcile.cli import add_arguments

    add_arguments(_ledger_command(
        subparsers, "reconcile", _reconcile, "hold the ledger against a provider's own usage and cost reports",
        "Compare the provider's usage report (live or saved) with the ledger per day, model and owner of a provider "
        "identity; store the result. See docs/reconciliation.md."))


def _add_close_period(subparsers: argparse._SubParsersAction) -> None:
    close = _ledger_command(
        subparsers, "close-period", _close_period,
        "freeze a past month's chargeback statement (stored in the ledger with its hash)",
        "Stores the month's statement as it is now; `costline chargeback` then serves the stored one, and spans "
        "arriving later for that month appear as corrections in the first open month. See docs/chargeback.md.")
    close.add_argument("period", help="the month, YYYY-MM; it must have ended in the configured time zone")


def _add_export(subparsers: argparse._SubParsersAction) -> None:
    export = _ledger_command(
        subparsers, "export", _export, "write days of usage and FOCUS data as Parquet a warehouse loads",
        "Writes <dir>/usage/date=YYYY-MM-DD/ and <dir>/focus/date=YYYY-MM-DD/ (the config's time zone), one Parquet "
        "file per day and dataset, replacing that day's previous export atomically; money as exact DECIMAL. Without "
        "--day/--from, the days a span may still arrive in. See docs/exports.md.")
    export.add_argument("--dir", dest="out_dir", required=True, help="the export's root directory")
    export.add_argument("--day", action="append", metavar="YYYY-MM-DD", help="a day to export (repeatable)")
    export.add_argument("--from", dest="from_", metavar="YYYY-MM-DD", help="first day to export")
    export.add_argument("--to", metavar="YYYY-MM-DD", help="last day to export, included (default: today)")


def _export(args: argparse.Namespace) -> int:
    from datetime import date, timedelta

    from costline.processor.reports.exports import ExportError, export_days, stale_days

    try:
        days = [date.fromisoformat(d) for d in args.day or ()]
        first = date.fromisoformat(args.from_) if args.from_ else None
        last = date.fromisoformat(args.to) if args.to else None
    except ValueError as err:
        print(f"costline export: {err} (days are YYYY-MM-DD)", file=sys.stderr)
        return 2
    if last is not None and first is None:
        print("costline export: --to needs --from", file=sys.stderr)
        return 2
    try:
        config, ledger = _open_ledger(args)
    except SettingsError as err:
        print(f"costline export: {err}", file=sys.stderr)
        return 2
    try:
        now = CLOCK()
        if first is not None:
            last = last or now.astimezone(config.zone).date()
            if last < first:
                print(f"costline export: --to {last} is before --from {first}", file=sys.stderr)
                return 2
            days += [first + timedelta(days=i) for i in range((last - first).days + 1)]
        wanted = sorted(set(days)) or stale_days(config, ledger, now, changed_since_s=None)
        for result in export_days(config, ledger, wanted, Path(args.out_dir), clock=CLOCK):
            day = result.day
            print(f"{day}: " + ", ".join(f"{name} {result.rows[name]} rows -> {path}"
                                         for name, path in result.paths.items()))
    except ExportError as err:
        print(f"costline export: {err}; the day's previous export, if any, is untouched", file=sys.stderr)
        return 1
    finally:
        ledger.close()
    return 0


def _add_budgets(subparsers: argparse._SubParsersAction) -> None:
    budgets = subparsers.add_parser("budgets", help="budgets from the ledger's history (suggest)",
                                    description="Budget tools that read the ledger.")
    actions = budgets.add_subparsers(dest="action", required=True, metavar="ACTION")
    suggest = actions.add_parser(
        "suggest", help="propose next period's budget for every scope from the last periods, trend and forecast",
        description="For every org, team, user, key and project with spend: the last N complete periods, this one's "
        "forecast at its pace so far, the trend one period on; suggested = the larger of the last two plus the "
        "headroom, rounded up to two significant figures. --format yaml is an orgs:/projects: config fragment "
        "(check-config accepts it) keeping every other configured budget.")
    _ledger_flags(suggest)
    suggest.add_argument("--period", choices=list(PERIODS), default="monthly")
    suggest.add_argument("--history", type=int, metavar="N",
                         help="complete periods to read (default 3 months, 14 days)")
    suggest.add_argument("--headroom", default="20", metavar="PCT", help="percent above the expectation (default 20)")
    suggest.add_argument("--format", choices=["table", "json", "yaml"], default="table")
    suggest.set_defaults(func=_refusing_bad_ledgers("budgets suggest", _budgets_suggest))


def _budgets_suggest(args: argparse.Namespace) -> int:
    import json
    from decimal import Decimal, InvalidOperation

    import yaml

    from costline.processor.reports.suggest import DEFAULT_HISTORY, fragment, render_table, suggest_budgets, window

    try:
        headroom = Decimal(args.headroom.rstrip("%"))
        if not headroom.is_finite():
            raise InvalidOperation
    except InvalidOperation:
        print(f"costline budgets suggest: --headroom {args.headroom!r}: a percentage such as 20", file=sys.stderr)
        return 2
    try:
        config, ledger = _open_ledger(args)
    except SettingsError as err:
        print(f"costline budgets suggest: {err}", file=sys.stderr)
        return 2
    try:
        now = CLOCK()
        suggestions = suggest_budgets(config, ledger, now, period=args.period, history=args.history,
                                      headroom_pct=headroom)
    except ValueError as err:
        print(f"costline budgets suggest: {err}", file=sys.stderr)
        return 2
    finally:
        ledger.close()
    if args.format == "json":
        body = json.dumps({"period": args.period, "headroom_pct": str(headroom),
                           "suggestions": [s.as_dict() for s in suggestions]}, indent=1, default=str) + "\n"
    elif args.format == "yaml":
        document = fragment(config, suggestions, args.period)
        body = (f"# costline budgets suggest --period {args.period} --headroom {headroom} ({now:%Y-%m-%d}): merge "
                "into your config's orgs:/projects:\n"
                + yaml.safe_dump(_plain(document), sort_keys=False, default_flow_style=False))
    else:
        labels = window(args.period, now, config.zone, args.history or DEFAULT_HISTORY[args.period]).labels
        body = render_table(suggestions, labels, args.period, headroom)
    sys.stdout.write(body)
    return 0


def _plain(value: Any) -> Any:
    """Decimals as YAML numbers (strings would not read back as amounts)."""
    from decimal import Decimal

    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, Decimal):
        return float(value) if value != value.to_integral_value() else int(value)
    return value


def _add_review(subparsers: argparse._SubParsersAction) -> None:
    review = _ledger_command(
        subparsers, "review", _review, "the cost review of a period, per team and for the org (HTML or JSON)",
        "Spend against budget, the trend against the previous period, anomalies, top models with the cheaper-model "
        "hint, unpriced, usage-missing and untracked spend, and the suggested budgets; exact, from the ledger. "
        "See docs/chargeback.md (\"The cost review\").")
    review.add_argument("--period", default="2w", help="its length, ending now: 14d, 2w, 1m (default 2w)")
    review.add_argument("--team", help="only this team (`team` or `org/team`), with the org's line")
    review.add_argument("--format", choices=["html", "json"], default="html")
    review.add_argument("--out", metavar="FILE", help="write it here (default: standard output)")
    review.add_argument("--webhook", metavar="URL", help="also POST it (JSON, HTML inline) to this receiver")


def _review(args: argparse.Namespace) -> int:
    from costline.processor.reports.review import (
        DeliveryError,
        build_review,
        deliver,
        parse_period,
        render_html,
        review_document,
    )
    from costline.processor.reports.review.render import review_json

    try:
        length = parse_period(args.period)
    except ValueError as err:
        print(f"costline review: --period: {err}", file=sys.stderr)
        return 2
    try:
        config, ledger = _open_ledger(args)
    except SettingsError as err:
        print(f"costline review: {err}", file=sys.stderr)
        return 2
    try:
        review = build_review(config, ledger, CLOCK(), length)
        if args.team:
            review = review.only(args.team)
    except ValueError as err:
        print(f"costline review: --team: {err}", file=sys.stderr)
        return 2
    finally:
        ledger.close()
    body = render_html(review) if args.format == "html" else review_json(review)
    if args.out:
        Path(args.out).write_bytes(body)
        print(f"review of {review.start:%Y-%m-%d} to {review.end:%Y-%m-%d} written to {args.out}")
    else:
        sys.stdout.buffer.write(body)
    if args.webhook:
        try:
            status = deliver(args.webhook, review_document(review), render_html(review))
        except DeliveryError as err:
            print(f"costline review: {err}", file=sys.stderr)
            return 1
        print(f"delivered to {args.webhook} ({status})", file=sys.stderr)
    return 0


def _export_flags(parser: argparse.ArgumentParser, from_help: str) -> None:
    """`--from`, `--to` and `--format` of the commands that export what an API route pages (`usage`,
    `cost-changes`): the route's parameters, with `--to`'s one rule."""
    parser.add_argument("--from", dest="from_", metavar="DATE", help=from_help)
    parser.add_argument("--to", metavar="DATE", help=f"{TO_RULE} (default: now)")
    parser.add_argument("--format", choices=["csv", "json"], default="csv")


def _ledger_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help=f"config file (prices, owners) {_env_help('config')}")
    parser.add_argument("--db", help=f"ledger URL (default {settings_module.DEFAULT_DB}) {_env_help('db')}")


ADMIN_KINDS = ("org", "team", "project", "user", "key", "token")


def _add_admin(subparsers: argparse._SubParsersAction) -> None:
    admin = subparsers.add_parser(
        "admin", help="delegated administration through the API: teams, projects, users, keys, tokens, budgets",
        description="Create, change, rename and retire the org chart's objects through a running processor's API, "
        "within the scope of your token (docs/governance.md). The token is read from the environment variable "
        "named by --token-env (default COSTLINE_TOKEN), never from a flag.")
    admin.add_argument("--url", default=os.environ.get("COSTLINE_URL", "http://127.0.0.1:9464"),
                       help="the processor's --http listener (env COSTLINE_URL)")
    admin.add_argument("--token-env", default="COSTLINE_TOKEN", help="variable holding your API token")
    actions = admin.add_subparsers(dest="action", required=True, metavar="ACTION")
    state = actions.add_parser("state", help="the objects in your scope, with their versions")
    state.add_argument("--kind", choices=ADMIN_KINDS)
    audit = actions.add_parser("audit", help="the administrative audit log in your scope (JSON)")
    audit.add_argument("--object", help="one object's changes (team:search, key:<fingerprint>, ...)")
    export = actions.add_parser("export", help="the merged state as a config file check-config accepts")
    export.add_argument("-o", "--output", help="file to write (default: stdout)")
    for action in ("create", "update", "rename", "retire"):
        parser = actions.add_parser(action, help=f"{action} an object")
        parser.add_argument("kind", choices=ADMIN_KINDS)
        parser.add_argument("name", help="the object's name (a key's fingerprint will do)")
        if action == "rename":
            parser.add_argument("new_name")
        if action != "create":
            parser.add_argument("--version", type=int,
                                help="the version you read (default: the current one, read just before)")
        if action in ("create", "update"):
            parser.add_argument("--org", help="a team's org")
            parser.add_argument("--team", help="a user's team")
            parser.add_argument("--user", help="a key's user, or the person a token belongs to")
            parser.add_argument("--fingerprint", help="a key's fingerprint (`costline fingerprint KEY`)")
            parser.add_argument("--budget", type=json.loads, help='JSON, e.g. \'{"monthly_usd": 100}\'')
            parser.add_argument("--models", type=json.loads, help='JSON, e.g. \'{"openai": {"deny": ["o3*"]}}\'')
            parser.add_argument("--role", help="a token's role (team-admin:acme/search, member:acme/search/bob, ...)")
            parser.add_argument("--expires", help="a token's expiry (ISO datetime)")
    for action, summary in (("request", "ask for a model a rule allows on approval, for a team or yourself"),
                            ("approve", "approve a request until an expiry (an admin one level up)"),
                            ("deny", "deny a request (an admin one level up)")):
        parser = actions.add_parser(action, help=summary)
        parser.add_argument("scope", help="<org>/<team> or <org>/<team>/<user>")
        parser.add_argument("provider")
        parser.add_argument("model", help="the model (or the rule's on_approval pattern)")
        if action == "request":
            parser.add_argument("--reason", required=True)
        else:
            parser.add_argument("--version", type=int, help="the request's version (default: the current one)")
        if action == "approve":
            parser.add_argument("--expires", required=True, help="ISO datetime; calls are refused again from then")
    admin.set_defaults(func=_admin)


def _admin(args: argparse.Namespace) -> int:
    from costline.processor.governance.client import AdminClient, ClientError, new_token

    client = AdminClient(args.url, os.environ.get(args.token_env))
    try:
        if args.action == "state":
            print(json.dumps(client.state(args.kind), indent=2))
        elif args.action == "audit":
            print(json.dumps(client.audit(args.object), indent=2))
        elif args.action in ("request", "approve", "deny"):
            body = {"action": args.action, "scope": args.scope, "provider": args.provider, "model": args.model}
            if args.action == "request":
                body["reason"] = args.reason
            if args.action == "approve":
                body["expires"] = args.expires
            version = None
            if args.action != "request":
                version = args.version if args.version is not None else client.approval_version(
                    args.scope, args.provider, args.model)
            print(json.dumps(client.change("approval", body, version), indent=2))
        elif args.action == "export":
            text = client.export()
            if args.output:
                Path(args.output).write_text(text, encoding="utf-8")
            else:
                sys.stdout.write(text)
        else:
            body: dict[str, Any] = {"action": args.action, "name": args.name}
            if args.action == "rename":
                body["new_name"] = args.new_name
            token = None
            if args.action in ("create", "update"):
                for name in ("org", "team", "user", "fingerprint", "budget", "models", "role", "expires"):
                    if getattr(args, name) is not None:
                        body[name] = getattr(args, name)
                if args.kind == "token" and args.action == "create":
                    token, body["sha256"] = new_token()
            version = None
            if args.action != "create":
                version = args.version if args.version is not None else client.version_of(args.kind, args.name)
            result = client.change(args.kind, body, version)
            print(json.dumps(result, indent=2))
            if token is not None:
                print(f"token (shown once; store it now): {token}", file=sys.stderr)
    except ClientError as err:
        print(f"costline admin {args.action}: {err}", file=sys.stderr)
        return 1
    return 0
