"""A weekly budget end to end: an unmodified app under `opentelemetry-instrument` with `COSTLINE_GUARD=block`, the
real SDK against the fake provider server, and a processor (`Service`, in this process so that its clock can be
moved on) receiving the app's spans over OTLP/HTTP. The key's weekly budget is spent by its first call; the next run
is refused before anything is sent; once the processor's clock shows the next ISO week (Monday 00:00 in the
configured zone) the same app's calls go out again."""

from __future__ import annotations

import json
import urllib.request
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

from costline.fingerprint import fingerprint
from costline.processor.config.settings import Address, Settings
from costline.processor.http.auth import hash_token
from costline.processor.service import Service
from costline.processor.units import period_ends, period_starts
from costline.testing.fake_provider import FakeProviderServer
from tests.e2e.test_guard import APP, run_app
from tests.polling import poll

KEY = "sk-e2e-weekly-budget-0003"
GUARD_TOKEN = "guard-token-weekly"
ZONE = "Europe/Berlin"
CONFIG = f"""
timezone: {ZONE}
orgs:
  - name: acme
    teams:
      - name: search
        users:
          - name: app
            keys:
              - {{name: weekly-app, fingerprint: {fingerprint(KEY)}, budget: {{weekly_usd: 0.0001}}}}
prices:
  - {{provider: openai, model: gpt-4o, input_per_mtok: 2.00, cache_read_per_mtok: 1.00, output_per_mtok: 8.00}}
api:
  tokens:
    - {{name: app, sha256: "{hash_token(GUARD_TOKEN)}", role: guard}}
"""


class Processor:
    """What `run_app` needs of a processor: its OTLP and API URLs."""

    def __init__(self, service: Service) -> None:
        self.otlp_url = f"{service.otlp_http.url}/v1/traces"
        self.api_url = service.admin.url


def remaining(api_url: str) -> Decimal:
    request = urllib.request.Request(f"{api_url}/api/v1/policy?key={fingerprint(KEY)}",
                                     headers={"Authorization": f"Bearer {GUARD_TOKEN}"})
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
        return Decimal(json.loads(response.read())["budget"]["remaining_usd"])


def test_a_weekly_budget_blocks_once_spent_and_allows_again_next_iso_week(tmp_path):
    (tmp_path / "costline.yaml").write_text(CONFIG)
    now = [datetime.now(timezone.utc)]  # the app's spans are stamped by the system clock: start the processor's there
    settings = Settings(config_path=tmp_path / "costline.yaml", db_url=f"sqlite:///{tmp_path / 'l.db'}",
                        otlp_http=Address("127.0.0.1", 0), otlp_grpc=None, http=Address("127.0.0.1", 0))
    service = Service(settings, clock=lambda: now[0]).start()
    processor = Processor(service)
    guard = {"COSTLINE_GUARD": "block", "COSTLINE_GUARD_URL": processor.api_url, "COSTLINE_GUARD_TOKEN": GUARD_TOKEN,
             "OPENAI_API_KEY": KEY}
    try:
        with FakeProviderServer() as provider:
            first = run_app(processor, provider, APP, **guard)
            by_call = {outcome["call"]: outcome for outcome in first}
            assert by_call["chat"]["ok"], by_call  # nothing spent yet this week
            poll(lambda: remaining(processor.api_url) <= 0, 30, lambda: str(remaining(processor.api_url)),
                 interval=0.1)
            sent = len(provider.requests)

            second = run_app(processor, provider, APP, **guard)
            assert len(provider.requests) == sent  # refused before anything was sent
            for outcome in second:
                assert outcome["error"] == "costline._errors.BudgetExceeded", outcome
                assert outcome["rule"] == "key acme/search/app/weekly-app weekly"

            zone = ZoneInfo(ZONE)
            monday = period_ends(period_starts(now[0], zone), zone)["weekly"]
            assert monday.weekday() == 0 and (monday.hour, monday.minute) == (0, 0)
            now[0] = monday + timedelta(minutes=5)  # the next ISO week, by the processor's clock
            poll(lambda: remaining(processor.api_url) > 0, 30, lambda: str(remaining(processor.api_url)),
                 interval=0.1)
            third = run_app(processor, provider, APP, **guard)
            chat = next(outcome for outcome in third if outcome["call"] == "chat")
            assert chat["ok"], third
            assert len(provider.requests) > sent
    finally:
        service.stop(1)
