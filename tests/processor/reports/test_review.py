"""`costline review`: the bi-weekly cost review by hand from the ledger (spend and trend, budget and forecast, a
spike found as an anomaly, the cheaper-model hint, unpriced and usage-missing calls, the suggested budget), the HTML
page rendered by headless Chromium showing the JSON's figures, and delivery to a webhook receiver with retries."""

from __future__ import annotations

import json
import re
import subprocess
import threading
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from costline.cli import main
from costline.processor.config.core import parse_config
from costline.processor.config.settings import SettingsError, resolve
from costline.processor.ledger import Ledger
from costline.processor.reports.review import DeliveryError, build_review, deliver, render_html, review_document
from costline.processor.service import assemble_pipeline
from tests.processor.conftest import at, make_call
from tests.processor.reports.chargeback.test_html import CHROMIUM_FLAGS, tool

NOW = datetime(2026, 11, 29, 0, tzinfo=timezone.utc)  # the review covers Nov 15..29, the previous one Nov 1..15
CONFIG = {
    "timezone": "UTC",
    "prices": [{"provider": "openai", "model": "gpt-4o", "input_per_mtok": "2", "output_per_mtok": "0"},
               {"provider": "openai", "model": "gpt-4o-mini", "input_per_mtok": "0.5", "output_per_mtok": "0"}],
    "orgs": [{"name": "acme", "budget": {"monthly_usd": 500},
              "teams": [{"name": "search", "budget": {"monthly_usd": 100}}, {"name": "ads"}]}],
}


def calls():
    out, n = [], 0

    def add(team, model, mtok, day, hour=12, **extra):
        nonlocal n
        n += 1
        call = make_call(n, model=model, team=team, input_tokens=int(mtok * 10**6), output=0,
                         start=at(2026, 11, day, hour))
        for k, v in extra.items():
            setattr(call, k, v)
        out.append(call)

    for day in range(1, 29):  # search: $2 a day of gpt-4o (1 Mtok), every day of November so far
        add("search", "gpt-4o", 1, day)
    add("search", "gpt-4o", 10, 20)            # + $20 on the 20th: $22 that day, 11x its $2 baseline
    for day in range(1, 15):                   # ads: $1 a day of gpt-4o-mini (2 Mtok) in the previous period only
        add("ads", "gpt-4o-mini", 2, day)
    add("ads", "no-such-model", 1, 16)         # unpriced
    add("ads", "gpt-4o-mini", 0, 17, has_usage=False)  # a successful call without usage
    return out


@pytest.fixture
def review(tmp_path):
    config = parse_config(CONFIG)
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    pipeline = assemble_pipeline(config, ledger, clock=lambda: NOW)
    pipeline.ingest_calls(calls())
    yield config, ledger, build_review(config, ledger, NOW, timedelta(days=14))
    pipeline.close()


def test_the_figures_by_hand(review):
    _, _, r = review
    assert (r.start, r.end) == (datetime(2026, 11, 15, tzinfo=timezone.utc), NOW)
    teams = {t.key: t for t in r.teams}
    search, ads = teams["acme/search"], teams["acme/ads"]
    # search: 14 days x $2 + the $20 spike this period; 14 days x $2 in the previous one (Nov 1..14).
    assert search.spent_usd == Decimal(48) and search.previous_usd == Decimal(28)
    assert search.change_pct == Decimal("71.4")  # 20/28
    # Month to date: 28 days x $2 + $20 = $76 of $100; at 28 of 30 days' pace: 76 x 30/28 = 81.43 (to the cent)
    assert search.month_to_date_usd == Decimal(76) and search.monthly_budget_usd == Decimal(100)
    assert search.budget_used_pct == Decimal("76.0") and search.month_forecast_usd == Decimal("81.43")
    [spike] = search.anomalies
    assert (spike.day, spike.spent_usd, spike.baseline_usd) == (date(2026, 11, 20), Decimal(22), Decimal(2))
    # gpt-4o costs $2/Mtok, the org's gpt-4o-mini $0.50/Mtok (ads used it): search's 24 Mtok would save $36.
    [model] = search.models
    assert (model.model, model.cost_usd, model.tokens) == ("gpt-4o", Decimal(48), 24_000_000)
    assert (model.cheaper_model, model.saving_usd) == ("gpt-4o-mini", Decimal("36.00"))
    # ads: nothing priced this period, one unpriced call and one without usage; $14 before.
    assert ads.spent_usd == 0 and ads.previous_usd == Decimal(14) and ads.change_pct == Decimal("-100.0")
    assert (ads.unpriced_requests, ads.usage_missing_requests) == (1, 1)
    assert ads.monthly_budget_usd is None and ads.anomalies == ()
    # The org: both teams, its own budget.
    assert r.org.key == "acme" and r.org.spent_usd == Decimal(48) and r.org.previous_usd == Decimal(42)
    assert r.org.monthly_budget_usd == Decimal(500) and r.org.month_to_date_usd == Decimal(90)
    # The suggestion is `budgets suggest`'s (monthly, team): present for every team with spend.
    assert search.suggested_budget_usd is not None and search.suggested_budget_usd > search.month_forecast_usd


