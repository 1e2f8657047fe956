"""Processor core throughput: `Pipeline.ingest` on prebuilt 1000-span requests, next to merely decoding them and
walking every attribute (the ceiling for any Python processor that looks at every attribute), in one run.

Rows (spans per CPU second of this process, best of `--rounds`):

1. decode + walk: `FromString` and every span's attributes (plus its resource's) into a dict;
2. normalise only: `FromString`, then `normalize_span` on every span (the other engineer's part, for reference);
3. pipeline.ingest: decoded requests through normalise → dedupe → price → attribute → ledger commit → metrics;
4. ingest_calls: the core alone (price, attribute, aggregate, one ledger transaction) on prebuilt `LLMCall`s.

Every round uses fresh trace and span ids, so the ledger's dedup never short-cuts work. SQLite on a temp file
(WAL, synchronous=FULL), as `costline serve` runs by default; `--db` takes a PostgreSQL URL too.

    .venv/bin/python benchmarks/processor_core.py [--requests 20] [--rounds 3] [--db URL] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import pstats
import random
import sys
import tempfile
import time
from pathlib import Path

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from costline.processor.clock import system_clock
from costline.processor.config.core import parse_config
from costline.processor.ledger import Ledger
from costline.processor.service import assemble_pipeline

SPANS = 1000
MODELS = [("openai", "gpt-4o"), ("openai", "gpt-4o-mini"), ("openai", "o4-mini"),
          ("anthropic", "claude-3-5-haiku-20241022"), ("anthropic", "claude-sonnet-4-5")]
CONFIG = {
    "orgs": [{"name": "acme", "budget": {"monthly_usd": 100000}, "teams": [
        {"name": f"team-{t}", "budget": {"monthly_usd": 1000},
         "users": [{"name": f"user-{t}-{u}", "budget": {"monthly_usd": 50}} for u in range(3)]} for t in range(20)]}],
    "prices": [{"provider": "openai", "model": "gpt-4o", "input_per_mtok": 2, "cache_read_per_mtok": 1,
                "output_per_mtok": 8}],
}


def kv(key: str, value: str | int | bool) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def llm_span(rng: random.Random, start_ns: int) -> Span:
    """A span as Costline's plugin emits it: 14 attributes, several models, teams and users, some cache and errors."""
    provider, model = rng.choice(MODELS)
    team, user = rng.randrange(20), rng.randrange(3)
    input_tokens = rng.randint(50, 20_000)
    span = Span(trace_id=rng.randbytes(16), span_id=rng.randbytes(8), name=f"chat {model}",
                kind=Span.SPAN_KIND_CLIENT, start_time_unix_nano=start_ns,
                end_time_unix_nano=start_ns + rng.randint(200, 9000) * 1_000_000, attributes=[
                    kv("gen_ai.operation.name", "chat"), kv("gen_ai.provider.name", provider),
                    kv("gen_ai.request.model", model), kv("gen_ai.response.model", model),
                    kv("gen_ai.response.id", f"chatcmpl-{rng.getrandbits(64):016x}"),
                    kv("gen_ai.request.stream", False), kv("gen_ai.usage.input_tokens", input_tokens),
                    kv("gen_ai.usage.output_tokens", rng.randint(1, 2000)),
                    kv("gen_ai.usage.cache_read.input_tokens", input_tokens // 2 if rng.random() < 0.3 else 0),
                    kv("server.address", f"api.{provider}.com"), kv("costline.team", f"team-{team}"),
                    kv("costline.project", f"project-{rng.randrange(10)}"),
                    kv("costline.user", f"user-{team}-{user}"),
                    kv("costline.api_key.fingerprint", f"{team:08x}{user:08x}"),  # a key belongs to its user
                ])
    if rng.random() < 0.02:
        span.status.code = Status.STATUS_CODE_ERROR
        span.attributes.append(kv("error.type", "rate_limit_error"))
    return span


def build_bodies(count: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    now = time.time_ns()
    resource = Resource(attributes=[kv("service.name", "bench"), kv("deployment.environment.name", "prod")])
    scope = InstrumentationScope(name="costline.instrumentation")
    return [ExportTraceServiceRequest(resource_spans=[ResourceSpans(resource=resource, scope_spans=[ScopeSpans(
        scope=scope, spans=[llm_span(rng, now - rng.randint(0, 3_600_000_000_000)) for _ in range(SPANS)])])])
        .SerializeToString() for _ in range(count)]


def plain(value: AnyValue) -> object:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


def timed(work, data) -> float:
    """Spans per CPU second of `work(data)`, which returns how many spans it handled."""
    gc.collect()
    started = time.process_time()
    spans = work(data)
    return spans / (time.process_time() - started)


def decode_walk(bodies: list[bytes]) -> int:
    spans = 0
    for body in bodies:
        for rs in ExportTraceServiceRequest.FromString(body).resource_spans:
            resource = {kv.key: plain(kv.value) for kv in rs.resource.attributes}
            for ss in rs.scope_spans:
                for span in ss.spans:
                    attrs = {kv.key: plain(kv.value) for kv in span.attributes}
                    attrs.update(resource)
                    spans += 1
    return spans


def normalise_only(bodies: list[bytes]) -> int:
    from costline.processor.ingest.normalize import normalize_span, resource_attributes

    spans = 0
    for body in bodies:
        for rs in ExportTraceServiceRequest.FromString(body).resource_spans:
            resource = resource_attributes(rs.resource)
            for ss in rs.scope_spans:
                for span in ss.spans:
                    normalize_span(span, resource, ss.scope.name)
                    spans += 1
    return spans


def to_calls(bodies: list[bytes]) -> list[list]:
    from costline.processor.ingest.normalize import normalize_span, resource_attributes

    batches = []
    for body in bodies:
        calls = []
        for rs in ExportTraceServiceRequest.FromString(body).resource_spans:
            resource = resource_attributes(rs.resource)
            for ss in rs.scope_spans:
                calls.extend(c for c in (normalize_span(s, resource, ss.scope.name) for s in ss.spans) if c)
        batches.append(calls)
    return batches


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20, help="1000-span requests per round (default 20)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--db", help="ledger URL (default: SQLite in a temp directory)")
    parser.add_argument("--profile", action="store_true", help="print the top functions of one ingest round")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        pipeline = assemble_pipeline(parse_config(CONFIG), Ledger(args.db or f"sqlite:///{Path(tmp) / 'bench.db'}"), clock=system_clock)
        pipeline.ingest(ExportTraceServiceRequest.FromString(build_bodies(1, seed=10_000)[0]))  # warm caches
        best: dict[str, float] = {}

        def record(name: str, value: float) -> None:
            best[name] = max(best.get(name, 0.0), value)

        for round_ in range(args.rounds):
            bodies = build_bodies(args.requests, seed=round_)
            record("decode + walk", timed(decode_walk, bodies))
            record("normalise only", timed(normalise_only, bodies))
            requests = [ExportTraceServiceRequest.FromString(b) for b in build_bodies(args.requests, 100 + round_)]
            record("pipeline.ingest", timed(lambda rs: sum(pipeline.ingest(r).accepted_spans for r in rs), requests))
            batches = to_calls(build_bodies(args.requests, seed=200 + round_))
            record("ingest_calls (core)", timed(lambda bs: sum(len(pipeline.ingest_calls(b)) for b in bs), batches))
        if args.profile:
            requests = [ExportTraceServiceRequest.FromString(b) for b in build_bodies(args.requests, 999)]
            profiler = cProfile.Profile()
            profiler.enable()
            for r in requests:
                pipeline.ingest(r)
            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(18)
        pipeline.close()

    ceiling = best["decode + walk"]
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, {args.requests} x {SPANS}-span requests, "
          f"best of {args.rounds} rounds, ledger {'SQLite' if not args.db else args.db.split(':')[0]}")
    print(f"{'':24}{'spans/s':>12}{'vs decode+walk':>18}")
    for name, value in best.items():
        print(f"{name:24}{value:12,.0f}{value / ceiling:17.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
