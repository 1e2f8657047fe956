"""`costline export`: a month as daily Parquet partitions that DuckDB (a real query engine) reads back to the
pico-dollar of `costline usage`, replaced atomically, never visible half-written (a writer killed midway, a disk that
fills), kept current by `serve --export-dir`, and FOCUS files the official validator accepts."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from costline.cli import main
from costline.processor.config.core import parse_config
from costline.processor.ledger import Ledger
from costline.processor.reports.exports import day_bounds, export_day, stale_days
from costline.processor.reports.exports.scheduled import ScheduledExports
from costline.processor.service import assemble_pipeline
from tests.processor.conftest import at, db_url, make_call  # noqa: F401 - db_url: the fixture

ROOT = Path(__file__).resolve().parents[4]
ZONE = "Asia/Kolkata"  # +05:30: every local midnight falls inside a UTC hour row
CONFIG = {"timezone": ZONE, "prices": [
    {"provider": "openai", "model": "gpt-4o", "input_per_mtok": "2.5", "output_per_mtok": "10"}]}
NOW = datetime(2026, 12, 2, 9, tzinfo=timezone.utc)


def november_calls(start_n: int = 0) -> list:
    """Three teams, two customers, calls at every hour boundary that matters in Kolkata (18:00 and 19:00 UTC hold
    its midnight), an unpriced model, and one call from each side of the month."""
    calls, n = [], start_n
    for day in range(1, 31):
        for hour, team, customer in ((18, "search", "globex"), (19, "ads", "initech"), (3, "infra", "")):
            n += 1
            calls.append(make_call(n, model="gpt-4o", team=team, customer=customer, input_tokens=1000 + n,
                                   output=17 * n, cache_read=n % 7, start=at(2026, 11, day, hour) + 59 * 10**9))
    calls.append(make_call(n + 1, model="no-such-model", team="ads", start=at(2026, 11, 15, 12)))
    calls.append(make_call(n + 2, model="gpt-4o", team="ads", start=at(2026, 10, 31, 18, ) + 45 * 60 * 10**9))
    calls.append(make_call(n + 3, model="gpt-4o", team="ads", start=at(2026, 11, 30, 18) + 45 * 60 * 10**9))
    return calls


@pytest.fixture
def month(db_url, tmp_path):  # noqa: F811
    config = parse_config(CONFIG)
    ledger = Ledger(db_url)
    pipeline = assemble_pipeline(config, ledger, clock=lambda: NOW)
    pipeline.ingest_calls(november_calls())
    yield config, ledger, tmp_path / "export"
    pipeline.close()


def one(sql: str):
    """The first value of a query's one row (a fresh DuckDB connection: the files are read as they are now)."""
    return duckdb.connect().execute(sql).fetchone()[0]


def export_november(config, ledger, out):
    for i in range(30):
        export_day(config, ledger, date(2026, 11, 1) + timedelta(days=i), out, clock=lambda: NOW)


def test_duckdb_reads_the_month_back_to_the_pico_dollar_of_costline_usage(month):
    config, ledger, out = month
    export_november(config, ledger, out)
    tz = config.zone
    start, _ = day_bounds(date(2026, 11, 1), tz)
    _, end = day_bounds(date(2026, 11, 30), tz)
    by_team = {r["team"]: r for r in ledger.usage(start, end, ["team"])}
    db = duckdb.connect()
    usage = f"read_parquet('{out}/usage/*/*.parquet', hive_partitioning = true)"
    rows = db.execute(f"SELECT team, sum(cost_usd), sum(requests), sum(input_tokens), sum(unpriced_requests), "
                      f"count(DISTINCT date) FROM {usage} GROUP BY team ORDER BY team").fetchall()
    assert {r[0]: (r[1], r[2], r[3], r[4]) for r in rows} == {
        team: (r["cost_usd"], r["requests"], r["input_tokens"], r["unpriced_requests"]) for team, r in by_team.items()}
    assert {r[0]: r[5] for r in rows}["search"] == 30
    # Money is DECIMAL(38,12), not a float: the sum above is exact, and the type says so.
    types = dict(db.execute(f"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM {usage})").fetchall())
    assert types["cost_usd"] == "DECIMAL(38,12)" and types["reported_cost_usd"] == "DECIMAL(38,12)"
    assert types["hour_start"].startswith("TIMESTAMP")
    # Each day holds the hour rows that start in it (Kolkata's midnight is 18:30 UTC: the 18:00 row is the day before).
    per_day = dict(db.execute(f"SELECT CAST(date AS VARCHAR), sum(requests) FROM {usage} GROUP BY 1").fetchall())
    for day, count in per_day.items():
        d = date.fromisoformat(day)
        want = sum(r["requests"] for r in ledger.usage(*day_bounds(d, tz), ["team"]))
        assert count == want, day
    # The FOCUS usage rows of the same days carry the same money.
    focus = f"read_parquet('{out}/focus/*/*.parquet', hive_partitioning = true)"
    [(billed, effective)] = db.execute(f"SELECT sum(BilledCost), sum(EffectiveCost) FROM {focus}").fetchall()
    assert billed == effective == sum(r["cost_usd"] for r in by_team.values())
    assert db.execute(f"SELECT DISTINCT ChargeCategory FROM {focus}").fetchall() == [("Usage",)]


