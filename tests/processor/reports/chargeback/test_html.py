"""`--format html`: one printable page per team, rendered by Debian's headless Chromium to a PNG and a PDF whose
figures are the JSON statement's."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from decimal import Decimal

import pytest

from costline.processor.clock import system_clock
from costline.processor.formats import cents_text as money
from costline.processor.reports.chargeback.report import chargeback_document
from costline.processor.reports.chargeback.statement import Period
from costline.processor.service import build_pipeline
from tests.processor.conftest import at, make_call
from tests.processor.reports.chargeback.test_command import CONFIG, calls

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} missing in CI: `make venv` installs it")
        pytest.skip(f"{name} missing: run `make chromium`")
    return path


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """November's page (with an October for the trend), its JSON statement and October's, rendered once."""
    chromium, pdftotext = tool("chromium"), tool("pdftotext")
    tmp = tmp_path_factory.mktemp("html")
    (tmp / "c.yaml").write_text(CONFIG)
    pipeline = build_pipeline(str(tmp / "c.yaml"), f"sqlite:///{tmp / 'ledger.db'}")
    try:
        pipeline.ingest_calls(calls() + [make_call(900, team="engineering", input_tokens=2_000_000, output=1,
                                                   feature="search", start=at(2026, 10, 15))])
        doc = lambda p, fmt: chargeback_document(pipeline.config, pipeline.ledger,  # noqa: E731
                                                 p, None, fmt, clock=system_clock)
        content_type, page = doc(Period(2026, 11), "html")
        statement = json.loads(doc(Period(2026, 11), "json")[1])
        october = json.loads(doc(Period(2026, 10), "json")[1])
    finally:
        pipeline.close()
    assert content_type == "text/html; charset=utf-8"
    (tmp / "statement.html").write_bytes(page)
    url = (tmp / "statement.html").as_uri()
    flags = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp / 'profile'}"]
    for extra in ([f"--screenshot={tmp / 'statement.png'}", "--window-size=900,1280"],
                  [f"--print-to-pdf={tmp / 'statement.pdf'}", "--no-pdf-header-footer"]):
        run = subprocess.run([*flags, *extra, url], capture_output=True, timeout=120)
        assert run.returncode == 0, run.stderr.decode()[-2000:]
    dom = subprocess.run([*flags, "--dump-dom", url], capture_output=True, timeout=120)
    assert dom.returncode == 0, dom.stderr.decode()[-2000:]
    pages = []
    for n in range(1, len(statement["teams"]) + 2):
        text = subprocess.run([pdftotext, "-layout", "-f", str(n), "-l", str(n), str(tmp / "statement.pdf"), "-"],
                              capture_output=True, timeout=60)
        if text.returncode != 0:  # past the last page
            break
        pages.append(text.stdout.decode())
    return tmp, statement, october, dom.stdout.decode(), pages


def test_one_pdf_page_per_team_with_the_statements_figures(rendered):
    tmp, statement, october, _, pages = rendered
    assert (tmp / "statement.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p for p in pages if p.strip()] and len(pages) == len(statement["teams"]), [p[:80] for p in pages]
    previous = {t["team"]: t["total_usd"] for t in october["teams"]}
    for page, team in zip(pages, statement["teams"], strict=True):
        assert f"LLM chargeback: {team['team']}" in page
        assert "Period 2026-11" in page
        for line in team["lines"]:
            label = line["component"].replace("_", " ") + (f" {line['name']}" if line["name"] else "")
            assert re.search(rf"^\s*{re.escape(label)}\s.*\s{re.escape(money(Decimal(line['amount_usd'])))}\s*$",
                             page, re.M), (label, line["amount_usd"], page)
        assert re.search(rf"^\s*Total\s+{re.escape(money(Decimal(team['total_usd'])))}\s*$", page, re.M), page
        if team["team"] in previous:
            assert f"2026-10: {money(Decimal(previous[team['team']]))}" in page
        else:
            assert "No charges in 2026-10." in page
        waiting = team["usage"]["unpriced_tokens"]
        assert (f"{waiting:,} tokens of" in page) == bool(waiting), page
        assert f"Statement total over all teams: {money(Decimal(statement['total_usd']))}" in page


def test_the_rendered_dom_carries_the_figures_and_the_tops(rendered):
    _, statement, _, dom, _ = rendered
    sections = re.split(r'<section class="page" data-team="', dom)[1:]
    assert [s.split('"', 1)[0] for s in sections] == [t["team"] for t in statement["teams"]]
    for section, team in zip(sections, statement["teams"], strict=True):
        figures = re.findall(r'data-component="([^"]*)" data-name="([^"]*)">.*?data-amount="([^"]*)"', section, re.S)
        assert figures == [(x["component"], x["name"], x["amount_usd"]) for x in team["lines"]]
        assert f'data-total="{team["total_usd"]}"' in section
        assert f'data-tokens="{team["usage"]["unpriced_tokens"]}"' in section
    engineering = sections[0]
    assert re.findall(r'data-model="([^"]*)"', engineering) == ["gpt-4o"]
    marketing = sections[1]
    assert re.findall(r'data-model="([^"]*)"', marketing) == ["gpt-4o", "no-such-model"]
