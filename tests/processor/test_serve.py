"""`costline serve` and the other commands as a user runs them: subprocess, real pipeline, real ledger."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from decimal import Decimal
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from costline.testing.local import free_port, http_get
from tests.polling import poll
from tests.postgres import require_postgres
from tests.processor.otlp import llm_request
from tests.processor.served import CONFIG, Served, serve, stop

COSTLINE = [sys.executable, "-m", "costline.cli"]
GOOD_COST = Decimal("0.0036")  # 1000 input at $2 + 200 output at $8 per MTok (the override)


def run(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*COSTLINE, *args], capture_output=True, text=True, cwd=cwd, timeout=60,
                          env={**os.environ, **(env or {})})


def post(url: str, body: bytes) -> int:
    request = urllib.request.Request(url, body, {"Content-Type": "application/x-protobuf"})
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
        return response.status


def test_check_config(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(CONFIG)
    result = run("check-config", str(good))
    assert result.returncode == 0, result.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text(CONFIG.replace("monthly_usd: 500", "monthly_usd: -500"))
    result = run("check-config", str(bad))
    assert result.returncode != 0
    assert "monthly_usd" in result.stderr


@pytest.mark.parametrize("command", [("usage",), ("reprice", "--since", "2026-11-01")])
def test_ledger_commands_say_the_ledger_is_unreachable_without_a_traceback(command: tuple[str, ...]) -> None:
    port = free_port()  # nothing listens there
    result = run(*command, "--db", f"postgresql+psycopg://postgres@127.0.0.1:{port}/test?connect_timeout=2")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith(f"costline {command[0]}: cannot open the ledger at "), result.stderr


def test_serve_without_config_from_env_then_sigterm(tmp_path: Path) -> None:
    otlp, api = free_port(), free_port()
    env = {**os.environ, "COSTLINE_DB": f"sqlite:///{tmp_path / 'env.db'}", "COSTLINE_OTLP_HTTP": f"127.0.0.1:{otlp}",
           "COSTLINE_OTLP_GRPC": "off", "COSTLINE_HTTP": f"127.0.0.1:{api}"}
    env.pop("COSTLINE_CONFIG", None)
    process = subprocess.Popen([*COSTLINE, "serve"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
    poll(lambda: http_get(f"http://127.0.0.1:{api}/readyz", timeout=1) is not None, 30,
         lambda: process.stdout.read().decode(), interval=0.1, ignoring=(OSError,), process=process)
    assert post(f"http://127.0.0.1:{otlp}/v1/traces", llm_request(2, team=None).SerializeToString()) == 200
    rows = json.loads(urllib.request.urlopen(  # noqa: S310
        f"http://127.0.0.1:{api}/api/v1/usage?group_by=team&format=json", timeout=5).read())["rows"]
    assert [(r["team"], r["requests"]) for r in rows] == [("unattributed", 2)]
    assert (tmp_path / "env.db").exists()
    process.send_signal(signal.SIGTERM)
    assert process.wait(20) == 0


def test_grpc_export_reload_on_sighup_and_usage_cli(tmp_path: Path, serving: list[Served]) -> None:
    grpc_port = free_port()
    db_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    served = serve(tmp_path, db_url, extra_env={"COSTLINE_OTLP_GRPC": f"127.0.0.1:{grpc_port}"})
    serving.append(served)
    provider = TracerProvider(resource=Resource.create({"service.name": "t", "costline.team": "marketing"}))
    provider.add_span_processor(SimpleSpanProcessor(GrpcExporter(endpoint=f"http://127.0.0.1:{grpc_port}",
                                                                 insecure=True)))
    with provider.get_tracer("costline.instrumentation").start_as_current_span("chat gpt-4o", attributes={
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
        "gen_ai.usage.input_tokens": 1000, "gen_ai.usage.output_tokens": 200,
    }):
        pass
    provider.shutdown()
    rows = served.usage("team,model")
    assert [(r["team"], r["model"], r["requests"]) for r in rows] == [("marketing", "gpt-4o", 1)]
    assert rows[0]["cost_usd"] == "0.003600000000"  # money in JSON: an exact decimal string

    # A new price for a model nobody priced, picked up by SIGHUP without a restart.
    assert post(served.otlp_url, llm_request(1, model="acme-llama", team="marketing").SerializeToString()) == 200
    config = tmp_path / "costline.yaml"
    config.write_text(CONFIG + "  - {provider: openai, model: acme-llama, input_per_mtok: 1.0, output_per_mtok: 1.0}\n")
    served.process.send_signal(signal.SIGHUP)
    # The reload is done when the service logs it (the signal only queues it for the main thread).
    poll(lambda: f"reloaded {config}" in served.log.read_text(), 20, served.log.read_text, process=served.process)
    assert post(served.otlp_url, llm_request(1, model="acme-llama", team="marketing").SerializeToString()) == 200
    by_model = {r["model"]: r for r in served.usage("model")}
    assert Decimal(by_model["acme-llama"]["cost_usd"]) == Decimal("0.0012")  # only the span after the reload
    assert served.process.poll() is None

    # An invalid config is refused by the API, naming the key; the running one stays.
    config.write_text(CONFIG.replace("monthly_usd: 500", "monthly_usd: -500"))
    request = urllib.request.Request(f"{served.api_url}/api/v1/reload", b"", method="POST")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)  # noqa: S310
    assert caught.value.code == 400 and "monthly_usd" in json.loads(caught.value.read())["error"]
    assert stop(served) == 0
    config.write_text(CONFIG)

    # The CLI reads the same ledger and prints the same CSV as the API.
    result = run("usage", "--db", db_url, "--group-by", "team,model", "--format", "csv", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("team,model,")
    assert any(line.startswith("marketing,gpt-4o,") for line in lines)

    # Reprice: the acme-llama span recorded unpriced before the reload gets its price.
    config.write_text(CONFIG + "  - {provider: openai, model: acme-llama, input_per_mtok: 1.0, output_per_mtok: 1.0}\n")
    result = run("reprice", "--config", str(config), "--db", db_url, "--since", "2000-01-01", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    result = run("usage", "--db", db_url, "--group-by", "model", "--format", "json", cwd=tmp_path)
    by_model = {r["model"]: r for r in json.loads(result.stdout)["rows"]}
    assert Decimal(by_model["acme-llama"]["cost_usd"]) == Decimal("0.0024")


@pytest.mark.postgres
def test_serve_on_postgresql(tmp_path: Path, serving: list[Served]) -> None:
    import psycopg

    require_postgres()
    schema = f"edge_{os.getpid()}"
    db_url = f"postgresql+psycopg://postgres@127.0.0.1:5432/test?options=-csearch_path%3D{schema}"
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        served = serve(tmp_path, db_url)
        serving.append(served)
        request = llm_request(3, team="marketing", start_ns=time.time_ns())
        assert post(served.otlp_url, request.SerializeToString()) == 200
        assert post(served.otlp_url, request.SerializeToString()) == 200  # the exporter's retry
        rows = served.usage("team")
        assert [(r["team"], r["requests"]) for r in rows] == [("marketing", 3)]
        assert Decimal(rows[0]["cost_usd"]) == 3 * GOOD_COST
        assert stop(served) == 0
        again = serve(tmp_path, db_url)
        serving.append(again)
        team_budgets = [b for b in again.budgets()["budgets"] if b["scope"] == "team" and "marketing" in
                        str(b["owner"]) and b["period"] == "monthly"]
        assert Decimal(team_budgets[0]["spent_usd"]) == 3 * GOOD_COST
        assert stop(again) == 0
    finally:
        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