def test_a_late_span_reexports_its_day_and_only_it_changes(month):
    config, ledger, out = month
    export_november(config, ledger, out)
    other = out / "usage" / "date=2026-11-12" / "part-0.parquet"
    before = other.read_bytes()
    target = out / "usage" / "date=2026-11-20" / "part-0.parquet"
    total = lambda: one(f"SELECT sum(cost_usd) FROM '{target}'")  # noqa: E731
    was = total()
    pipeline = assemble_pipeline(config, ledger, clock=lambda: NOW)
    pipeline.ingest_calls([make_call(9999, model="gpt-4o", team="search", input_tokens=10**6, output=0,
                                     start=at(2026, 11, 20, 4))])
    export_day(config, ledger, date(2026, 11, 20), out, clock=lambda: NOW)
    assert total() - was == Decimal("2.5")  # 1 Mtok at $2.50
    assert other.read_bytes() == before  # a re-run of an unchanged day writes the same bytes... and others untouched
    export_day(config, ledger, date(2026, 11, 12), out, clock=lambda: NOW)
    assert other.read_bytes() == before  # idempotent: the same rows give the same file


KILLED_WRITER = textwrap.dedent("""
    import sys, time
    from datetime import date, datetime, timezone
    import pyarrow.parquet as pq
    from costline.processor.config.core import parse_config
    from costline.processor.ledger import Ledger
    from costline.processor.reports.exports import daily

    real = pq.write_table
    def slow(table, sink, **kw):
        real(table, sink, **kw)           # the new day is half way: written, not yet renamed into place
        print("written", flush=True)
        time.sleep(60)
    daily.pq.write_table = slow
    config = parse_config({"timezone": "Asia/Kolkata"})
    now = datetime(2026, 12, 2, 9, tzinfo=timezone.utc)
    daily.export_day(config, Ledger(sys.argv[1], create=False), date(2026, 11, 20), sys.argv[2], clock=lambda: now)
""")


def test_an_export_killed_midway_leaves_the_previous_day_whole(month, db_url):  # noqa: F811
    config, ledger, out = month
    export_day(config, ledger, date(2026, 11, 20), out, clock=lambda: NOW)
    target = out / "usage" / "date=2026-11-20" / "part-0.parquet"
    before = target.read_bytes()
    pipeline = assemble_pipeline(config, ledger, clock=lambda: NOW)
    pipeline.ingest_calls([make_call(9998, model="gpt-4o", team="search", start=at(2026, 11, 20, 4))])
    writer = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, db_url, str(out)], stdout=subprocess.PIPE,
                              text=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    try:
        assert writer.stdout.readline().strip() == "written"
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait(10)
    assert target.read_bytes() == before
    leftovers = [p.name for p in target.parent.iterdir() if p.name != "part-0.parquet"]
    assert leftovers and all(name.startswith(".") for name in leftovers)  # hidden: readers' globs skip it
    assert one(f"SELECT count(*) FROM read_parquet('{out}/usage/*/*.parquet')") > 0


