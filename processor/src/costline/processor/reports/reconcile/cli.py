"""`costline reconcile`: its flags and its run (the sub-command is registered in `costline.processor.cli`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from costline.processor.clock import Clock
from costline.processor.reports.reconcile.render import FORMATS, render, unpriced_note
from costline.processor.reports.reconcile.report import PROVIDERS, ReportError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--provider", required=True, choices=PROVIDERS)
    parser.add_argument("--from", dest="from_", metavar="DAY", required=True, help="first UTC day, YYYY-MM-DD")
    parser.add_argument("--to", metavar="DAY", required=True,
                        help="last UTC day, YYYY-MM-DD, included: --from 2026-11-01 --to 2026-11-30 is all of "
                             "November (the rule of `costline usage --to`)")
    parser.add_argument("--file", action="append", type=Path, default=[],
                        help="a report saved from the provider (API JSON, one page or an array of pages, or CSV); "
                             "repeat for the usage and the cost report. Without it the report is fetched live")
    parser.add_argument("--admin-key-env", dest="admin_key_env", metavar="VAR",
                        help="environment variable holding the provider's admin key (for a live fetch; the key "
                             "itself is never a flag, so it never shows in `ps`)")
    parser.add_argument("--api-base", dest="api_base", metavar="URL",
                        help="the provider's API base URL (default: the config's, else the provider's)")
    parser.add_argument("--no-costs", dest="costs", action="store_false",
                        help="live: read the usage report only, not the cost report")
    parser.add_argument("--format", choices=FORMATS, default="table")
    parser.add_argument("--no-store", dest="store", action="store_false",
                        help="print only; leave the stored reconciliation as it is")


def _day(text: str, flag: str) -> date:
    from costline.processor.units import EPOCH, LATEST

    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise ReportError(f"{flag}: {text!r} is not a date (YYYY-MM-DD)") from None
    if not EPOCH.date() <= day < LATEST.date():
        raise ReportError(f"{flag}: {text!r} is out of range; dates run from 1970-01-01 to 9998-12-31")
    return day


def run(args: argparse.Namespace, open_ledger: Callable[[argparse.Namespace], tuple[Any, Any]], clock: Clock) -> int:
    """Run `costline reconcile`; `open_ledger(args)` is `(config, ledger)` (the caller's, closed here); `clock`
    stamps the stored run."""
    from costline.processor.config.settings import SettingsError
    from costline.processor.ledger import LedgerUnavailable
    from costline.processor.reports.reconcile.run import admin_key_from_env, reconcile

    try:
        start, last = _day(args.from_, "--from"), _day(args.to, "--to")
        if last < start:
            raise ReportError(f"--to {last} is before --from {start}")
        end = last + timedelta(days=1)  # the day after the last: what the comparison takes
        if not args.file and not args.admin_key_env:
            raise ReportError("no report: give --file (saved reports) or --admin-key-env VAR (fetch live)")
        admin_key = admin_key_from_env(args.admin_key_env) if not args.file else None
        config, ledger = open_ledger(args)
    except (ReportError, SettingsError) as err:
        print(f"costline reconcile: {err}", file=sys.stderr)
        return 2
    try:
        configured = config.reconcile.providers.get(args.provider)
        api_base = args.api_base or (configured.api_base if configured is not None else None)
        store = ledger.reconciliation if args.store else None
        result = reconcile(config, ledger, store, args.provider, start, end, files=args.file, clock=clock,
                           admin_key=admin_key, api_base=api_base, costs=args.costs)
    except (ReportError, LedgerUnavailable) as err:  # a `StoreError` is a `LedgerUnavailable`
        print(f"costline reconcile: {err}", file=sys.stderr)
        print("costline reconcile: nothing was stored", file=sys.stderr)
        return 2
    finally:
        ledger.close()
    sys.stdout.write(render(result, args.format))
    if result.unpriced:  # stored without them: said on stderr too, whatever the format
        print(f"costline reconcile: {unpriced_note(result)}", file=sys.stderr)
    return 0
