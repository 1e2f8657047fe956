"""The CLI's surface a new user reads first: `costline --version`, flags shown as what they take (`--from DATE`, not
argparse's `FROM_`), and one rule for `--to` in `usage` and `reconcile`: a bare date is the last day, included."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from costline.cli import main
from costline.instrumentation.version import __version__ as instrumentation_version
from costline.processor.service import build_pipeline
from costline.processor.version import __version__ as processor_version
from costline.testing.admin_reports import Served, openai_usage_buckets
from tests.processor.conftest import at, make_call

DAYS = (date(2026, 11, 29), date(2026, 11, 30), date(2026, 12, 1))


def test_version(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out == f"costline: instrumentation {instrumentation_version}, processor {processor_version}\n"


@pytest.mark.parametrize(("command", "shown"), [("usage", "--from DATE"), ("reconcile", "--from DAY")])
def test_help_names_what_a_flag_takes(capsys, command: str, shown: str) -> None:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = capsys.readouterr().out
    assert shown in text and "FROM_" not in text
    assert "--to 2026-11-30 is all of November" in " ".join(text.split())  # the one rule, in both helps


@pytest.fixture
def ledger(tmp_path: Path) -> tuple[Path, str]:
    """One gpt-4o-mini call of team search at noon on each of DAYS."""
    config = tmp_path / "c.yaml"
    config.write_text("timezone: UTC\n")
    db = f"sqlite:///{tmp_path / 'l.db'}"
    pipeline = build_pipeline(str(config), db)
    pipeline.ingest_calls([make_call(i, start=at(d.year, d.month, d.day)) for i, d in enumerate(DAYS)])
    pipeline.close()
    return config, db


def test_usage_to_includes_the_day(ledger, capsys) -> None:
    config, db = ledger
    code = main(["usage", "--config", str(config), "--db", db, "--from", "2026-11-30", "--to", "2026-11-30",
                 "--group-by", "day", "--format", "json"])
    assert code == 0
    assert [row["day"] for row in json.loads(capsys.readouterr().out)["rows"]] == ["2026-11-30"]


def test_reconcile_to_includes_the_day_too(ledger, tmp_path: Path, capsys) -> None:
    config, db = ledger
    report = tmp_path / "usage.json"
    served = [Served(d, "gpt-4o-mini", "key_1", "proj_1", 1000, 0, 0, 100) for d in DAYS]
    report.write_text(json.dumps({"object": "page", "has_more": False, "next_page": None,
                                  "data": openai_usage_buckets(served, DAYS[0], date(2026, 12, 2))}))
    code = main(["reconcile", "--provider", "openai", "--from", "2026-11-30", "--to", "2026-11-30", "--file",
                 str(report), "--format", "json", "--no-store", "--config", str(config), "--db", db])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    document = json.loads(captured.out)
    assert (document["from"], document["to"]) == ("2026-11-30", "2026-11-30")
    assert {row["day"] for row in document["rows"]} == {"2026-11-30"}


def test_reconcile_to_before_from_is_named(ledger, capsys) -> None:
    config, db = ledger
    code = main(["reconcile", "--provider", "openai", "--from", "2026-11-30", "--to", "2026-11-29", "--file", "x",
                 "--config", str(config), "--db", db])
    assert code == 2 and "--to 2026-11-29 is before --from 2026-11-30" in capsys.readouterr().err
