"""Record the spans of Node LLM instrumentations into Costline's fixtures (`tests/fixtures/spans/<source>/`).

    python scripts/record-spans/node/record.py [SOURCE ...]      # default: every source below

For each source this starts `costline.testing.fake_provider` (the OpenAI and Anthropic wire formats, exact usage per
call from the `x-fake-usage` header) and a capture server for OTLP/HTTP JSON, runs the source's recorder script with
the machine's `node` in its package folder (`npm ci` there first: `make record-node-spans` does both), and writes the
fixture `tests/processor/sources/recorded.py` describes: every export the Node exporter sent, as sent, and what the
fake provider billed per call (`expected`) — or, for a call whose spans cannot carry its usage, `usage_missing`.

`run` is also what the live Node test calls, with the exporter pointed at a real `costline serve` instead.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from costline.testing.fake_provider import FakeProviderServer

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "spans"

# The usage each call of the workload asks the fake provider for: `common.cjs`'s USAGE (keep the two equal).
# `input` is the semconv total, cache included.
USAGE = {
    "chat": {"input": 1000, "cached": 0, "cache_write": 0, "output": 50},
    "stream": {"input": 800, "cached": 0, "cache_write": 0, "output": 40},
    "cached": {"input": 2000, "cached": 1500, "cache_write": 0, "output": 30},
    "anthropic_cached": {"input": 3000, "cached": 2000, "cache_write": 500, "output": 60},
    "anthropic_stream": {"input": 700, "cached": 0, "cache_write": 0, "output": 20},
    "embeddings": {"input": 64, "cached": 0, "cache_write": 0, "output": 0},
}
GPT = "gpt-4o-mini-2024-07-18"  # what the fake provider answers `gpt-4o-mini` with, as OpenAI does
CLAUDE = "claude-haiku-4-5"
EMBEDDING = "text-embedding-3-small"


def billed(provider: str, model: str, call: str, operation: str = "chat", **more: Any) -> dict[str, Any]:
    """What the provider billed for the workload's `call`, in the fixture's units (input is the uncached input)."""
    usage = USAGE[call]
    row: dict[str, Any] = {"provider": provider, "model": model, "operation": operation,
                           "input_tokens": usage["input"] - usage["cached"] - usage["cache_write"]}
    for unit, key in (("cache_read_tokens", "cached"), ("cache_write_tokens", "cache_write"),
                      ("output_tokens", "output")):
        if usage[key]:
            row[unit] = usage[key]
    return {**row, **more}


def missing(provider: str, model: str, operation: str, note: str) -> dict[str, Any]:
    """A call whose spans carry no usage: billed as usage missing, never as $0 silently."""
    return {"provider": provider, "model": model, "operation": operation, "usage_missing": True, "note": note}


@dataclass(frozen=True)
class Recorder:
    folder: str
    """The package folder (its package.json and lockfile) the script runs in."""
    script: str
    workload: str
    expected: Callable[[], list[dict[str, Any]]]
    scenario: str = "node-workload"
    source: str = ""
    """The `LLMCall.source` the fixture is filed under (default: the recorder's name)."""
    env: tuple[tuple[str, str], ...] = ()
    cross_export: bool = False
    """Filed under `tests/fixtures/spans-cross-export/` instead: a workload billed once only when its spans arrive in
    one export (dedupe within a batch), kept apart until the cross-export identity rule covers it."""


RECORDERS: dict[str, Recorder] = {
    "vercel-ai": Recorder(
        "vercel-ai", "vercel_ai.cjs",
        "generateText, streamText and generateText with 1500 cached tokens on @ai-sdk/openai (chat completions); "
        "generateText with cache read and write and streamText on @ai-sdk/anthropic; embed on @ai-sdk/openai",
        lambda: [billed("openai", GPT, "chat"), billed("openai", GPT, "stream"), billed("openai", GPT, "cached"),
                 billed("anthropic", CLAUDE, "anthropic_cached"), billed("anthropic", CLAUDE, "anthropic_stream"),
                 billed("openai", EMBEDDING, "embeddings", "embeddings")],
    ),
    "openllmetry-js": Recorder(
        "peers", "openllmetry_js.cjs",
        "openai chat, stream (include_usage), chat with 1500 cached tokens (its embeddings are not instrumented: "
        "no call made); anthropic chat with cache read and write, stream",
        lambda: [billed("openai", GPT, "chat"),
                 {"provider": "openai", "model": GPT, "operation": "chat", "input_tokens": 4, "output_tokens": 6,
                  "note": "stream: the span carries js-tiktoken estimates of the message texts (TRACELOOP_ENRICH_TOKENS"
                          ", on by default), never the usage chunk (the provider billed 800 in, 40 out); nothing on "
                          "the span tells a stream, so the estimate is billed as is"},
                 {**billed("openai", GPT, "cached"), "input_tokens": 2000, "cache_read_tokens": 0,
                  "note": "cached: the span has no cached-token count, so the 1500 cached tokens are billed as input"},
                 billed("anthropic", CLAUDE, "anthropic_cached"), billed("anthropic", CLAUDE, "anthropic_stream")],
    ),
    # Read as the Python instrumentation's spans are (same `llm.*` attributes and cache meaning): source `openinference`.
    "openinference": Recorder(
        "peers", "openinference_js.cjs",
        "openai chat, stream (include_usage), chat with 1500 cached tokens, embeddings",
        lambda: [billed("openai", GPT, "chat"),
                 missing("openai", "gpt-4o-mini", "chat", "stream: no token counts on the span, include_usage or not "
                         "(and the model is the requested one)"),
                 billed("openai", GPT, "cached"),
                 missing("openai", EMBEDDING, "embeddings", "embeddings: no token counts on the span")],
        scenario="node-openai-js",
    ),
    "otel-openai-js": Recorder(
        "peers", "otel_openai_js.cjs",
        "openai chat, stream (include_usage), chat with 1500 cached tokens, embeddings",
        lambda: [billed("openai", GPT, "chat"), billed("openai", GPT, "stream"),
                 {**billed("openai", GPT, "cached"), "input_tokens": 2000, "cache_read_tokens": 0,
                  "note": "no cached-token count on any span (streamed or not): the 1500 cached tokens are billed "
                          "as input"},
                 billed("openai", EMBEDDING, "embeddings", "embeddings")],
    ),
    "langfuse": Recorder(
        "peers", "langfuse_js.cjs",
        "openai chat, stream (include_usage), chat with 1500 cached tokens, embeddings, through observeOpenAI",
        lambda: [billed("openai", GPT, "chat"),
                 billed("openai", "gpt-4o-mini", "stream", note="stream: the model is the requested one"),
                 billed("openai", GPT, "cached"),
                 missing("openai", EMBEDDING, "embeddings", "embeddings: the generation has no usage details")],
    ),
    # Both OpenLLMetry-JS's span and the Anthropic SDK's own (on by default in @anthropic-ai/sdk) for each Anthropic
    # call, the SDK's a child of OpenLLMetry's, each exported on its own: still one call each.
    "openllmetry-js-with-sdk-spans": Recorder(
        "peers", "openllmetry_js.cjs", "anthropic chat with cache read and write, stream, with the SDK's own spans on",
        lambda: [billed("anthropic", CLAUDE, "anthropic_cached"), billed("anthropic", CLAUDE, "anthropic_stream")],
        scenario="node-with-anthropic-sdk-spans", source="openllmetry-js", cross_export=True,
        env=(("COSTLINE_RECORD_SDK_SPANS", "1"), ("COSTLINE_RECORD_ONLY", "anthropic")),
    ),
    # The TypeScript SDK's spans are the Python SDK's (scope `com.anthropic.sdk.typescript`): source `anthropic-sdk`.
    "anthropic-sdk": Recorder(
        "peers", "anthropic_ts_sdk.cjs", "anthropic chat with cache read and write, stream",
        lambda: [billed("anthropic", CLAUDE, "anthropic_cached"), billed("anthropic", CLAUDE, "anthropic_stream")],
        scenario="node-anthropic-ts-sdk",
    ),
}


class _Capture(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _CaptureHandler)
        self.bodies: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1/traces"


class _CaptureHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Capture  # type: ignore[assignment]

    def _body(self) -> bytes:
        if self.headers.get("transfer-encoding", "").lower() != "chunked":  # Node's exporter streams its body
            return self.rfile.read(int(self.headers.get("content-length") or 0))
        parts = []
        while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
            parts.append(self.rfile.read(size))
            self.rfile.readline()
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
            pass
        return b"".join(parts)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def do_POST(self) -> None:  # noqa: N802
        raw = self._body()
        if self.headers.get("content-encoding") == "gzip":
            raw = gzip.decompress(raw)
        if "json" not in (self.headers.get("content-type") or ""):
            self.send_response(415)  # the recorder must export OTLP/JSON: the fixture is JSON
            self.send_header("content-length", "0")
            self.end_headers()
            return
        with self.server.lock:
            self.server.bodies.append(json.loads(raw))
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"{}")


