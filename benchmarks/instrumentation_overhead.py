"""Per-call overhead of instrumenting a non-streaming openai chat call, side by side in one run.

Variants, each in its own long-lived subprocess (instrumentations patch the SDK globally and not all undo it
cleanly):

* ``baseline``     the real openai SDK on ``httpx2.MockTransport``, no instrumentation;
* ``costline``     Costline's plugin;
* ``official``     ``opentelemetry-instrumentation-genai-openai`` (OpenTelemetry's GenAI instrumentation);
* ``openllmetry``  Traceloop's ``opentelemetry-instrumentation-openai``.

Every instrumented variant uses the same SDK setup: a ``TracerProvider`` with a ``BatchSpanProcessor`` whose
exporter discards, so what is measured is the instrumentation, not an exporter.

Why lockstep: on a shared 2-core machine the speed of the same code drifts by tens of percent within seconds, more
than the overheads measured. So the four subprocesses stay alive and take turns: each round, every variant times one
short batch of calls, one right after the other, in a rotating order. A variant's added cost is the median over
rounds of its batch minus the baseline's batch *of the same round* (paired differences cancel the drift that a
round shares), and the ratios are computed from those paired medians.

    .venv/bin/python benchmarks/instrumentation_overhead.py [--rounds 40] [--calls 200]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

VARIANTS = ("baseline", "costline", "official", "openllmetry")


def _child(variant: str) -> None:
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
    print("ready", flush=True)
    for line in sys.stdin:  # one batch per request from the parent, timed here, answered in µs per call
        calls = int(line)
        if calls <= 0:
            break
        start = time.perf_counter()
        for _ in range(calls):
            call()
        print(json.dumps((time.perf_counter() - start) / calls * 1e6), flush=True)
    provider.shutdown()


class _Child:
    """One variant's subprocess, kept alive across rounds."""

    def __init__(self, variant: str) -> None:
        self.variant = variant
        self.process = subprocess.Popen([sys.executable, __file__, "--child", variant], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True)
        if self._read() != "ready":
            raise RuntimeError(f"{variant}: did not start")

    def _read(self) -> str:
        line = self.process.stdout.readline()  # type: ignore[union-attr]
        if not line:
            raise RuntimeError(f"{self.variant}: exited with {self.process.wait()}")
        return line.strip()

    def batch(self, calls: int) -> float:
        self.process.stdin.write(f"{calls}\n")  # type: ignore[union-attr]
        self.process.stdin.flush()  # type: ignore[union-attr]
        return float(json.loads(self._read()))

    def close(self) -> None:
        self.process.stdin.write("0\n")  # type: ignore[union-attr]
        self.process.stdin.flush()  # type: ignore[union-attr]
        self.process.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--calls", type=int, default=200, help="calls per timed batch")
    parser.add_argument("--child", choices=VARIANTS)
    args = parser.parse_args()
    if args.child:
        _child(args.child)
        return

    children = [_Child(v) for v in VARIANTS]
    results: dict[str, list[float]] = {v: [] for v in VARIANTS}
    try:
        for round_ in range(args.rounds):
            shift = round_ % len(children)  # rotate: no variant always runs first or last
            for child in children[shift:] + children[:shift]:
                results[child.variant].append(child.batch(args.calls))
    finally:
        for child in children:
            child.close()

    base = results["baseline"]
    median = {v: statistics.median(r) for v, r in results.items()}
    added = {v: statistics.median(t - b for t, b in zip(results[v], base, strict=True)) for v in VARIANTS}
    print(f"\nopenai {__import__('openai').__version__}, non-streaming chat on httpx2.MockTransport, "
          f"{args.rounds} lockstep rounds x {args.calls} calls per variant\n")
    print(f"{'variant':<13}{'µs/call':>10}{'min':>10}{'added µs':>11}")
    for v in VARIANTS:
        print(f"{v:<13}{median[v]:>10.1f}{min(results[v]):>10.1f}{added[v]:>11.1f}")
    print("\n(µs/call: median batch; added: median over rounds of the batch minus the same round's baseline)\n")
    for peer in ("official", "openllmetry"):
        if added[peer] > 0:
            print(f"Costline adds {added['costline'] / added[peer]:.2f}x what {peer} adds "
                  f"({added['costline']:.1f} vs {added[peer]:.1f} µs)")
    print(f"Costline overhead relative to the bare call: {added['costline'] / median['baseline']:.1%}")


if __name__ == "__main__":
    main()
