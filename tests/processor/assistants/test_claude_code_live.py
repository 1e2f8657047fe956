"""The real Claude Code CLI (`@anthropic-ai/claude-code`, pinned in `claude-code/package.json`, installed by
`make test-deps`) run non-interactively against the fake provider, its telemetry exported to a real `costline serve`:
each Messages API request it made is billed once, to the developer its account maps to, with its own cost beside
Costline's price — over OTLP/HTTP protobuf, OTLP/HTTP JSON and OTLP/gRPC."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from costline.testing.fake_provider import FakeProviderServer
from tests.polling import poll
from tests.processor.served import CONFIG, Served, serve

CLAUDE = Path(__file__).with_name("claude-code") / "node_modules" / ".bin" / "claude"
MODEL = "claude-sonnet-4-5"
"""A model genai-prices lists ($3 / $15 per MTok), so that Costline's price and Claude Code's own can be compared."""
IDENTITIES = """\
assistants:
  identities:
    - {email: Alice@Acme.com, user: alice}
  default_team: marketing
"""

pytestmark = pytest.mark.skipif(not CLAUDE.exists(), reason="`make test-deps` installs the Claude Code CLI")


def run_claude(home: Path, provider: FakeProviderServer, served: Served, protocol: str, prompt: str,
               email: str) -> None:
    """`claude -p PROMPT` as a developer would run it, with telemetry on; the process exits after flushing its logs."""
    endpoint = served.otlp_url.removesuffix("/v1/traces")
    if protocol == "grpc":
        endpoint = f"http://{served.grpc_address}"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
        "ANTHROPIC_BASE_URL": provider.anthropic_base_url, "ANTHROPIC_API_KEY": "sk-ant-costline-test",
        "CLAUDE_CODE_ENABLE_TELEMETRY": "1", "OTEL_LOGS_EXPORTER": "otlp", "OTEL_METRICS_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_PROTOCOL": protocol, "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_LOGS_EXPORT_INTERVAL": "200", "OTEL_METRIC_EXPORT_INTERVAL": "500",
        # Signed in with an API key, Claude Code knows no e-mail: an administrator sets it as a resource attribute
        # (managed settings' `env`), as docs/coding-assistants.md says.
        "OTEL_RESOURCE_ATTRIBUTES": f"user.email={email}",
        "DISABLE_AUTOUPDATER": "1",
    }
    done = subprocess.run([str(CLAUDE), "-p", prompt, "--model", MODEL], env=env, cwd=home, capture_output=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr.decode(errors="replace")


def usage(served: Served, db_url: str, workdir: Path) -> list[dict]:
    """`costline usage`, the command (it reads the ledger itself), by developer, team, model and tool."""
    done = subprocess.run([sys.executable, "-m", "costline.cli", "usage", "--config", str(workdir / "costline.yaml"),
                           "--db", db_url, "--format", "json", "--group-by", "org,team,user,model,service"],
                          capture_output=True, timeout=60, check=True)
    return json.loads(done.stdout)["rows"]


@pytest.mark.parametrize("protocol", ["http/protobuf", "http/json", "grpc"])
def test_claude_code_requests_are_billed_once_to_the_mapped_developer(tmp_path, serving, protocol):
    (tmp_path / "costline.yaml").write_text(CONFIG + IDENTITIES)
    db_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    served = serve(tmp_path, db_url, grpc=protocol == "grpc")
    serving.append(served)
    home = tmp_path / "home"
    home.mkdir()
    with FakeProviderServer() as provider:
        run_claude(home, provider, served, protocol, "hi", "alice@acme.com")
        run_claude(home, provider, served, protocol, "hello again", "mallory@elsewhere.example")
        requests = [path for path, _, _ in provider.requests if path.split("?")[0].endswith("/v1/messages")]

    def billed() -> list[dict] | None:
        rows = usage(served, db_url, tmp_path)
        return rows if sum(int(r["requests"]) for r in rows) >= len(requests) else None

    rows = poll(billed, 30, lambda: f"not billed; serve log:\n{served.log.read_text()}")
    assert sum(int(r["requests"]) for r in rows) == len(requests)  # once each: as many as the provider answered
    by_user = {(r["org"], r["team"], r["user"]): r for r in rows}
    alice = by_user[("acme", "engineering", "alice")]  # alice's team and org come from `orgs:`
    unmapped = by_user[("acme", "marketing", "")]  # an unmapped account: the default team, no user, still billed
    for row in (alice, unmapped):
        assert row["model"] == MODEL and row["service"] == "claude-code"
        assert int(row["requests"]) >= 1 and int(row["unpriced_requests"]) == 0
        # Claude Code's own figure beside Costline's price: the fake provider's 120 in / 24 out per request at
        # $3 / $15 per MTok is $0.00072 a request, by both.
        assert Decimal(row["reported_cost_usd"]) == Decimal(row["cost_usd"]) == Decimal("0.00072") * int(row["requests"])
    assert int(alice["input_tokens"]) == 120 * int(alice["requests"])
    text = served.metrics()
    assert "alice@acme.com" not in text.lower() and "mallory" not in text  # e-mails are never labels
    assert f'costline_assistant_requests_total{{outcome="unmapped",tool="claude-code"}} {int(unmapped["requests"])}.0' in text
