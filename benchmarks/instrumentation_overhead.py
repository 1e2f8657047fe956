"""Per-call overhead of instrumenting a non-streaming openai chat call, side by side in one run.

Variants, each in its own subprocess (instrumentations patch the SDK globally and not all undo it cleanly), run in
interleaved rounds so that machine noise hits all of them alike:

* ``baseline``     the real openai SDK on ``httpx2.MockTransport``, no instrumentation;
* ``costline``     Costline's plugin;
* ``official``     ``opentelemetry-instrumentation-genai-openai`` (OpenTelemetry's GenAI instrumentation);
* ``openllmetry``  Traceloop's ``opentelemetry-instrumentation-openai``.

Every instrumented variant uses the same SDK setup: a ``TracerProvider`` with a ``BatchSpanProcessor`` whose
exporter discards, so what is measured is the instrumentation, not an exporter. Each subprocess warms up, then
times batches of calls and reports the median per-call time; the script prints the median over rounds, the
microseconds each instrumentation adds over the baseline, and Costline's added cost as a ratio of each peer's.

    .venv/bin/python benchmarks/instrumentation_overhead.py [--rounds 5] [--calls 2000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

VARIANTS = ("baseline", "costline", "official", "openllmetry")


def _child(variant: str, calls: int, batches: int) -> None:
    import httpx2
    import openai
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    from costline.testing.fake_provider import mock_transport_handler

    class Discard(SpanExporter):
        def export(self, spans):  # noqa: ARG002
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Discard(), max_queue_size=100_000))
    if variant == "costline":
        from costline.instrumentation import CostlineInstrumentor

        CostlineInstrumentor().instrument(tracer_provider=provider)
    elif variant == "official":
        from opentelemetry.instrumentation.genai.openai import OpenAIInstrumentor

        OpenAIInstrumentor().instrument(tracer_provider=provider)
    elif variant == "openllmetry":
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor

        OpenAIInstrumentor().instrument(tracer_provider=provider)

    client = openai.OpenAI(api_key="sk-bench", http_client=httpx2.Client(transport=httpx2.MockTransport(mock_transport_handler)))
    messages = [{"role": "user", "content": "How much did we spend on LLMs this month?"}]

    def call() -> None:
        client.chat.completions.create(model="gpt-4o", messages=messages)

    for _ in range(300):  # warm-up: imports, caches, lazy initialisation
        call()
    per_call = []
    for _ in range(batches):
        start = time.perf_counter()
        for _ in range(calls):
            call()
        per_call.append((time.perf_counter() - start) / calls * 1e6)
    provider.shutdown()
    print(json.dumps({"variant": variant, "us_per_call": statistics.median(per_call)}))


def _run(variant: str, calls: int, batches: int) -> float:
    out = subprocess.run(
        [sys.executable, __file__, "--child", variant, "--calls", str(calls), "--batches", str(batches)],
        check=True, capture_output=True, text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])["us_per_call"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=1000, help="calls per timed batch")
    parser.add_argument("--batches", type=int, default=3, help="timed batches per subprocess")
    parser.add_argument("--child", choices=VARIANTS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.calls, args.batches)
        return

    results: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for round_ in range(args.rounds):
        order = VARIANTS[round_ % len(VARIANTS):] + VARIANTS[: round_ % len(VARIANTS)]  # rotate: no fixed position
        for variant in order:
            results[variant].append(_run(variant, args.calls, args.batches))
        print(f"round {round_ + 1}/{args.rounds}: " + ", ".join(f"{v} {results[v][-1]:.0f} µs" for v in VARIANTS),
              file=sys.stderr)

    median = {v: statistics.median(r) for v, r in results.items()}
    added = {v: median[v] - median["baseline"] for v in VARIANTS}
    print(f"\nopenai {__import__('openai').__version__}, non-streaming chat on httpx2.MockTransport, "
          f"{args.rounds} rounds x {args.batches} batches x {args.calls} calls (median)\n")
    print(f"{'variant':<13}{'µs/call':>10}{'added µs':>11}")
    for v in VARIANTS:
        print(f"{v:<13}{median[v]:>10.1f}{added[v]:>11.1f}")
    print()
    for peer in ("official", "openllmetry"):
        if added[peer] > 0:
            print(f"Costline adds {added['costline'] / added[peer]:.2f}x what {peer} adds "
                  f"({added['costline']:.1f} vs {added[peer]:.1f} µs)")
    print(f"Costline overhead relative to the bare call: {added['costline'] / median['baseline']:.1%}")


if __name__ == "__main__":
    main()
