"""The scenario: one service is instrumented (real SDKs, spans over OTLP/HTTP into a real `costline serve` and its
ledger), another calls the provider directly (an uninstrumented HTTP client, as a cron job with curl would). The
provider's admin reports are built from what the fake provider actually served, and served by a local server in
the documented format. `costline reconcile` (the real CLI, a subprocess) then shows ~0 drift for the instrumented
key and the direct calls as untracked spend of the owner their identity is mapped to — for both providers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import httpx2
import pytest
from sqlalchemy import create_engine

from costline.fingerprint import fingerprint
from costline.processor.ledger.reconciliation import ReconciliationStore
from costline.testing.fake_provider import DEFAULT_USAGE, FakeProviderServer
from tests.processor.reports.reconcile.admin_server import ANTHROPIC_KEY, OPENAI_KEY, AdminReportServer, Served
from tests.processor.served import serve, stop

SEARCH_OPENAI = "sk-search-instrumented-0001"
SEARCH_ANTHROPIC = "sk-ant-search-instrumented-0001"
CRON_OPENAI = "sk-cron-direct-0002"
NOTEBOOK_ANTHROPIC = "sk-ant-notebook-direct-0002"
STRAY_OPENAI = "sk-stray-unmapped-0003"
PROVIDER_IDS = {  # what the provider calls each secret key, and the project / workspace it belongs to
    SEARCH_OPENAI: ("key_search", "proj_search"), CRON_OPENAI: ("key_cron", "proj_ops"),
    STRAY_OPENAI: ("key_stray", "proj_lab"),
    SEARCH_ANTHROPIC: ("apikey_01search", "wrkspc_01search"), NOTEBOOK_ANTHROPIC: ("apikey_01nb", "wrkspc_01support"),
}

CONFIG = f"""\
timezone: UTC
orgs:
  - name: acme
    teams:
      - name: search
        users:
          - name: alice
            keys:
              - {{name: search-svc, fingerprint: {fingerprint(SEARCH_OPENAI)}}}
              - {{name: search-claude, fingerprint: {fingerprint(SEARCH_ANTHROPIC)}}}
      - name: billing
      - name: support
reconcile:
  identities:
    - {{provider: openai, api_key_id: key_search, key: search-svc}}
    - {{provider: openai, api_key_id: key_cron, team: billing}}
    - {{provider: anthropic, api_key_id: apikey_01search, key: search-claude}}
    - {{provider: anthropic, workspace_id: wrkspc_01support, team: support}}
"""


def _instrumented_service(otlp_url: str, provider: FakeProviderServer) -> None:
    import anthropic
    import openai
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    from costline.instrumentation import CostlineInstrumentor

    tracer_provider = TracerProvider(resource=Resource.create({"service.name": "search"}))
    tracer_provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=otlp_url)))
    instrumentor = CostlineInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider)
    try:
        client = openai.OpenAI(api_key=SEARCH_OPENAI, base_url=provider.openai_base_url, max_retries=0)
        for usage in ({"input": 2000, "cached": 500, "output": 100}, {"input": 800, "cached": 0, "output": 40}):
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}],
                                           extra_headers={"x-fake-usage": json.dumps(usage)})
        claude = anthropic.Anthropic(api_key=SEARCH_ANTHROPIC, base_url=provider.anthropic_base_url, max_retries=0)
        claude.messages.create(model="claude-haiku-4-5", max_tokens=100, messages=[{"role": "user", "content": "hi"}],
                               extra_headers={"x-fake-usage": json.dumps(
                                   {"input": 2650, "cached": 1000, "cache_write": 200, "output": 80})})
        tracer_provider.force_flush()
    finally:
        instrumentor.uninstrument()
        tracer_provider.shutdown()


def _direct_service(provider: FakeProviderServer) -> None:
    """No SDK, no instrumentation: plain HTTP, as curl in a cron job."""
    with httpx2.Client() as http:
        for key in (CRON_OPENAI, CRON_OPENAI, STRAY_OPENAI):
            http.post(f"{provider.openai_base_url}/chat/completions", headers={"authorization": f"Bearer {key}"},
                      json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]}).raise_for_status()
        http.post(f"{provider.anthropic_base_url}/v1/messages",
                  headers={"x-api-key": NOTEBOOK_ANTHROPIC, "anthropic-version": "2023-06-01",
                           "x-fake-usage": json.dumps({"input": 5000, "cached": 0, "cache_write": 0, "output": 300})},
                  json={"model": "claude-haiku-4-5", "max_tokens": 10,
                        "messages": [{"role": "user", "content": "x"}]}).raise_for_status()


def _books(provider: FakeProviderServer, day: date) -> dict[str, list[Served]]:
    """The provider's own record of what it served and to whom."""
    out: dict[str, list[Served]] = {"openai": [], "anthropic": []}
    for path, headers, body in provider.requests:
        usage = {**DEFAULT_USAGE, **json.loads(headers.get("x-fake-usage", "{}"))}
        model = json.loads(body)["model"]
        secret = headers.get("x-api-key") or headers["authorization"].removeprefix("Bearer ")
        if path.endswith("/v1/messages"):
            api_key_id, workspace = PROVIDER_IDS[secret]
            out["anthropic"].append(Served(day, model, api_key_id, workspace,
                                           usage["input"] - usage["cached"] - usage["cache_write"], usage["cached"],
                                           usage["cache_write"], usage["output"]))
        else:
            api_key_id, project = PROVIDER_IDS[secret]
            served = {"gpt-4o-mini": "gpt-4o-mini-2024-07-18"}.get(model, model)
            out["openai"].append(Served(day, served, api_key_id, project, usage["input"] - usage["cached"],
                                        usage["cached"], 0, usage["output"]))
    return out


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("reconcile")
    (workdir / "costline.yaml").write_text(CONFIG)
    db_url = f"sqlite:///{workdir / 'ledger.db'}"
    served = serve(workdir, db_url)
    try:
        with FakeProviderServer() as provider:
            _instrumented_service(served.otlp_url, provider)
            _direct_service(provider)
        today = datetime.now(timezone.utc).date()
        books = _books(provider, today)
    finally:
        assert stop(served) == 0, served.log.read_text()
    return workdir, db_url, today, books


