"""Per-call overhead of instrumenting a non-streaming openai chat call, side by side in one run.

Variants, each in its own long-lived subprocess (instrumentations patch the SDK globally and not all undo it
cleanly):

* ``baseline``     the real openai SDK on ``httpx2.MockTransport``, no instrumentation;
* ``costline``     Costline's plugin;
* ``guarded``      Costline's plugin with the guard on (``block``, warm cache): every call is checked against a
                   model rule and a remaining budget learnt from a local policy endpoint;
* ``official``     ``opentelemetry-instrumentation-genai-openai`` (OpenTelemetry's GenAI instrumentation);
* ``openllmetry``  Traceloop's ``opentelemetry-instrumentation-openai``;
* ``sampled_out``  Costline's plugin in an app whose trace sampler drops every trace (``ALWAYS_OFF``): each call is
                   recorded on Costline's billing path instead (its own provider and batch processor, an exporter
                   that discards), what a call the sampler drops costs (`costline.instrumentation.sampling`);
* ``sdk_span``     a reference, not a product: the least any one-span-per-call instrumentation can add. A bare
                   wrapper on the same SDK method starts one span with the attributes a Costline span carries
                   (as constants), makes it current, sets the response's attributes and ends it. What Costline adds
                   above it is Costline's own code.

Every variant gets the same OpenTelemetry SDK setup, with exporters that discard (what is measured is the
instrumentation, not an exporter), in two configurations, measured one after the other in the same run:

* ``traces``  only a ``TracerProvider`` with a ``BatchSpanProcessor``: the per-span cost alone, the strictest
              comparison for Costline, whose one product is the span;
* ``full``    what ``opentelemetry-instrument`` sets up by default: a ``TracerProvider``, a ``MeterProvider`` with a
              ``PeriodicExportingMetricReader`` and a ``LoggerProvider`` with a ``BatchLogRecordProcessor``, each
              handed to the instrumentor. Instrumentations that record metrics (the official one records
              ``gen_ai.client.operation.duration`` and ``gen_ai.client.token.usage``) pay for them here, as they do
              in a deployed app; Costline records none, because the processor derives its metrics from the spans.

Why lockstep: on a shared 2-core machine the speed of the same code drifts by tens of percent within seconds, more
than the overheads measured. So the subprocesses stay alive and take turns: each round, every process times one
short batch of calls (20 calls, ~13 ms), one right after the other, in a rotating order. A variant's added cost is
the median over rounds of its batch minus the baseline's batch *of the same round* (paired differences cancel the
drift that a round shares), and the ratios are computed from those paired medians. Each variant runs in three
processes whose batches are averaged per round: two processes running identical code differ by up to ~6 µs per
call for as long as they live (memory layout, hash seeds), a bias no number of rounds removes.

    .venv/bin/python benchmarks/instrumentation_overhead.py \
        [--rounds 200] [--calls 20] [--processes 3] [--sdk traces|full|both] [--variants baseline,costline,...] \
        [--base-tree PATH]

``--base-tree PATH`` adds ``costline_base``: Costline's plugin as another checkout of this repository has it (a
``git worktree add --detach PATH <commit>``), in the same lockstep rounds, so a change is measured against the code
before it by paired differences rather than by two runs minutes apart. Every child answers from this checkout's
fake provider, so both sides parse the same responses.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
"""What a batch is timed with: wall time, or the child's CPU time (all its threads: the SDK's export thread's work
is the instrumentation's cost too), which other processes on the machine do not inflate by preempting it."""

VARIANTS = ("baseline", "costline", "guarded", "official", "openllmetry", "sdk_span", "sampled_out")
OPTIONAL = ("costline_base",)
"""Variants run only when asked for (`--base-tree`)."""

FAKE_PROVIDER = Path(__file__).resolve().parents[1] / "instrumentation/src/costline/testing/fake_provider.py"


def _fake_handler():  # noqa: ANN202
    """This checkout's fake provider, loaded from its file: a `costline_base` child has the other checkout's
    `costline` package first on its path, and must still get the same responses as every other variant."""
    spec = importlib.util.spec_from_file_location("_bench_fake_provider", FAKE_PROVIDER)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[spec.name] = module  # type: ignore[union-attr]  # its dataclasses look their module up there
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module.mock_transport_handler