def test_a_full_disk_or_an_unwritable_directory_is_a_clear_error_and_the_previous_day_stays(month, db_url, tmp_path,
                                                                                              capsys):  # noqa: F811
    config, ledger, out = month
    (tmp_path / "c.json").write_text(json.dumps(CONFIG))
    assert main(["export", "--config", str(tmp_path / "c.json"), "--db", db_url, "--dir", str(out),
                 "--day", "2026-11-20"]) == 0
    target = out / "usage" / "date=2026-11-20" / "part-0.parquet"
    before = target.read_bytes()
    # A full disk, as the kernel reports it to a process over its file-size limit (EFBIG).
    script = ("import resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
              "resource.setrlimit(resource.RLIMIT_FSIZE, (200, 200)); from costline.cli import main; "
              "sys.exit(main(sys.argv[1:]))")
    run = subprocess.run([sys.executable, "-c", script, "export", "--config", str(tmp_path / "c.json"), "--db", db_url,
                          "--dir", str(out), "--day", "2026-11-20"], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert run.returncode == 1, run.stderr
    assert re.search(r"cannot write .*date=2026-11-20/part-0\.parquet: File too large; the day's previous export",
                     run.stderr), run.stderr
    assert target.read_bytes() == before
    assert [p.name for p in target.parent.iterdir()] == ["part-0.parquet"]  # the temporary file is gone too
    # A directory that cannot be made (a file stands where it should be).
    blocked = tmp_path / "blocked"
    blocked.write_text("not a directory")
    assert main(["export", "--config", str(tmp_path / "c.json"), "--db", db_url, "--dir", str(blocked),
                 "--day", "2026-11-20"]) == 1
    assert "cannot write" in capsys.readouterr().err


def test_bad_days_are_refused_naming_the_flag(month, db_url, capsys):  # noqa: F811
    assert main(["export", "--db", db_url, "--dir", "x", "--day", "2026-13-01"]) == 2
    assert "YYYY-MM-DD" in capsys.readouterr().err
    assert main(["export", "--db", db_url, "--dir", "x", "--to", "2026-11-01"]) == 2
    assert "--to needs --from" in capsys.readouterr().err
    assert main(["export", "--db", db_url, "--dir", "x", "--from", "2026-11-02", "--to", "2026-11-01"]) == 2
    assert "before --from" in capsys.readouterr().err


def test_serve_keeps_the_days_that_can_change_current_and_a_reprice_reexports_its_day(month):
    config, ledger, out = month
    clock = [NOW]
    exports = ScheduledExports(lambda: config, ledger, out, 3600, clock=lambda: clock[0])
    assert stale_days(config, ledger, NOW, changed_since_s=None) == [date(2026, 11, 29) + timedelta(days=i)
                                                                     for i in range(4)]
    exports.run()
    assert sorted(p.name for p in (out / "usage").iterdir()) == [
        "date=2026-11-29", "date=2026-11-30", "date=2026-12-01", "date=2026-12-02"]
    assert exports.failures == 0 and exports.days_written == 4
    # A re-rate of an old day (outside the span window) changes its cost: the next pass re-exports that day.
    clock[0] = NOW + timedelta(hours=1)
    from costline.processor.reports.reprice import reprice_with

    cheaper = parse_config({**CONFIG, "prices": [{"provider": "openai", "model": "gpt-4o", "input_per_mtok": "1",
                                                   "output_per_mtok": "10"}]})
    changed, _ = reprice_with(cheaper, ledger, datetime(2026, 11, 5, tzinfo=timezone.utc), every_row=True,
                              now=int(clock[0].timestamp()))
    assert changed
    exports.run()
    assert (out / "usage" / "date=2026-11-05").is_dir()
    fresh = one(f"SELECT sum(cost_usd) FROM '{out}/usage/date=2026-11-05/part-0.parquet'")
    assert fresh == sum(r["cost_usd"] for r in ledger.usage(*day_bounds(date(2026, 11, 5), config.zone), ["team"]))


def test_the_focus_validator_accepts_a_days_focus_file(month, tmp_path):
    validator = ROOT / ".venv-focus" / "bin" / "focus-validator"
    if not validator.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{validator} missing in CI: `make test-deps` installs it with Python 3.12")
        pytest.skip(f"{validator} missing: `make venv-focus` needs a Python 3.12")
    config, ledger, out = month
    result = export_day(config, ledger, date(2026, 11, 20), out, clock=lambda: NOW)
    site = next(validator.parent.parent.glob("lib/python3*/site-packages"))
    criteria = "TAGGING_SUPPORTED,USAGE_MEASUREMENT_SUPPORTED,SUB_ACCOUNT_SUPPORTED,ACCOUNT_NAMING_SUPPORTED"
    run = subprocess.run([str(validator), "--block-download", "--validate-version", "1.2.0.1", "--data-file",
                          str(result.paths["focus"]), "--applicability-criteria", criteria], cwd=site,
                         capture_output=True, text=True, timeout=300)
    report = run.stdout + run.stderr
    assert run.returncode == 0, report[-3000:]
    failed = set(re.findall(r"(\S+): FAIL", report))
    assert failed <= {"InvoiceId-C-004-C"}, report[-3000:]


def test_docs_describe_every_usage_column():
    from costline.processor.reports.exports.tables import USAGE_SCHEMA

    doc = (ROOT / "docs" / "exports.md").read_text()
    table = doc[doc.index("## `usage`: columns"):doc.index("## `focus`: columns")]
    documented = set(re.findall(r"`([a-z0-9_]+)`", "\n".join(line.split("|")[1] for line in table.splitlines()
                                                               if line.startswith("| `"))))
    assert documented == set(USAGE_SCHEMA.names)
