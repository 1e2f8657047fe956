"""What every Python recording script shares: a tracer provider whose finished spans are kept in memory, the fake
provider as a real HTTP server, and writing the fixture `tests/processor/sources/recorded.py` describes.

The spans are encoded by the OTLP exporter's own encoder (`encode_spans`, what `OTLPSpanExporter` sends), then
written as OTLP/JSON (protobuf's JSON mapping with hex trace and span ids, as the spec has it). Each workload step
is flushed as one export, so a fixture replays the batches an application would have sent.

Run a script from the repository root with the instrumentation's package installed (its docstring names it):

    PYTHONPATH=instrumentation/src:processor/src .venv/bin/python scripts/record-spans/python/<source>.py
"""

from __future__ import annotations

import base64
import json
import platform
import sys
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "tests" / "fixtures" / "spans"
RESOURCE = {"service.name": "recorder", "deployment.environment.name": "test", "costline.team": "search"}
_IDS = ("traceId", "spanId", "parentSpanId")


def usage_header(input: int, output: int, cached: int = 0, cache_write: int = 0, reasoning: int = 0
                 ) -> dict[str, str]:
    """`x-fake-usage`: the exact usage the fake provider reports (semconv totals: `input` includes the cache)."""
    return {"x-fake-usage": json.dumps({"input": input, "cached": cached, "cache_write": cache_write,
                                        "output": output, "reasoning": reasoning})}


class Recorder:
    """One tracer provider (in-memory exporter) and the exports recorded so far, one per workload step."""

    def __init__(self, provider: TracerProvider | None = None) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = provider or TracerProvider(resource=Resource.create(RESOURCE))
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.requests: list[dict[str, Any]] = []

    def step(self, run: Callable[[], object], *, until: Callable[[list[Any]], bool] | None = None,
             timeout_s: float = 10.0) -> None:
        """Run one workload step and keep the spans it finished as one export; with `until`, first wait for the
        finished spans to satisfy it (instrumentations that end their spans on a thread of their own)."""
        self.exporter.clear()
        run()
        if until is not None:
            deadline = time.monotonic() + timeout_s
            while not until(list(self.exporter.get_finished_spans())):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{run.__name__}: the instrumentation ended no span awaited in {timeout_s} s")
                time.sleep(0.05)
        self.flush()

    def flush(self) -> None:
        self.provider.force_flush()
        spans = self.exporter.get_finished_spans()
        self.exporter.clear()
        if spans:
            self.requests.append(otlp_json(encode_spans(spans)))


def otlp_json(message: Any) -> dict[str, Any]:
    """An ExportTraceServiceRequest as OTLP/JSON (ids as hex, not protobuf's base64)."""
    document = json_format.MessageToDict(message)
    for resource_spans in document.get("resourceSpans", []):
        for scope_spans in resource_spans.get("scopeSpans", []):
            for span in scope_spans.get("spans", []):
                for key in _IDS:
                    if key in span:
                        span[key] = base64.b64decode(span[key]).hex()
    return document


def write_fixture(source: str, scenario: str, *, packages: list[str], script: str, workload: str,
                  requests: list[dict[str, Any]], expected: list[dict[str, Any]], known_failure: str = "") -> Path:
    """Write `tests/fixtures/spans/<source>/<scenario>.json` with the versions of `packages` as installed.
    `known_failure` says why Costline does not bill the workload exactly yet (the replay test then expects it to
    fail, strictly: the day it passes, the note must go)."""
    path = FIXTURES / source / f"{scenario}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "source": source,
        "package": " + ".join(packages),
        "version": " + ".join(version(p) for p in packages),
        "runtime": f"python {platform.python_version()}",
        "recorded_by": f"scripts/record-spans/python/{script}",
        "workload": workload,
        "requests": requests,
        "expected": expected,
        **({"known_failure": known_failure} if known_failure else {}),
    }
    path.write_text(json.dumps(document, indent=1, sort_keys=False) + "\n")
    print(f"wrote {path.relative_to(ROOT)}: {len(requests)} exports, {len(expected)} calls", file=sys.stderr)
    return path
