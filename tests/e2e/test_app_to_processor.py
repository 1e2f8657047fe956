"""The whole path: an unmodified app under `opentelemetry-instrument` exports to `costline serve` (OTLP/gRPC, the
distro's default protocol), and the ledger shows cost per team matching list prices and overrides to the
cent-fraction. The oracle is a raw `genai_prices.calc_price` per call, not the processor's cached arithmetic."""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from genai_prices import Usage, calc_price

from costline.testing.fake_provider import FakeProviderServer
from tests.processor.served import serve, stop

APP = Path(__file__).parent / "apps" / "llm_app.py"
BIN = Path(sys.executable).parent

CONFIG = """
timezone: UTC
orgs:
  - name: acme
    budget: {monthly_usd: 3000}
    teams:
      - name: search
        budget: {monthly_usd: 2000}
      - name: platform
      - name: billing
prices:
  - {provider: openai, model: gpt-4o, input_per_mtok: 2.00, cache_read_per_mtok: 1.00, output_per_mtok: 8.00}
"""


@pytest.fixture(scope="module")
def processor(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("e2e")
    (workdir / "costline.yaml").write_text(CONFIG)
    served = serve(workdir, f"sqlite:///{workdir / 'l.db'}", grpc=True)
    yield served
    assert stop(served) == 0, served.log.read_text()


@pytest.fixture(scope="module")
def ledger(processor):
    with FakeProviderServer() as provider:
        env = {
            **os.environ,
            "OPENAI_API_KEY": "sk-e2e-processor",
            "OPENAI_BASE_URL": provider.openai_base_url,
            "ANTHROPIC_API_KEY": "sk-ant-e2e-processor",
            "ANTHROPIC_BASE_URL": provider.anthropic_base_url,
            "OTEL_SERVICE_NAME": "e2e-app",
            "OTEL_RESOURCE_ATTRIBUTES": "costline.org=acme,costline.team=platform",
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_LOGS_EXPORTER": "none",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{processor.grpc_address}",
            "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "openai,openai_v2,anthropic",
        }
        result = subprocess.run([str(BIN / "opentelemetry-instrument"), sys.executable, str(APP)], env=env,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
    # The exporter flushed on exit and the processor acknowledged only after its ledger commit.
    return processor.usage(group_by="team,model")


def list_price(model: str, provider: str, **tokens: int) -> Decimal:
    return calc_price(Usage(**tokens), model, provider_id=provider).total_price


def row(rows, team, model):
    matches = [r for r in rows if r["team"] == team and r["model"] == model]
    assert len(matches) == 1, (team, model, rows)
    return matches[0]


def test_override_price_for_gpt4o_snapshot(ledger):
    # llm_app: 2000 input of which 500 cached, 100 output, billed as gpt-4o-2024-08-06 -> the `gpt-4o` override
    expected = Decimal("1500") * Decimal("2.00") / 10**6 + Decimal("500") * Decimal("1.00") / 10**6 + \
        Decimal("100") * Decimal("8.00") / 10**6
    got = row(ledger, "platform", "gpt-4o-2024-08-06")
    assert Decimal(got["cost_usd"]) == expected


def test_list_prices_per_team(ledger):
    mini = row(ledger, "search", "gpt-4o-mini-2024-07-18")  # the fake's default usage: 120 in, 24 out
    assert Decimal(mini["cost_usd"]) == list_price("gpt-4o-mini-2024-07-18", "openai", input_tokens=120,
                                                   output_tokens=24)
    claude = row(ledger, "search", "claude-haiku-4-5")
    assert Decimal(claude["cost_usd"]) == list_price(
        "claude-haiku-4-5", "anthropic", input_tokens=1450, cache_read_tokens=1000, cache_write_tokens=200,
        output_tokens=80)
    embed = row(ledger, "billing", "text-embedding-3-small")
    assert Decimal(embed["cost_usd"]) > 0