POLICY = {"models": [{"level": "org acme", "provider": "openai", "allow": None, "deny": ["o1*", "o3*"]},
                     {"level": "team acme/search", "provider": "*", "allow": ["gpt-4o*", "claude-*"], "deny": []}],
          "budget": {"remaining_usd": 1e9, "bound_by": "team acme/search monthly"},
          "rates": {"openai/gpt-4o": {"input_per_mtok": 2.5, "output_per_mtok": 10.0}}, "refresh_s": 3600}
"""What the guarded variant's policy endpoint answers: two rule levels to match, a budget far from spent."""


def _policy_endpoint() -> str:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    body = json.dumps(POLICY).encode()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}"
SDK_SETUPS = ("traces", "full")


def _child(variant: str, sdk: str, clock: str) -> None:
    import httpx2
    import openai
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    mock_transport_handler = _fake_handler()

    class Discard(SpanExporter):
        def export(self, spans):  # noqa: ARG002
            return SpanExportResult.SUCCESS

    if variant == "sampled_out":
        from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

        provider = TracerProvider(sampler=ALWAYS_OFF)
    else:
        provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Discard(), max_queue_size=100_000))
    providers: dict[str, object] = {"tracer_provider": provider}
    if sdk == "full":
        providers.update(_metrics_and_logs())
    if variant in ("costline", "costline_base"):
        from costline.instrumentation import CostlineInstrumentor

        CostlineInstrumentor().instrument(**providers)
    elif variant == "guarded":
        import os

        from costline.instrumentation import CostlineInstrumentor

        os.environ["OPENAI_API_KEY"] = "sk-bench"  # fetched by instrument(): the cache is warm from the first call
        CostlineInstrumentor().instrument(**providers, guard="block", guard_url=_policy_endpoint(),
                                          guard_refresh="3600")
    elif variant == "sampled_out":
        from costline.instrumentation import CostlineInstrumentor

        CostlineInstrumentor().instrument(**providers, billing_exporter=Discard())
    elif variant == "official":
        from opentelemetry.instrumentation.genai.openai import OpenAIInstrumentor

        OpenAIInstrumentor().instrument(**providers)
    elif variant == "openllmetry":
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor

        OpenAIInstrumentor().instrument(**providers)
    elif variant == "sdk_span":
        _instrument_with_one_bare_span(provider)

    client = openai.OpenAI(api_key="sk-bench", http_client=httpx2.Client(transport=httpx2.MockTransport(mock_transport_handler)))
    messages = [{"role": "user", "content": "How much did we spend on LLMs this month?"}]

    def call() -> None:
        client.chat.completions.create(model="gpt-4o", messages=messages)

    timer = CLOCKS[clock]
    for _ in range(300):  # warm-up: imports, caches, lazy initialisation
        call()
    print("ready", flush=True)
    for line in sys.stdin:  # one batch per request from the parent, timed here, answered in µs per call
        calls = int(line)
        if calls <= 0:
            break
        start = timer()
        for _ in range(calls):
            call()
        print(json.dumps((timer() - start) / calls * 1e6), flush=True)
    provider.shutdown()
    for extra in ("meter_provider", "logger_provider"):
        if extra in providers:
            providers[extra].shutdown()  # type: ignore[attr-defined]