def test_the_page_in_chromium_shows_the_jsons_figures(review, tmp_path):
    chromium = tool("chromium")
    _, _, r = review
    document = review_document(r)
    page = tmp_path / "review.html"
    page.write_bytes(render_html(r))
    dom = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
                          page.as_uri()], capture_output=True, timeout=120)
    assert dom.returncode == 0, dom.stderr.decode()[-2000:]
    html = dom.stdout.decode()
    sections = dict(re.findall(r'<section class="review" data-team="([^"]+)">(.*?)</section>', html, re.S))
    assert list(sections) == ["acme", "acme/ads", "acme/search"]
    for team in [document["org"], *document["teams"]]:
        body = sections[team["key"]]
        shown = dict(re.findall(r'<td class="n[^"]*" data-field="([a-z_]+)">([^<]*)</td>', body.split("<h3>")[0]))
        for field in ("spent_usd", "previous_usd", "month_to_date_usd", "month_forecast_usd", "untracked_usd"):
            assert shown[field] == team[field], (team["key"], field)
        for field in ("requests", "unpriced_requests", "usage_missing_requests"):
            assert shown[field] == str(team[field]), (team["key"], field)
        days = re.findall(r'<tr class="anomaly" data-day="([^"]+)">', body)
        assert days == [a["day"] for a in team["anomalies"]]
        hints = re.findall(r'data-model="([^"]+)">.*?data-field="cheaper_model">([^<]*)<', body, re.S)
        assert hints == [(m["model"], m["cheaper_model"] or "") for m in team["models"]]
    assert 'data-day="2026-11-20"' in sections["acme/search"]


class Receiver(BaseHTTPRequestHandler):
    answers: list[int] = []
    got: list[dict] = []

    def do_POST(self):  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["content-length"]))
        status = Receiver.answers.pop(0) if Receiver.answers else 200
        if status == 200:
            Receiver.got.append(json.loads(body))
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    Receiver.answers, Receiver.got = [], []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/review"
    server.shutdown()


def test_delivery_retries_a_busy_receiver_and_stops_at_a_refusal(review, receiver):
    _, _, r = review
    Receiver.answers = [503, 503]
    assert deliver(receiver, review_document(r), render_html(r), first_wait_s=0.01) == 200
    [got] = Receiver.got
    assert got["kind"] == "costline.review" and got["org"]["spent_usd"] == "48.00"
    assert "<section class=\"review\" data-team=\"acme/search\">" in got["html"]
    Receiver.answers = [400]
    with pytest.raises(DeliveryError, match="refused the review: 400"):
        deliver(receiver, review_document(r), render_html(r), first_wait_s=0.01)
    assert Receiver.answers == []  # asked once: a refusal is not retried


def test_the_command(review, receiver, tmp_path, capsys, monkeypatch):
    config, ledger, _ = review
    import costline.processor.cli as cli

    monkeypatch.setattr(cli, "CLOCK", lambda: NOW)
    (tmp_path / "c.json").write_text(json.dumps(CONFIG))
    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    assert main(["review", "--config", str(tmp_path / "c.json"), "--db", db, "--format", "json", "--team", "search",
                 "--out", str(tmp_path / "r.json"), "--webhook", receiver]) == 0
    document = json.loads((tmp_path / "r.json").read_text())
    assert [t["key"] for t in document["teams"]] == ["acme/search"]
    assert Receiver.got[0]["teams"][0]["spent_usd"] == "48.00"
    assert main(["review", "--config", str(tmp_path / "c.json"), "--db", db, "--period", "fortnight"]) == 2
    assert "--period" in capsys.readouterr().err
    assert main(["review", "--config", str(tmp_path / "c.json"), "--db", db, "--team", "nobody"]) == 2
    assert "team 'nobody'" in capsys.readouterr().err
    with pytest.raises(SettingsError, match="needs --review-webhook"):
        resolve({"review_every": "14d"}, env={})
