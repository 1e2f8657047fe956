"""`/metrics` at many active series: scrape time of Costline's `generate_text` next to prometheus_client's
`generate_latest` on one registry in one run, and the memory the series take.

The registry is what `costline serve` registers: `CostlineCollector` with the default labels (provider, model,
operation, org, team, project, feature, cost_center, environment), process and platform collectors. Series: every
one priced, with tokens and requests; every other one with an error, a retry and a time to first token (so the
histogram's 15 samples are there for half of them); token counts above a million in a tenth of them (the values
`floatToGoString` writes in exponent form).

`generate_chunks` is the same exposition in blocks of a few hundred series, consumed as a writer that sends each
block as it comes would (its time is the writing without the one 350 MiB buffer `generate_text` joins).
Wall time and process time (CPU) are both printed: on a shared machine the CPU time is the steadier figure.

Memory: RSS before and after the series are added (in batches of 1000 calls, so the calls themselves are not
counted), per series, before any scrape. Scrapes (alternating, best of `--rounds` each): `generate_latest`, then
`generate_text`, each after 1% of the series took one more call (a scrape must see changes, and must not be timed
on a state it has already rendered). The ratio is taken within each round, side by side.

    .venv/bin/python benchmarks/exposition.py [--series 100000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import gc
import os
import time
from types import SimpleNamespace

from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector, generate_latest

from costline.processor.aggregate import SeriesAggregator
from costline.processor.exposition import generate_chunks, generate_text
from costline.processor.metrics import CostlineCollector
from costline.processor.model import Entry, LLMCall, Owner

LABELS = ("provider", "model", "operation", "org", "team", "project", "feature", "cost_center", "environment")
MODELS = ("gpt-4o-mini-2024-07-18", "gpt-4o-2024-08-06", "claude-3-5-sonnet-20241022", "o1-mini", "gemini-1.5-pro")
BUCKETS = [0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0]
BATCH = 1000


class Budgets:
    def snapshot(self):
        return SimpleNamespace(states=[], effective=[])


def entry(i: int) -> Entry:
    """One call of series `i` (series differ by team, project and model)."""
    big = 1_000_000 if i % 10 == 0 else 0
    call = LLMCall(provider="openai", request_model=None, response_model=MODELS[i % len(MODELS)],
                   operation="chat", input_tokens=1000 + i + big, output_tokens=100, cache_read_tokens=i % 7,
                   cache_write_tokens=0, reasoning_tokens=0, error_type="rate_limit" if i % 2 else None,
                   retries=i % 2, time_to_first_token_s=0.3 if i % 2 else None)
    owner = Owner("acme", f"team-{i // 100}", f"project-{i % 100}", "", "", "search", "cc-42", "production")
    return Entry(call, owner, 1234567 * (i + 1), ())


def add_series(aggregator: SeriesAggregator, indices: range) -> None:
    for first in range(indices.start, indices.stop, BATCH * indices.step):
        aggregator.add([entry(i) for i in range(first, min(first + BATCH * indices.step, indices.stop),
                                                 indices.step)])


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def registry_with(series: int) -> tuple[CollectorRegistry, SeriesAggregator, int]:
    """The registry, its aggregator, and the RSS the series added (bytes)."""
    gc.collect()
    before = rss_bytes()
    aggregator = SeriesAggregator(LABELS, series + 10, BUCKETS)
    add_series(aggregator, range(series))
    gc.collect()
    grown = rss_bytes() - before
    registry = CollectorRegistry()
    registry.register(CostlineCollector(lambda: aggregator, lambda: Budgets(), lambda: {"billed": series}))
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    return registry, aggregator, grown


def timed(fn, *args) -> tuple[float, object]:
    gc.collect()
    start, cpu = time.perf_counter(), time.process_time()
    result = fn(*args)
    timed.cpu = time.process_time() - cpu
    return time.perf_counter() - start, result


def streamed(registry: CollectorRegistry) -> bytes:
    """`generate_chunks`, each block dropped once seen (as a writer would after sending it); returns a stand-in."""
    size = sum(map(len, generate_chunks(registry)))
    return b" " * min(size, 1)


def stable(body: bytes) -> list[bytes]:
    """The lines that cannot change between two calls (the process collector's CPU time and memory can)."""
    return [line for line in body.splitlines() if not line.startswith(b"process_")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    registry, aggregator, grown = registry_with(args.series)
    print(f"{args.series:,} series: RSS +{grown / 2**20:,.1f} MiB, {grown / args.series:,.0f} bytes per series "
          "(all families, before any scrape)")
    step = 100  # 1% of the series take a call before every scrape
    scrapes = (("generate_latest", generate_latest), ("generate_text", generate_text), ("generate_chunks", streamed))
    times: dict[str, list[float]] = {name: [] for name, _ in scrapes} | {"collect() + Samples": []}
    cpu: dict[str, list[float]] = {name: [] for name, _ in scrapes}
    ratios, stream_ratios, size = [], [], 0
    for round_ in range(args.rounds):
        for k, (name, fn) in enumerate(scrapes):
            add_series(aggregator, range((round_ * len(scrapes) + k) % step, args.series, step))
            elapsed, body = timed(fn, registry)
            times[name].append(elapsed)
            cpu[name].append(timed.cpu)
            size = max(size, len(body))
            del body
        ratios.append(times["generate_latest"][-1] / times["generate_text"][-1])
        stream_ratios.append(times["generate_latest"][-1] / times["generate_chunks"][-1])
        # What generate_latest reads before it formats: the families and their Sample objects.
        times["collect() + Samples"].append(timed(lambda: [m.samples for m in registry.collect()])[0])
    text = generate_text(registry)
    same = stable(generate_latest(registry)) == stable(text) == stable(b"".join(generate_chunks(registry)))
    del text
    print(f"scrape, {size / 2**20:,.1f} MiB of text, best of {args.rounds} (1% of series changed before each):")
    for name, values in times.items():
        line = f"  {name:<19} {min(values):7.3f} s   (all: {', '.join(f'{v:.3f}' for v in values)})"
        if name in cpu:
            line += f"; CPU best {min(cpu[name]):.3f} s (all: {', '.join(f'{v:.3f}' for v in cpu[name])})"
        print(line)
    # Without building the families and Samples it reads (made lazily here, slower than prometheus_client's own
    # collectors would make them): prometheus_client's formatting alone against our whole scrape.
    formatting = [(latest - samples) / text for latest, samples, text in
                  zip(times["generate_latest"], times["collect() + Samples"], times["generate_text"], strict=True)]
    print(f"  generate_latest / generate_chunks per round: {', '.join(f'{r:.1f}x' for r in stream_ratios)}")
    print(f"  generate_latest / generate_text per round: {', '.join(f'{r:.1f}x' for r in ratios)}; "
          f"its formatting alone / generate_text: {', '.join(f'{r:.1f}x' for r in formatting)}; "
          f"output byte-identical (process_ values aside): {same}")


if __name__ == "__main__":
    main()