def node_version() -> str:
    return subprocess.run(["node", "--version"], check=True, capture_output=True, text=True).stdout.strip()


def run(name: str, otlp_url: str | None = None, timeout: float = 120) -> dict[str, Any]:
    """Run the recorder `name` against a fresh fake provider; its spans go to `otlp_url` when given, else to a
    capture server and into the returned fixture document's `requests`."""
    recorder = RECORDERS[name]
    source = recorder.source or name
    folder = HERE / recorder.folder
    if not (folder / "node_modules").is_dir():
        raise RuntimeError(f"{folder}/node_modules is missing: run `npm ci` there (make record-node-spans does)")
    capture = _Capture() if otlp_url is None else None
    with FakeProviderServer() as fake:
        if capture is not None:
            threading.Thread(target=capture.serve_forever, daemon=True).start()
        env = {**os.environ, "COSTLINE_RECORD_OPENAI_BASE_URL": fake.openai_base_url,
               "COSTLINE_RECORD_ANTHROPIC_BASE_URL": fake.anthropic_base_url,
               "COSTLINE_RECORD_OTLP": otlp_url or capture.url,  # type: ignore[union-attr]
               # Peers read these too; none of the recorders may reach a real service.
               "OPENAI_BASE_URL": fake.openai_base_url, "ANTHROPIC_BASE_URL": fake.anthropic_base_url,
               "OPENAI_API_KEY": "sk-record", "ANTHROPIC_API_KEY": "sk-ant-record",
               "TRACELOOP_TELEMETRY": "false", "OTEL_SDK_DISABLED": "false", **dict(recorder.env)}
        try:
            done = subprocess.run(["node", recorder.script], cwd=folder, env=env, capture_output=True, text=True,
                                  timeout=timeout)
        finally:
            if capture is not None:
                capture.shutdown()
                capture.server_close()
    if done.returncode != 0:
        raise RuntimeError(f"{recorder.script} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    produced = json.loads(done.stdout.strip().splitlines()[-1])
    return {
        "source": source, "package": produced["package"], "version": produced["version"],
        "runtime": f"node {node_version()}",
        "recorded_by": f"scripts/record-spans/node/record.py {name} ({recorder.folder}/{recorder.script})",
        "workload": f"{recorder.workload}; against costline.testing.fake_provider",
        "requests": capture.bodies if capture is not None else [],
        "expected": recorder.expected(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sources", nargs="*", metavar="SOURCE", help=f"recorders of {', '.join(RECORDERS)} (default: all)")
    sources = parser.parse_args(argv).sources or list(RECORDERS)
    if unknown := set(sources) - set(RECORDERS):
        parser.error(f"unknown sources {sorted(unknown)}: known are {', '.join(RECORDERS)}")
    for name in sources:
        document = run(name)
        if not document["requests"]:
            raise SystemExit(f"{name}: the recorder exported nothing")
        root = FIXTURES.parent / "spans-cross-export" if RECORDERS[name].cross_export else FIXTURES
        path = root / document["source"] / f"{RECORDERS[name].scenario}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(document, indent=1) + "\n")
        print(f"{path.relative_to(REPO)}: {len(document['requests'])} exports, {document['version']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
