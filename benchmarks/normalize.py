"""`normalize_span` throughput next to merely decoding and walking every attribute, in one run.

For each workload, 1000-span `ExportTraceServiceRequest`s with 10 attributes per span are serialised up front; then,
per round, both variants decode the bodies from bytes (`FromString`) and

* decode + walk: put every span's attributes (decoded `AnyValue`s) into a dict — the floor for any processor that
  looks at every attribute;
* normalize: `resource_attributes` once per ResourceSpans, `normalize_span` on every span.

Workloads: `llm` (Costline's own spans), `peers` (OpenLLMetry, OpenInference and official-instrumentation spans in
equal parts), `app` (HTTP/DB spans, no LLM call: the fast-reject path), `mixed` (90 % app, 10 % llm — a trace).
Figures are spans per CPU second, best of `--rounds`; ratio = normalize / decode+walk.

    .venv/bin/python benchmarks/normalize.py [--requests 20] [--rounds 5]
"""

from __future__ import annotations

import argparse
import gc
import random
import time
from collections.abc import Callable

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from costline.processor.ingest.normalize import normalize_span, resource_attributes

SPANS_PER_REQUEST = 1000
MODELS = ["gpt-4o", "gpt-4o-mini", "o4-mini", "claude-sonnet-4-5"]