def _instrument_with_one_bare_span(provider) -> None:  # noqa: ANN001
    from opentelemetry import context, trace
    from opentelemetry.trace import SpanKind
    from wrapt import wrap_function_wrapper

    tracer = provider.get_tracer("sdk-span-reference")
    at_start = {"gen_ai.provider.name": "openai", "server.address": "api.openai.com",
                "costline.api_key.fingerprint": "0123456789abcdef", "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "gpt-4o"}
    at_end = {"gen_ai.response.model": "gpt-4o-2024-08-06", "gen_ai.response.id": "chatcmpl-fake123",
              "openai.response.service_tier": "default", "gen_ai.usage.input_tokens": 120,
              "gen_ai.usage.output_tokens": 24}

    def one_span(wrapped, instance, args, kwargs):  # noqa: ANN001, ANN202, ARG001
        span = tracer.start_span("chat gpt-4o", kind=SpanKind.CLIENT, attributes=dict(at_start))
        token = context.attach(trace.set_span_in_context(span))
        try:
            result = wrapped(*args, **kwargs)
        finally:
            context.detach(token)
        span.set_attributes(at_end)
        span.end()
        return result

    wrap_function_wrapper("openai._base_client", "SyncAPIClient.request", one_span)


def _metrics_and_logs() -> dict[str, object]:
    """A MeterProvider and a LoggerProvider as `opentelemetry-instrument` configures them, exporting nowhere."""
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter, LogRecordExportResult
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import (
        MetricExporter,
        MetricExportResult,
        PeriodicExportingMetricReader,
    )

    class DiscardMetrics(MetricExporter):
        def export(self, metrics_data, timeout_millis: float = 10_000, **kwargs):  # noqa: ARG002
            return MetricExportResult.SUCCESS

        def force_flush(self, timeout_millis: float = 10_000) -> bool:  # noqa: ARG002
            return True

        def shutdown(self, timeout_millis: float = 30_000, **kwargs) -> None:  # noqa: ARG002
            pass

    class DiscardLogs(LogRecordExporter):
        def export(self, batch):  # noqa: ARG002
            return LogRecordExportResult.SUCCESS

        def force_flush(self, timeout_millis: int = 30_000) -> bool:  # noqa: ARG002
            return True

        def shutdown(self) -> None:
            pass

    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(BatchLogRecordProcessor(DiscardLogs()))
    # The SDK's default interval (60 s): a run exports a few times, as a deployed app would.
    meter_provider = MeterProvider(metric_readers=[PeriodicExportingMetricReader(DiscardMetrics())])
    return {"meter_provider": meter_provider, "logger_provider": logger_provider}


class _Child:
    """One variant's subprocess, kept alive across rounds."""

    def __init__(self, variant: str, sdk: str, clock: str, base_tree: str | None = None) -> None:
        self.variant = variant
        env = None
        if variant == "costline_base":
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(
                [str(Path(base_tree) / "instrumentation" / "src"), os.environ.get("PYTHONPATH", "")])}  # type: ignore[arg-type]
        self.process = subprocess.Popen([sys.executable, __file__, "--child", variant, "--sdk", sdk, "--clock", clock],
                                        stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, env=env)

    def wait_ready(self) -> None:
        if self._read() != "ready":
            raise RuntimeError(f"{self.variant}: did not start")

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


