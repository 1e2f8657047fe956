"""`/metrics` text formatting: prometheus_client's `generate_latest` next to Costline's `generate_text`, on one
registry in one run (alternating, best of `--rounds` each), plus `collect()` alone (building the families).

The registry is what `costline serve` registers: `CostlineCollector` with the default labels (provider, model,
operation, org, team, project, feature, cost_center, environment), process and platform collectors. Series: every
one priced, with tokens and requests; every other one with an error, a retry and a time to first token (so the
histogram's 15 samples are there for half of them).

    .venv/bin/python benchmarks/exposition.py [--series 20000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import gc
import time
from types import SimpleNamespace

from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector, generate_latest

from costline.processor.aggregate import SeriesAggregator
from costline.processor.exposition import generate_text
from costline.processor.metrics import CostlineCollector
from costline.processor.model import Entry, LLMCall, Owner

LABELS = ("provider", "model", "operation", "org", "team", "project", "feature", "cost_center", "environment")
MODELS = ("gpt-4o-mini-2024-07-18", "gpt-4o-2024-08-06", "claude-3-5-sonnet-20241022", "o1-mini", "gemini-1.5-pro")
BUCKETS = [0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0]


class Budgets:
    def snapshot(self):
        return SimpleNamespace(states=[], effective=[])


def registry_with(series: int) -> CollectorRegistry:
    aggregator = SeriesAggregator(LABELS, series + 10, BUCKETS)
    entries = []
    for i in range(series):
        call = LLMCall(provider="openai", request_model=None, response_model=MODELS[i % len(MODELS)],
                       operation="chat", input_tokens=1000 + i, output_tokens=100, cache_read_tokens=i % 7,
                       cache_write_tokens=0, reasoning_tokens=0, error_type="rate_limit" if i % 2 else None,
                       retries=i % 2, time_to_first_token_s=0.3 if i % 2 else None)
        owner = Owner("acme", f"team-{i // 100}", f"project-{i % 100}", "", "", "search", "cc-42", "production")
        entries.append(Entry(call, owner, 1234567 * (i + 1), ()))
    aggregator.add(entries)
    registry = CollectorRegistry()
    registry.register(CostlineCollector(lambda: aggregator, lambda: Budgets(), lambda: {"billed": series}))
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    return registry


def timed(fn, *args) -> tuple[float, object]:
    gc.collect()
    start = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    registry = registry_with(args.series)
    collect = lambda: list(registry.collect())  # noqa: E731
    times: dict[str, list[float]] = {"collect() only": [], "generate_latest": [], "generate_text": []}
    sizes = {}
    for _ in range(args.rounds):
        times["collect() only"].append(timed(collect)[0])
        for name, fn in (("generate_latest", generate_latest), ("generate_text", generate_text)):
            elapsed, body = timed(fn, registry)
            times[name].append(elapsed)
            sizes[name] = len(body)
    costline = lambda body: [line for line in body.splitlines() if b"costline_" in line]  # noqa: E731
    same = costline(generate_latest(registry)) == costline(generate_text(registry))
    print(f"{args.series:,} series, {sizes['generate_text'] / 2**20:,.1f} MiB of text, best of {args.rounds}:")
    for name, values in times.items():
        print(f"  {name:<16} {min(values):7.2f} s   (all: {', '.join(f'{v:.2f}' for v in values)})")
    latest, text = min(times["generate_latest"]), min(times["generate_text"])
    print(f"  generate_text is {latest / text:.1f}x faster; costline lines byte-identical: {same}")


if __name__ == "__main__":
    main()