def _reconcile(scenario, provider: str, key: str, *extra: str) -> dict:
    workdir, db_url, today, books = scenario
    with AdminReportServer(books[provider], today - timedelta(days=2), today + timedelta(days=1),
                           provider=provider) as admin:
        result = subprocess.run(
            [sys.executable, "-m", "costline.cli", "reconcile", "--provider", provider, "--from",
             (today - timedelta(days=2)).isoformat(), "--to", today.isoformat(),
             "--admin-key-env", "TEST_ADMIN_KEY", "--api-base", admin.url, "--config",
             str(workdir / "costline.yaml"), "--db", db_url, "--format", "json", *extra],
            env={**os.environ, "TEST_ADMIN_KEY": key}, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert key not in result.stdout + result.stderr
    return json.loads(result.stdout)


def _owner_rows(doc: dict, kind: str, name: str) -> list[dict]:
    return [r for r in doc["rows"] if (r["owner_kind"], r["owner"]) == (kind, name)]


def test_openai_instrumented_key_has_no_drift_and_direct_calls_are_untracked_spend_of_their_owner(scenario):
    doc = _reconcile(scenario, "openai", OPENAI_KEY)
    [search] = _owner_rows(doc, "key", "search-svc")
    assert search["identity"] == "api_key_id:key_search" and search["model"] == "gpt-4o-mini"
    assert search["provider_uncached_input_tokens"] == search["ledger_uncached_input_tokens"] == 2300
    assert search["provider_cache_read_tokens"] == search["ledger_cache_read_tokens"] == 500
    assert Decimal(search["provider_cost_usd"]) > 0
    assert abs(Decimal(search["drift_usd"])) < Decimal("1e-9") and Decimal(search["untracked_usd"]) == 0

    [cron] = _owner_rows(doc, "team", "billing")  # two direct calls no span saw, billed to the key's owner
    assert cron["ledger_requests"] == 0 and cron["provider_requests"] == 2
    assert Decimal(cron["untracked_usd"]) == Decimal(cron["provider_cost_usd"]) > 0
    [stray] = _owner_rows(doc, "untracked", "untracked")  # an identity nobody mapped
    assert stray["identity"] == "api_key_id:key_stray" and Decimal(stray["untracked_usd"]) > 0
    totals = doc["totals"]
    assert Decimal(totals["untracked_usd"]) == Decimal(cron["untracked_usd"]) + Decimal(stray["untracked_usd"])
    assert Decimal(totals["drift_share"]) == 0
    assert "billed_usd" in totals  # the cost report was read too


def test_anthropic_instrumented_key_has_no_drift_and_direct_calls_are_untracked_spend_of_their_owner(scenario):
    doc = _reconcile(scenario, "anthropic", ANTHROPIC_KEY)
    [search] = _owner_rows(doc, "key", "search-claude")
    assert (search["provider_uncached_input_tokens"], search["provider_cache_read_tokens"],
            search["provider_cache_write_tokens"], search["provider_output_tokens"]) == (1450, 1000, 200, 80)
    assert [search[f"ledger_{t}_tokens"] for t in ("uncached_input", "cache_read", "cache_write", "output")] == \
        [1450, 1000, 200, 80]
    assert abs(Decimal(search["drift_usd"])) < Decimal("1e-9") and Decimal(search["untracked_usd"]) == 0
    # The notebook's key is not mapped, its workspace is: the workspace's owner carries the spend.
    [notebook] = _owner_rows(doc, "team", "support")
    assert notebook["identity"] == "workspace_id:wrkspc_01support"
    assert Decimal(notebook["untracked_usd"]) == Decimal(notebook["provider_cost_usd"]) > 0


def test_stored_untracked_spend_is_readable_per_owner_for_the_chargeback(scenario):
    workdir, db_url, today, _ = scenario
    _reconcile(scenario, "openai", OPENAI_KEY)
    _reconcile(scenario, "anthropic", ANTHROPIC_KEY)
    engine = create_engine(db_url)
    try:
        spend = ReconciliationStore(engine).untracked_spend(today - timedelta(days=2), today + timedelta(days=1))
    finally:
        engine.dispose()
    owners = {(s["provider"], s["owner_kind"], s["owner"], s["org"], s["team"]) for s in spend}
    assert owners == {("openai", "team", "billing", "acme", "billing"),
                      ("openai", "untracked", "untracked", "", "untracked"),
                      ("anthropic", "team", "support", "acme", "support")}
    assert all(isinstance(s["untracked_usd"], Decimal) and s["untracked_usd"] > 0 for s in spend)