def _measure(sdk: str, rounds: int, calls: int, processes: int, clock: str, variants: tuple[str, ...],
             base_tree: str | None) -> None:
    # Several processes per variant: the same code in two processes runs a few µs per call apart (memory layout,
    # hash seeds), a bias that rounds cannot average out but processes can.
    children = [_Child(v, sdk, clock, base_tree) for v in variants for _ in range(processes)]
    for child in children:  # started together: their start-up (imports, warm-up) overlaps instead of adding up
        child.wait_ready()
    results: dict[str, list[float]] = {v: [] for v in variants}
    try:
        for round_ in range(rounds):
            shift = round_ % len(children)  # rotate: no process always runs first or last
            batches: dict[str, list[float]] = {v: [] for v in variants}
            for child in children[shift:] + children[:shift]:
                batches[child.variant].append(child.batch(calls))
            for v, times in batches.items():
                results[v].append(statistics.fmean(times))
    finally:
        for child in children:
            child.close()

    base = results["baseline"]
    median = {v: statistics.median(r) for v, r in results.items()}
    paired = {v: [t - b for t, b in zip(results[v], base, strict=True)] for v in variants}
    added = {v: statistics.median(d) for v, d in paired.items()}
    # Interference from other work only ever adds time, so each variant's fast rounds are its undisturbed cost: the
    # 10th percentile of round times, less the baseline's, is a second estimate that a loaded machine moves far less
    # than the paired median (whose rounds it can disturb one variant at a time).
    low = {v: statistics.quantiles(r, n=10)[0] for v, r in results.items()}
    low_added = {v: low[v] - low["baseline"] for v in variants}
    print(f"\nSDK setup '{sdk}', {clock} clock: openai {__import__('openai').__version__}, non-streaming chat on "
          f"httpx2.MockTransport, {rounds} lockstep rounds x {processes} processes x {calls} calls per variant\n")
    print(f"{'variant':<13}{'µs/call':>10}{'min':>10}{'added µs':>11}{'added q1-q3':>16}{'added p10':>11}")
    for v in variants:
        q1, _, q3 = statistics.quantiles(paired[v], n=4) if v != "baseline" else (0.0, 0.0, 0.0)
        print(f"{v:<13}{median[v]:>10.1f}{min(results[v]):>10.1f}{added[v]:>11.1f}{q1:>8.1f}-{q3:<7.1f}"
              f"{low_added[v]:>11.1f}")
    print("\n(µs/call: median batch; added: median over rounds of the batch minus the same round's baseline;"
          "\n added p10: the 10th percentile of the variant's rounds minus the baseline's)\n")
    if "costline_base" in added and added["costline_base"] > 0:
        print(f"[{sdk}] Costline adds {added['costline'] / added['costline_base']:.3f}x what the base tree's adds "
              f"({added['costline']:.1f} vs {added['costline_base']:.1f} µs; by the p10 estimate "
              f"{low_added['costline']:.1f} vs {low_added['costline_base']:.1f} µs)")
    if "sampled_out" in added:
        print(f"[{sdk}] a call the sampler drops, billed on Costline's billing path, adds {added['sampled_out']:.1f} "
              f"µs (a sampled call {added['costline']:.1f} µs)")
    for peer in ("official", "openllmetry", "sdk_span"):
        if peer in added and added[peer] > 0:
            print(f"[{sdk}] Costline adds {added['costline'] / added[peer]:.2f}x what {peer} adds "
                  f"({added['costline']:.1f} vs {added[peer]:.1f} µs)")
    if "official" in added and "guarded" in added and added["official"] > 0:
        print(f"[{sdk}] Costline with the guard (block, warm cache) adds {added['guarded'] / added['official']:.2f}x "
              f"what official adds ({added['guarded']:.1f} vs {added['official']:.1f} µs; the guard itself "
              f"{added['guarded'] - added['costline']:.1f} µs)")
        if low_added["official"] > 0:
            print(f"[{sdk}] by the p10 estimate: Costline {low_added['costline'] / low_added['official']:.2f}x, "
                  f"with the guard {low_added['guarded'] / low_added['official']:.2f}x what official adds")
        print(f"[{sdk}] one bare span (sdk_span) adds {added['sdk_span'] / added['official']:.2f}x what official adds: "
              "the floor of any span-per-call instrumentation")
    print(f"[{sdk}] Costline overhead relative to the bare call: {added['costline'] / median['baseline']:.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--calls", type=int, default=20, help="calls per timed batch")
    parser.add_argument("--processes", type=int, default=3, help="processes per variant")
    parser.add_argument("--sdk", choices=(*SDK_SETUPS, "both"), default="both")
    parser.add_argument("--clock", choices=tuple(CLOCKS), default="wall",
                        help="time batches by wall clock or by the child's CPU time")
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help="comma-separated; baseline and costline are always run")
    parser.add_argument("--base-tree", help="another checkout whose Costline runs as the costline_base variant")
    parser.add_argument("--child", choices=VARIANTS + OPTIONAL)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.sdk, args.clock)
        return
    chosen = [v for v in args.variants.split(",") if v]
    unknown = set(chosen) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown variants: {', '.join(sorted(unknown))}")
    variants = tuple(dict.fromkeys(["baseline", "costline", *chosen]))
    if args.base_tree:
        if not (Path(args.base_tree) / "instrumentation" / "src" / "costline").is_dir():
            parser.error(f"--base-tree {args.base_tree}: no instrumentation/src/costline there")
        variants += OPTIONAL
    for sdk in SDK_SETUPS if args.sdk == "both" else (args.sdk,):
        _measure(sdk, args.rounds, args.calls, args.processes, args.clock, variants, args.base_tree)


if __name__ == "__main__":
    main()
