"""The HTTP server's own cost: OTLP/HTTP ingest and `/metrics` scrapes over a real loopback socket.

What `costline serve` runs on its two HTTP listeners (`HttpServer` with `OTLPHttpReceiver`, and with `AdminApi`), in
this process, against a client in a process of its own (`http.client`, kept-alive connections as exporters and
Prometheus hold them), so the server's CPU time is this process's alone. The pipeline behind the receiver only
counts spans: what is measured is the socket, HTTP parsing and framing, the receiver's decode and the response.

Phases, each timed in the client (wall, median per request) and in the server (CPU per request):

- `ingest`: POST /v1/traces of a 1000-span protobuf export (LLM spans, 14 attributes each), kept alive;
- `small`: the same with a 1-span export (the per-request overhead, nearly nothing else);
- `healthz`: GET /healthz on one kept-alive connection (a whole response; what a scrape's request pays);
- `healthz-new`: GET /healthz on a new connection each;
- `scrape`: GET /metrics of a registry with `--series` series, to the last byte, plain and gzip.

Run it on two source trees to compare servers, e.g. the code before a change from `git archive`:

    .venv/bin/python benchmarks/http_server.py [--requests 300] [--series 20000] [--rounds 3]
    git archive <commit> processor/src instrumentation/src | tar -x -C /tmp/before
    PYTHONPATH=/tmp/before/processor/src:/tmp/before/instrumentation/src \\
        .venv/bin/python benchmarks/http_server.py
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import subprocess
import sys
import time
from types import SimpleNamespace

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
from prometheus_client import CollectorRegistry, Counter

from costline.processor.clock import system_clock

PROTOBUF = {"Content-Type": "application/x-protobuf"}


def export(spans: int) -> bytes:
    def attribute(key: str, value: str | int) -> KeyValue:
        any_value = AnyValue(int_value=value) if isinstance(value, int) else AnyValue(string_value=value)
        return KeyValue(key=key, value=any_value)

    made = []
    for i in range(spans):
        made.append(Span(trace_id=i.to_bytes(16, "big"), span_id=(i + 1).to_bytes(8, "big"), name="chat gpt-4o",
                         start_time_unix_nano=1_767_225_600_000_000_000 + i, end_time_unix_nano=1_767_225_601_000_000_000 + i,
                         attributes=[attribute("gen_ai.operation.name", "chat"),
                                     attribute("gen_ai.provider.name", "openai"),
                                     attribute("gen_ai.request.model", "gpt-4o"),
                                     attribute("gen_ai.response.model", "gpt-4o-2024-08-06"),
                                     attribute("gen_ai.response.id", f"chatcmpl-{i}"),
                                     attribute("gen_ai.usage.input_tokens", 1000 + i),
                                     attribute("gen_ai.usage.output_tokens", 200 + i % 50),
                                     attribute("gen_ai.usage.cache_read.input_tokens", i % 300),
                                     attribute("costline.org", "acme"), attribute("costline.team", f"team-{i % 20}"),
                                     attribute("costline.project", f"project-{i % 10}"),
                                     attribute("costline.user", f"user-{i % 50}"),
                                     attribute("costline.key.fingerprint", f"{i % 5:016x}"),
                                     attribute("server.address", "api.openai.com")]))
    request = ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=made)])])
    return request.SerializeToString()


def client(otlp_port: int, api_port: int) -> None:
    """For each line `phase count` on stdin, run the phase and print the seconds per request (wall, in here)."""
    bodies = {"ingest": export(1000), "small": export(1)}
    kept = {port: http.client.HTTPConnection("127.0.0.1", port, timeout=600) for port in (otlp_port, api_port)}
    buffer = memoryview(bytearray(1 << 20))
    for command in sys.stdin:
        phase, count_text = command.split()
        times = []
        for _ in range(int(count_text)):
            start = time.perf_counter()
            if phase in bodies:
                connection = kept[otlp_port]
                connection.request("POST", "/v1/traces", body=bodies[phase], headers=PROTOBUF)
            elif phase == "healthz-new":
                connection = http.client.HTTPConnection("127.0.0.1", api_port, timeout=600)
                connection.request("GET", "/healthz")
            else:
                connection = kept[api_port]
                headers = {"Accept-Encoding": "gzip"} if phase == "scrape-gzip" else {}
                connection.request("GET", "/healthz" if phase == "healthz" else "/metrics", headers=headers)
            response = connection.getresponse()
            while response.readinto(buffer):
                pass
            times.append(time.perf_counter() - start)
            assert response.status == 200, (phase, response.status)
            if phase == "healthz-new":
                connection.close()
        print(json.dumps(times), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300, help="requests per phase and round (scrapes: /10)")
    parser.add_argument("--series", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--client", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        client(*args.client)
        return

    from costline.processor.config.settings import Address
    from costline.processor.http import server as server_module
    from costline.processor.http.api import AdminApi
    from costline.processor.http.auth import BearerAuth
    from costline.processor.http.otlp_http import OTLPHttpReceiver
    from costline.processor.http.server import HttpServer
    from costline.processor.ingest.pipeline import IngestResult
    from costline.processor.ingest.receivers import ReceiverStats

    class Counting:
        def ingest(self, request: ExportTraceServiceRequest) -> IngestResult:
            spans = sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
            return IngestResult(accepted_spans=spans, rejected_spans=0, error_message="")

    registry = CollectorRegistry()
    counter = Counter("bench_calls", "calls by owner", ["team", "model"], registry=registry)
    for i in range(args.series):
        counter.labels(f"team-{i}", "gpt-4o").inc(i)
    receiver = OTLPHttpReceiver(Counting(), auth=BearerAuth(None), max_body_bytes=16 << 20, stats=ReceiverStats())
    otlp = HttpServer(Address("127.0.0.1", 0), receiver, "otlp-http").start()
    api = HttpServer(Address("127.0.0.1", 0), AdminApi(SimpleNamespace(registry=registry), ("team",), clock=system_clock), "api").start()
    process = subprocess.Popen([sys.executable, __file__, "--client", str(otlp.port), str(api.port)],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    phases = [("ingest", args.requests), ("small", args.requests), ("healthz", args.requests),
              ("healthz-new", args.requests), ("scrape", max(args.requests // 10, 3)),
              ("scrape-gzip", max(args.requests // 10, 3))]
    print(f"server: {server_module.__file__}; {args.series} series; {args.rounds} rounds")
    results: dict[str, list[tuple[float, float]]] = {phase: [] for phase, _ in phases}
    try:
        for _ in range(args.rounds):
            for phase, count in phases:
                cpu = time.process_time()
                process.stdin.write(f"{phase} {count}\n")
                process.stdin.flush()
                times = json.loads(process.stdout.readline())
                results[phase].append((statistics.median(times), (time.process_time() - cpu) / count))
    finally:
        process.stdin.close()
        process.wait(60)
        otlp.stop(1)
        api.stop(1)
    print(f"{'phase':<12} {'wall median per request, per round (ms)':<44} server CPU per request, per round (ms)")
    for phase, rows in results.items():
        walls = ", ".join(f"{wall * 1000:.3f}" for wall, _ in rows)
        cpus = ", ".join(f"{cpu * 1000:.3f}" for _, cpu in rows)
        print(f"{phase:<12} {walls:<44} {cpus}")


if __name__ == "__main__":
    main()
