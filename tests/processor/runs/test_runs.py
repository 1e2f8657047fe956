"""Cost per run, conversation and session from the ledger (SQLite and PostgreSQL): what `costline runs` answers
after the pipeline billed the calls — the top runs of a team for a month, a conversation across two traces — and what
the ledger keeps (retention, the table added to an existing ledger, nothing when `runs.enabled` is off)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from sqlalchemy import inspect, text

from costline.cli import main
from costline.processor.ledger import Ledger
from costline.processor.ledger.runs import RunPolicy
from costline.processor.model import Entry, Owner, call_keys
from costline.processor.service import build_pipeline
from costline.processor.units import NS_PER_S, S_PER_DAY, pico_to_usd
from tests.processor.conftest import at, db_url, make_call  # noqa: F401 - db_url: the fixture

CONFIG = """\
timezone: Europe/Berlin
prices:
  - {provider: openai, model: gpt-4o, input_per_mtok: 2.00, output_per_mtok: 8.00}
"""
PER_CALL = Decimal(1000 * 2 + 100 * 8) / 10**6
"""A `make_call` of gpt-4o: 1000 uncached input tokens, 100 output."""


def trace(n: int) -> bytes:
    return n.to_bytes(16, "big")


def calls_of(n_calls: int, first: int, *, trace_no: int, team: str = "search", org: str = "acme",
             start: int | None = None, **extra) -> list:
    out = []
    for i in range(n_calls):
        call = make_call(first + i, model="gpt-4o", team=team, org=org, trace=trace(trace_no),
                         start=(start or at(2026, 11, 10)) + i * NS_PER_S)
        for name, value in extra.items():
            setattr(call, name, value)
        out.append(call)
    return out


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "costline.yaml"
    path.write_text(CONFIG)
    return path


def runs(capsysbinary, db: str, config, *args: str) -> tuple[int, dict | str]:
    code = main(["runs", "--db", db, "--config", str(config), *args])
    out = capsysbinary.readouterr()
    if code != 0:
        return code, out.err.decode()
    return code, json.loads(out.out) if "json" in args else out.out.decode()


def test_the_top_runs_of_a_team_for_a_month(config, db_url, capsysbinary):  # noqa: F811
    pipeline = build_pipeline(str(config), db_url)
    # Two exports of search's run 1 (5 calls in all), search's runs 2 and 3, marketing's run 4 (dearer than all),
    # search's run 5 in October and run 6 on Dec 1st 00:30 in Berlin (Nov 30 23:30 UTC): other months.
    pipeline.ingest_calls(calls_of(3, 0, trace_no=1))
    pipeline.ingest_calls(calls_of(2, 3, trace_no=1) + calls_of(1, 10, trace_no=2) + calls_of(2, 20, trace_no=3))
    pipeline.ingest_calls(calls_of(9, 30, trace_no=4, team="marketing"))
    pipeline.ingest_calls(calls_of(7, 40, trace_no=5, start=at(2026, 10, 20)))
    pipeline.ingest_calls(calls_of(8, 50, trace_no=6, start=at(2026, 11, 30, 23) + 30 * 60 * NS_PER_S))
    pipeline.close()

    code, document = runs(capsysbinary, db_url, config, "--month", "2026-11", "--team", "search", "--format", "json")
    assert code == 0, document
    assert document["scope"] == {"team": "search"}
    assert [(r["run_id"], r["requests"], Decimal(r["cost_usd"])) for r in document["runs"]] == [
        (trace(1).hex(), 5, 5 * PER_CALL), (trace(3).hex(), 2, 2 * PER_CALL), (trace(2).hex(), 1, PER_CALL)]
    assert {(r["kind"], r["org"], r["team"]) for r in document["runs"]} == {("trace", "acme", "search")}

    code, document = runs(capsysbinary, db_url, config, "--month", "2026-11", "--format", "json", "--limit", "2")
    assert [r["team"] for r in document["runs"]] == ["marketing", "search"]  # every team, dearest first, cut at 2
    code, document = runs(capsysbinary, db_url, config, "--month", "2026-12", "--team", "search", "--format", "json")
    assert [r["run_id"] for r in document["runs"]] == [trace(6).hex()]  # December in Berlin
    code, document = runs(capsysbinary, db_url, config, "--since", "2026-10-01", "--until", "2026-10-31",
                          "--format", "json")
    assert [r["run_id"] for r in document["runs"]] == [trace(5).hex()]

    # CSV as `costline usage` writes it; the table for people.
    code, csv_out = runs(capsysbinary, db_url, config, "--month", "2026-11", "--team", "search", "--format", "csv")
    lines = csv_out.splitlines()
    assert lines[0].startswith("kind,run_id,org,team,first_seen,last_seen,requests,") and lines[0].endswith(",cost_usd")
    assert lines[1].startswith(f"trace,{trace(1).hex()},acme,search,2026-11-10T12:00:00+00:00,")
    assert lines[1].endswith(f",{5 * PER_CALL:.12f}")
    code, table = runs(capsysbinary, db_url, config, "--month", "2026-11", "--team", "nobody")
    assert code == 0 and "(no runs)" in table


def test_a_conversation_spanning_two_traces_costs_both(config, db_url, capsysbinary):  # noqa: F811
    pipeline = build_pipeline(str(config), db_url)
    pipeline.ingest_calls(calls_of(2, 0, trace_no=7, conversation_id="conv-42", session_id="sess-9"))
    pipeline.ingest_calls(calls_of(3, 10, trace_no=8, conversation_id="conv-42", session_id="sess-9",
                                   start=at(2026, 11, 11)))
    pipeline.ingest_calls(calls_of(1, 20, trace_no=9, conversation_id="conv-43", session_id="sess-9"))
    pipeline.close()

    code, one = runs(capsysbinary, db_url, config, "--conversation", "conv-42", "--format", "json")
    assert code == 0, one
    assert (one["kind"], one["run_id"], one["requests"], Decimal(one["cost_usd"])) == (
        "conversation", "conv-42", 5, 5 * PER_CALL)
    assert (one["first_seen"], one["last_seen"]) == ("2026-11-10T12:00:00+00:00", "2026-11-11T12:00:02+00:00")
    code, session = runs(capsysbinary, db_url, config, "--session", "sess-9", "--format", "json")
    assert Decimal(session["cost_usd"]) == 6 * PER_CALL
    code, first = runs(capsysbinary, db_url, config, "--trace", trace(7).hex(), "--format", "json")
    assert Decimal(first["cost_usd"]) == 2 * PER_CALL
    code, top = runs(capsysbinary, db_url, config, "--kind", "conversation", "--format", "json")
    assert [(r["run_id"], r["requests"]) for r in top["runs"]] == [("conv-42", 5), ("conv-43", 1)]

    code, err = runs(capsysbinary, db_url, config, "--conversation", "conv-44")
    assert code == 1 and "no conversation 'conv-44' in the ledger" in err
    code, err = runs(capsysbinary, db_url, config, "--trace", "not-hex")
    assert code == 2 and "32 hexadecimal digits" in err
    code, err = runs(capsysbinary, db_url, config, "--trace", trace(7).hex(), "--session", "sess-9")
    assert code == 2 and "one run" in err
    code, err = runs(capsysbinary, db_url, config, "--month", "2026-11", "--since", "2026-11-01")
    assert code == 2 and "either a month or from/to" in err


def test_a_run_of_two_owners_has_a_row_each_and_ids_the_ledger_cannot_hold_are_cut(db_url):  # noqa: F811
    ledger = Ledger(db_url)
    long_id = "c" * 300 + "\x00"
    calls = [*calls_of(2, 0, trace_no=11, conversation_id=long_id), *calls_of(1, 5, trace_no=11, team="billing")]
    entries = [Entry(c, Owner(org="acme", team=c.owner["costline.team"]), 1_000_000, call_keys(c)) for c in calls]
    assert len(ledger.record(entries, now=at(2026, 11, 10) // NS_PER_S)) == 3
    rows = ledger.run("trace", trace(11).hex())
    assert [(r["team"], r["requests"]) for r in rows] == [("search", 2), ("billing", 1)]
    assert ledger.run("trace", trace(11).hex(), scope={"team": "billing"})[0]["cost_usd"] == pico_to_usd(1_000_000)
    (conversation,) = ledger.run("conversation", "c" * 255)
    assert conversation["requests"] == 2
    ledger.close()


def test_retention_prunes_the_hours_of_runs_older_than_it(db_url):  # noqa: F811
    day0 = at(2026, 1, 1)
    ledger = Ledger(db_url)
    old = calls_of(1, 0, trace_no=21, start=day0)
    going = calls_of(1, 1, trace_no=22, start=day0, session_id="long-session")
    ledger.record([Entry(c, Owner(team="search"), 5, call_keys(c)) for c in old + going], now=day0 // NS_PER_S)
    ledger.close()

    later = day0 + 20 * S_PER_DAY * NS_PER_S
    ledger = Ledger(db_url)  # a new writer: its first write prunes
    fresh = calls_of(1, 2, trace_no=23, start=later, session_id="long-session")
    ledger.record([Entry(c, Owner(team="search"), 5, call_keys(c)) for c in fresh], now=later // NS_PER_S,
                  runs=RunPolicy(retention_days=10))
    assert ledger.run("trace", trace(21).hex()) == []  # its calls are 20 days old
    assert ledger.run("trace", trace(22).hex()) == []
    assert ledger.run("trace", trace(23).hex())[0]["requests"] == 1
    (session,) = ledger.run("session", "long-session")  # its hour 20 days ago is gone, today's is kept
    assert session["requests"] == 1
    assert session["first_seen"] == datetime(2026, 1, 21, 12, tzinfo=timezone.utc)
    ledger.close()


def test_an_existing_ledger_gets_the_table_and_runs_can_be_turned_off(tmp_path, db_url, capsysbinary):  # noqa: F811
    ledger = Ledger(db_url)
    with ledger.engine.begin() as conn:
        conn.execute(text("DROP TABLE costline_runs"))  # a ledger of the release before
    ledger.close()
    ledger = Ledger(db_url)
    assert inspect(ledger.engine).has_table("costline_runs")
    ledger.close()

    path = tmp_path / "off.yaml"
    path.write_text(CONFIG + "runs: {enabled: false}\n")
    pipeline = build_pipeline(str(path), db_url)
    assert len(pipeline.ingest_calls(calls_of(2, 0, trace_no=31, conversation_id="c"))) == 2
    pipeline.close()
    path.write_text(CONFIG + "runs: {kinds: [conversation], retention_days: 30}\n")
    pipeline = build_pipeline(str(path), db_url)
    pipeline.ingest_calls(calls_of(2, 5, trace_no=32, conversation_id="c"))
    ledger = pipeline.ledger
    assert ledger.run("trace", trace(31).hex()) == [] and ledger.run("trace", trace(32).hex()) == []
    assert ledger.run("conversation", "c")[0]["requests"] == 2  # the two billed while runs were on
    pipeline.close()


@pytest.mark.parametrize(("section", "message"), [
    ("runs: {kinds: [trace, agent]}", "runs.kinds[1]: Input should be 'trace'"), ("runs: {kinds: [trace, trace]}", "a kind appears twice"),
    ("runs: {retention_days: 0}", "runs.retention_days"), ("runs: {keep: 3}", "runs.keep"),
])
def test_a_bad_runs_section_is_an_error_naming_the_key(tmp_path, capsys, section, message):
    path = tmp_path / "bad.yaml"
    path.write_text(CONFIG + section + "\n")
    assert main(["check-config", str(path)]) == 1
    assert message in capsys.readouterr().err


def test_a_conversation_across_two_months_is_in_each_with_what_it_cost_there(config, db_url, capsysbinary):  # noqa: F811
    pipeline = build_pipeline(str(config), db_url)
    pipeline.ingest_calls(calls_of(2, 0, trace_no=41, conversation_id="long", start=at(2026, 11, 30, 10)))
    pipeline.ingest_calls(calls_of(3, 5, trace_no=42, conversation_id="long", start=at(2026, 12, 2, 10)))
    pipeline.close()
    months = {}
    for month in ("2026-11", "2026-12"):
        code, document = runs(capsysbinary, db_url, config, "--month", month, "--kind", "conversation",
                              "--format", "json")
        months[month] = [(r["run_id"], r["requests"], Decimal(r["cost_usd"])) for r in document["runs"]]
    assert months == {"2026-11": [("long", 2, 2 * PER_CALL)], "2026-12": [("long", 3, 3 * PER_CALL)]}
    code, whole = runs(capsysbinary, db_url, config, "--conversation", "long", "--format", "json")
    assert (whole["requests"], Decimal(whole["cost_usd"])) == (5, 5 * PER_CALL)
