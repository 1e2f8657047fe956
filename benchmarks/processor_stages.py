"""Where a span's CPU time goes in `Pipeline.ingest`, stage by stage, on `processor_throughput.py`'s two workloads.

One process, the same service as the throughput benchmark, each stage timed with `time.process_time` per 1000-span
request (µs per span; median/minimum over the requests): the ceiling (decode with the official classes and walk every
attribute) for scale, then decoding as the receivers do (`FromString`), normalise, dedupe within the batch, resolve
+ price + identity keys (`Entry`), the ledger write (one transaction, commit included), the in-memory series. On a
shared machine compare runs interleaved, not one run against another.

`--keys N` first bills N calls spread over the last 72 hours (the default `dedup_retention_hours`), so that the
ledger's identity-key index is the size it is at steady state (N = retention × call rate; 1M is ~4 calls a second):
a fresh ledger's small index hides what each written key costs once the index is large.

    .venv/bin/python benchmarks/processor_stages.py [--requests 10] [--keys 1000000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

sys.path.insert(0, str(Path(__file__).parent))
import processor_throughput as bench  # noqa: E402 - the sibling benchmark's workloads and service

from costline.processor.ingest.normalize import dedupe_calls, normalize_span, resource_attributes  # noqa: E402
from costline.processor.model import Entry, LLMCall, Owner, call_keys  # noqa: E402
from costline.processor.units import NS_PER_HOUR  # noqa: E402

STAGES = ("decode + walk (the ceiling)", "decode", "normalise", "dedupe", "resolve + price + keys",
          "ledger write", "series")


def timed(pipeline: object, bodies: list[bytes]) -> dict[str, list[float]]:
    state = pipeline._state  # type: ignore[attr-defined]
    times: dict[str, list[float]] = {name: [] for name in STAGES}
    for body in bodies:
        marks = [time.process_time()]
        request = ExportTraceServiceRequest.FromString(body)
        for rs in request.resource_spans:
            resource = {kv.key: bench._value(kv.value) for kv in rs.resource.attributes}
            for ss in rs.scope_spans:
                for span in ss.spans:
                    {kv.key: bench._value(kv.value) for kv in span.attributes}.update(resource)
        marks.append(time.process_time())
        # Decoded again: this stage times decoding alone, and normalise then reads a message the walk has not read.
        request = ExportTraceServiceRequest.FromString(body)
        marks.append(time.process_time())
        calls = []
        for rs in request.resource_spans:
            resource = resource_attributes(rs.resource)
            for ss in rs.scope_spans:
                calls.extend(normalize_span(span, resource, ss.scope.name) for span in ss.spans)
        marks.append(time.process_time())
        calls = dedupe_calls([c for c in calls if c is not None])
        marks.append(time.process_time())
        entries = []
        for call in calls:
            owner, conflict = state.hierarchy.resolve(call.owner, call.api_key_fingerprint, call.environment)
            # as `Pipeline.ingest_calls` prices a call: in its price context, naming the units it cannot price
            rates = state.pricer.rates(call.provider, call.model, call.start_time_unix_nano, call.service_tier,
                                       call.processing)
            if rates is None:
                entries.append(Entry(call, owner, None, call_keys(call), conflict))
            else:
                cost, unpriced = rates.price(call)
                entries.append(Entry(call, owner, cost, call_keys(call), conflict, unpriced))
        marks.append(time.process_time())
        fresh = pipeline.ledger.record(entries, retention_hours=72, now=int(time.time()))  # type: ignore[attr-defined]
        marks.append(time.process_time())
        state.aggregator.add(fresh)
        marks.append(time.process_time())
        for name, start, end in zip(STAGES, marks, marks[1:], strict=False):
            times[name].append((end - start) * 1e6 / bench.SPANS_PER_REQUEST)
    return times


def prefill(ledger: object, count: int, *, hours: int = 72, batch: int = 5000) -> None:
    """Bill `count` calls (one owner and model, fresh ids) started over the last `hours`, oldest first."""
    now = time.time_ns()
    owner = Owner("acme", "prefill", "", "", "", "", "", "prod")
    for first in range(0, count, batch):
        entries = []
        for i in range(first, min(count, first + batch)):
            call = LLMCall("openai", "gpt-4o", "gpt-4o", "chat", input_tokens=100, output_tokens=10, has_usage=True,
                           response_id=f"chatcmpl-{i}", trace_id=os.urandom(16), span_id=os.urandom(8),
                           start_time_unix_nano=now - (count - i) * hours * NS_PER_HOUR // count)
            entries.append(Entry(call, owner, 1, call_keys(call)))
        ledger.record(entries, retention_hours=hours, now=int(time.time()))  # type: ignore[attr-defined]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10)
    parser.add_argument("--keys", type=int, default=0, help="calls billed before timing (steady-state key index)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        service = bench.start_service(Path(tmp), bench.CONFIG)
        try:
            pipeline = service.pipeline  # type: ignore[attr-defined]
            prefill(pipeline.ledger, args.keys)
            bench.bench_pipeline(pipeline, bench.build_requests(3, seed=998, owners=bench.REALISTIC_OWNERS))
            bench.bench_pipeline(pipeline, bench.build_requests(3, seed=997))  # warm: prices, memo, pages
            workloads = {"worst case": bench.build_requests(args.requests, seed=1),
                         "realistic": bench.build_requests(args.requests, seed=2001, owners=bench.REALISTIC_OWNERS)}
            print(f"µs per span, median/minimum over {args.requests} requests of 1000 spans")
            for name, bodies in workloads.items():
                times = timed(pipeline, bodies)
                medians = {stage: sorted(v)[len(v) // 2] for stage, v in times.items()}
                print(f"{name}: " + "  ".join(f"{stage} {medians[stage]:.1f}/{min(v):.1f}"
                                              for stage, v in times.items())
                      + f"  | pipeline total {sum(m for s, m in medians.items() if s != STAGES[0]):.1f}")
                print(f"{name}: normalise / ceiling {medians['normalise'] / medians[STAGES[0]]:.2f}, "
                      f"decode + normalise / ceiling "
                      f"{(medians['normalise'] + medians[STAGES[1]]) / medians[STAGES[0]]:.2f}")
        finally:
            service.stop(1)  # type: ignore[attr-defined]
    return 0


if __name__ == "__main__":
    sys.exit(main())