def kv(key: str, value: str | int | bool) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def costline_attrs(rng: random.Random) -> tuple[str, list[KeyValue]]:
    model = rng.choice(MODELS)
    tokens = rng.randint(50, 20_000)
    return "costline.instrumentation", [
        kv("gen_ai.operation.name", "chat"), kv("gen_ai.provider.name", "openai"), kv("gen_ai.request.model", model),
        kv("gen_ai.response.model", model), kv("gen_ai.response.id", f"chatcmpl-{rng.getrandbits(64):016x}"),
        kv("gen_ai.usage.input_tokens", tokens), kv("gen_ai.usage.output_tokens", rng.randint(1, 2000)),
        kv("gen_ai.usage.cache_read.input_tokens", tokens // 3), kv("costline.team", f"team-{rng.randrange(20)}"),
        kv("costline.api_key.fingerprint", f"{rng.getrandbits(64):016x}"),
    ]


def openllmetry_attrs(rng: random.Random) -> tuple[str, list[KeyValue]]:
    model = rng.choice(MODELS)
    return "opentelemetry.instrumentation.openai.v1", [
        kv("gen_ai.operation.name", "chat"), kv("gen_ai.provider.name", "openai"), kv("gen_ai.request.model", model),
        kv("gen_ai.is_streaming", False), kv("gen_ai.openai.api_base", "https://api.openai.com/v1/"),
        kv("gen_ai.response.model", model), kv("gen_ai.response.id", f"chatcmpl-{rng.getrandbits(64):016x}"),
        kv("gen_ai.usage.total_tokens", 1050), kv("gen_ai.usage.input_tokens", 1000),
        kv("gen_ai.usage.output_tokens", 50),
    ]


def openinference_attrs(rng: random.Random) -> tuple[str, list[KeyValue]]:
    return "openinference.instrumentation.openai", [
        kv("llm.provider", "openai"), kv("llm.system", "openai"), kv("llm.model_name", rng.choice(MODELS)),
        kv("llm.token_count.total", 1050), kv("llm.token_count.prompt", 1000), kv("llm.token_count.completion", 50),
        kv("llm.token_count.prompt_details.cache_read", 400), kv("llm.token_count.completion_details.reasoning", 10),
        kv("llm.finish_reason", "stop"), kv("openinference.span.kind", "LLM"),
    ]


def official_attrs(rng: random.Random) -> tuple[str, list[KeyValue]]:
    model = rng.choice(MODELS)
    return "opentelemetry.instrumentation.genai.openai", [
        kv("gen_ai.operation.name", "chat"), kv("gen_ai.provider.name", "openai"), kv("gen_ai.request.model", model),
        kv("server.address", "api.openai.com"), kv("gen_ai.response.model", model),
        kv("gen_ai.response.id", f"chatcmpl-{rng.getrandbits(64):016x}"), kv("gen_ai.usage.input_tokens", 1000),
        kv("gen_ai.usage.output_tokens", 50), kv("gen_ai.usage.cache_read.input_tokens", 400),
        kv("openai.response.service_tier", "default"),
    ]


def app_attrs(rng: random.Random) -> tuple[str, list[KeyValue]]:
    if rng.random() < 0.5:
        return "opentelemetry.instrumentation.fastapi", [
            kv("http.request.method", "GET"), kv("http.route", "/orders/{id}"), kv("url.scheme", "https"),
            kv("url.path", f"/orders/{rng.randrange(10**6)}"), kv("server.address", "shop.example"),
            kv("server.port", 443), kv("http.response.status_code", 200), kv("network.protocol.version", "1.1"),
            kv("user_agent.original", "Mozilla/5.0"), kv("client.address", "10.0.0.7"),
        ]
    return "opentelemetry.instrumentation.sqlalchemy", [
        kv("db.system.name", "postgresql"), kv("db.namespace", "shop"), kv("db.operation.name", "SELECT"),
        kv("db.collection.name", "orders"), kv("db.query.text", "SELECT * FROM orders WHERE id = $1"),
        kv("server.address", "db"), kv("server.port", 5432), kv("network.peer.address", "10.0.0.9"),
        kv("db.response.returned_rows", rng.randrange(100)), kv("db.client.connection.pool.name", "main"),
    ]


Maker = Callable[[random.Random], tuple[str, list[KeyValue]]]
WORKLOADS: dict[str, Callable[[random.Random], Maker]] = {
    "llm": lambda rng: costline_attrs,
    "peers": lambda rng: rng.choice((openllmetry_attrs, openinference_attrs, official_attrs)),
    "app": lambda rng: app_attrs,
    "mixed": lambda rng: costline_attrs if rng.random() < 0.1 else app_attrs,
}


def build_bodies(workload: str, count: int, seed: int = 7) -> list[bytes]:
    rng = random.Random(seed)
    resource = Resource(attributes=[kv("service.name", "bench"), kv("deployment.environment.name", "prod")])
    bodies = []
    for _ in range(count):
        by_scope: dict[str, list[Span]] = {}
        for _ in range(SPANS_PER_REQUEST):
            scope, attrs = WORKLOADS[workload](rng)(rng)
            start = time.time_ns() - rng.randrange(3_600_000_000_000)
            by_scope.setdefault(scope, []).append(Span(
                trace_id=rng.randbytes(16), span_id=rng.randbytes(8), parent_span_id=rng.randbytes(8), name="op",
                start_time_unix_nano=start, end_time_unix_nano=start + 5_000_000, attributes=attrs))
        request = ExportTraceServiceRequest(resource_spans=[ResourceSpans(resource=resource, scope_spans=[
            ScopeSpans(scope=InstrumentationScope(name=name), spans=spans) for name, spans in by_scope.items()])])
        bodies.append(request.SerializeToString())
    return bodies


def _plain(value: AnyValue) -> object:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


def decode_walk(bodies: list[bytes]) -> int:
    spans = 0
    for body in bodies:
        for rs in ExportTraceServiceRequest.FromString(body).resource_spans:
            for ss in rs.scope_spans:
                for span in ss.spans:
                    attrs = {kv.key: _plain(kv.value) for kv in span.attributes}  # noqa: F841 - the work measured
                    spans += 1
    return spans


def normalize(bodies: list[bytes]) -> int:
    spans = 0
    for body in bodies:
        for rs in ExportTraceServiceRequest.FromString(body).resource_spans:
            resource = resource_attributes(rs.resource)
            for ss in rs.scope_spans:
                scope = ss.scope.name
                for span in ss.spans:
                    normalize_span(span, resource, scope)
                    spans += 1
    return spans


def best_rate(work: Callable[[list[bytes]], int], bodies: list[bytes], rounds: int) -> float:
    best = 0.0
    for _ in range(rounds):
        gc.collect()
        started = time.process_time()
        spans = work(bodies)
        best = max(best, spans / (time.process_time() - started))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20, help="1000-span requests per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(f"{'workload':<8} {'decode+walk spans/s':>20} {'normalize spans/s':>18} {'ratio':>6}")
    for workload in WORKLOADS:
        bodies = build_bodies(workload, args.requests)
        walk = best_rate(decode_walk, bodies, args.rounds)
        norm = best_rate(normalize, bodies, args.rounds)
        print(f"{workload:<8} {walk:>20,.0f} {norm:>18,.0f} {norm / walk:>6.2f}")


if __name__ == "__main__":
    main()
