"""Spans recorded from the real instrumentations, once per test session (each setup in its own subprocess, all in
parallel: peers patch the SDKs globally)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

RECORDER = Path(__file__).with_name("record.py")

SETUPS = ("costline", "otel-genai", "openllmetry", "openinference", "openllmetry+costline")


def _available(setup: str) -> bool:
    import importlib.util

    modules = {"otel-genai": "opentelemetry.instrumentation.genai.openai",
               "openllmetry": "opentelemetry.instrumentation.openai",
               "openinference": "openinference.instrumentation.openai"}
    return all(importlib.util.find_spec(modules[part]) is not None for part in setup.split("+") if part in modules)


def _record(setup: str) -> dict[str, ExportTraceServiceRequest] | str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TRACELOOP_", "ANTHROPIC_"))}
    done = subprocess.run([sys.executable, str(RECORDER), setup], capture_output=True, text=True, env=env, timeout=120)
    if done.returncode != 0:
        return done.stderr[-2000:]
    raw = json.loads(done.stdout.strip().splitlines()[-1])
    return {name: ExportTraceServiceRequest.FromString(base64.b64decode(b)) for name, b in raw.items()}


@pytest.fixture(scope="session")
def recordings() -> dict[str, dict[str, ExportTraceServiceRequest] | str | None]:
    with ThreadPoolExecutor(max_workers=len(SETUPS)) as pool:
        futures = {s: pool.submit(_record, s) for s in SETUPS if _available(s)}
        return {s: (futures[s].result() if s in futures else None) for s in SETUPS}


@pytest.fixture
def recorded(recordings, request):
    """`recorded(setup)` -> {scenario: ExportTraceServiceRequest}; skips when the peer is not installed."""

    def get(setup: str) -> dict[str, ExportTraceServiceRequest]:
        found = recordings[setup]
        if found is None:
            pytest.skip(f"{setup} is not installed")
        if isinstance(found, str):
            pytest.fail(f"recording {setup} failed:\n{found}")
        return found

    return get
