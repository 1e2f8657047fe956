"""Re-record `tests/fixtures/logs/claude-code/*.json`: what the real Claude Code CLI exports as OTLP logs.

    make claude-code && python scripts/record_assistant_logs.py

Runs `claude -p` (the version `tests/processor/assistants/claude-code/package.json` pins) against
`costline.testing.fake_provider`, with telemetry on and `OTEL_EXPORTER_OTLP_PROTOCOL=http/json` to a local receiver
that keeps every `/v1/logs` body as it came, and writes one fixture per scenario: the export requests, and the calls
they must bill (from the usage the fake provider was asked to answer with, via `ANTHROPIC_CUSTOM_HEADERS`).
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from costline.testing.fake_provider import FakeProviderServer

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "tests" / "processor" / "assistants" / "claude-code"
CLAUDE = PACKAGE / "node_modules" / ".bin" / "claude"
OUT = ROOT / "tests" / "fixtures" / "logs" / "claude-code"
MODEL = "claude-sonnet-4-5"
SCENARIOS = {
    # name: (usage the fake provider answers with, the call it must bill: Anthropic's uncached input)
    "chat": ({"input": 120, "output": 24},
             {"input_tokens": 120, "output_tokens": 24, "reported_cost_usd": 0.00072}),
    "cached": ({"input": 1000, "cached": 600, "cache_write": 200, "output": 50},
               {"input_tokens": 200, "cache_read_tokens": 600, "cache_write_tokens": 200, "output_tokens": 50,
                "reported_cost_usd": 0.00228}),
}


class _Capture(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    bodies: list[bytes] = []

    def do_POST(self) -> None:  # noqa: N802
        raw = self.rfile.read(int(self.headers.get("content-length") or 0))
        if self.headers.get("content-encoding") == "gzip":
            raw = gzip.decompress(raw)
        if self.path == "/v1/logs":
            self.bodies.append(raw)
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


def record(name: str, usage: dict[str, int], expected: dict[str, object], version: str) -> Path:
    _Capture.bodies = []
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), _Capture)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    with FakeProviderServer() as provider, tempfile.TemporaryDirectory() as home:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home,
            "ANTHROPIC_BASE_URL": provider.anthropic_base_url, "ANTHROPIC_API_KEY": "sk-ant-costline-test",
            "ANTHROPIC_CUSTOM_HEADERS": f"x-fake-usage: {json.dumps(usage)}",
            "CLAUDE_CODE_ENABLE_TELEMETRY": "1", "OTEL_LOGS_EXPORTER": "otlp", "OTEL_METRICS_EXPORTER": "none",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json",
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{receiver.server_address[1]}",
            "OTEL_LOGS_EXPORT_INTERVAL": "200", "OTEL_RESOURCE_ATTRIBUTES": "user.email=alice@acme.com",
            "DISABLE_AUTOUPDATER": "1",
        }
        subprocess.run([str(CLAUDE), "-p", "hi", "--model", MODEL], env=env, cwd=home, check=True,
                       capture_output=True, timeout=120)
        calls = sum(path.split("?")[0].endswith("/v1/messages") for path, _, _ in provider.requests)
    receiver.shutdown()
    fixture = {
        "source": "claude-code", "package": "@anthropic-ai/claude-code", "version": version,
        "runtime": "native binary (npm optional dependency @anthropic-ai/claude-code-linux-x64)",
        "recorded_by": "scripts/record_assistant_logs.py",
        "format": "https://code.claude.com/docs/en/monitoring-usage (Events: API request event)",
        "workload": f"claude -p hi --model {MODEL} against costline.testing.fake_provider answering {usage}",
        "account": {"email": "alice@acme.com"},
        "requests": [json.loads(body) for body in _Capture.bodies],
        "expected": [{"provider": "anthropic", "model": MODEL, "operation": "chat", **expected}] * calls,
    }
    path = OUT / f"{name}.json"
    path.write_text(json.dumps(fixture, indent=1) + "\n")
    return path


def main() -> None:
    version = json.loads((PACKAGE / "package.json").read_text())["dependencies"]["@anthropic-ai/claude-code"]
    OUT.mkdir(parents=True, exist_ok=True)
    for name, (usage, expected) in SCENARIOS.items():
        print(record(name, usage, expected, version), file=sys.stderr)


if __name__ == "__main__":
    main()
