"""`/metrics` at many active series: scrape time of Costline's writers and of `GET /metrics` over HTTP next to
prometheus_client's `generate_latest` on one registry in one run, and the memory the series take.

The registry is what `costline serve` registers: `CostlineCollector` with the default labels (provider, model,
operation, org, team, project, feature, cost_center, environment), process and platform collectors. Series: every
one priced, with tokens and requests; every other one with an error, a retry and a time to first token (so the
histogram's 15 samples are there for half of them); token counts above a million in a tenth of them (the values
`floatToGoString` writes in exponent form).

`generate_chunks` is the same exposition in blocks of a few hundred series, consumed as a writer that sends each
block as it comes would (its time is the writing without the one 350 MiB buffer `generate_text` joins).
Wall time and process time (CPU) are both printed: on a shared machine the CPU time is the steadier figure.

The scrape as Prometheus sees it: a GET of `/metrics` from another process (`http.client`, one keep-alive
connection, as a scraper holds one) against the server and router `costline serve` runs (`HttpServer` with
`AdminApi`), over loopback, timed in that process from the request to the last byte of the body, plain and with
`Accept-Encoding: gzip`, in the same rounds as the in-process writers. The body read for timing is dropped as it
comes; once after the rounds, the plain body and the gunzipped gzip body are compared with `generate_latest` at the
same state of the registry.

Memory: RSS before and after the series are added (in batches of 1000 calls, so the calls themselves are not
counted), per series, before any scrape. Scrapes (alternating, best of `--rounds` each): `generate_latest`,
`generate_text`, `generate_chunks`, `GET /metrics`, `GET /metrics` with gzip, each after 1% of the series took one
more call (a scrape must see changes, and must not be timed on a state it has already rendered). The ratios are
taken within each round, side by side.

    .venv/bin/python benchmarks/exposition.py [--series 100000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import gc
import gzip
import hashlib
import http.client
import json
import os
import subprocess
import sys
import time
from types import SimpleNamespace

from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector, generate_latest

from costline.processor.clock import system_clock
from costline.processor.config.settings import Address
from costline.processor.http.api import AdminApi
from costline.processor.http.server import HttpServer
from costline.processor.metrics.aggregate import SeriesAggregator
from costline.processor.metrics.collector import CostlineCollector
from costline.processor.metrics.exposition import generate_chunks, generate_text
from costline.processor.model import GROUP_BY, Entry, LLMCall, Owner

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


def timed(fn, *args) -> tuple[float, float, object]:
    """Wall time, process time (this process's threads: the server's too) and the result of `fn(*args)`."""
    gc.collect()
    start, cpu = time.perf_counter(), time.process_time()
    result = fn(*args)
    return time.perf_counter() - start, time.process_time() - cpu, result


def streamed(registry: CollectorRegistry) -> int:
    """`generate_chunks`, each block dropped once seen (as a writer would after sending it); returns the size."""
    return sum(map(len, generate_chunks(registry)))


def stable(body: bytes) -> list[bytes]:
    """The lines that cannot change between two calls (the process collector's CPU time and memory can)."""
    return [line for line in body.splitlines() if not line.startswith(b"process_")]


def digest(body: bytes) -> str:
    return hashlib.sha256(b"\n".join(stable(body))).hexdigest()


def client(port: int) -> None:
    """The scraper, in a process of its own: for each line `plain|gzip [check]` on stdin, GET /metrics on one
    keep-alive connection and print the seconds from the request to the last byte and the body's size; with
    `check`, the digest of its stable lines too (gunzipped; read whole, after the clock stopped)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    buffer = memoryview(bytearray(1 << 20))
    for command in sys.stdin:
        encoding, *check = command.split()
        headers = {"Accept-Encoding": "gzip"} if encoding == "gzip" else {}
        start = time.perf_counter()
        connection.request("GET", "/metrics", headers=headers)
        response = connection.getresponse()
        if check:
            body = response.read()
            elapsed, size = time.perf_counter() - start, len(body)
            answer = {"digest": digest(gzip.decompress(body) if encoding == "gzip" else body)}
        else:
            size = 0
            while count := response.readinto(buffer):
                size += count
            elapsed, answer = time.perf_counter() - start, {}
        assert response.status == 200 and (response.getheader("Content-Encoding") == "gzip") == (encoding == "gzip")
        print(json.dumps({"seconds": elapsed, "bytes": size, **answer}), flush=True)


class Scraper:
    """The server `costline serve` runs for `/metrics` on an ephemeral port, and the client process."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.server = HttpServer(Address("127.0.0.1", 0), AdminApi(SimpleNamespace(registry=registry),
                                                                   GROUP_BY, clock=system_clock), "api").start()
        self.process = subprocess.Popen([sys.executable, __file__, "--client", str(self.server.port)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def get(self, command: str) -> dict:
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def scrape(self, encoding: str) -> tuple[int, float]:
        """The body's size and the seconds to its last byte, in the client."""
        answer = self.get(encoding)
        return answer["bytes"], answer["seconds"]

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(30)
        self.server.stop(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--client", type=int, metavar="PORT", help=argparse.SUPPRESS)  # the scraper process
    args = parser.parse_args()
    if args.client:
        return client(args.client)
    registry, aggregator, grown = registry_with(args.series)
    print(f"{args.series:,} series: RSS +{grown / 2**20:,.1f} MiB, {grown / args.series:,.0f} bytes per series "
          "(all families, before any scrape)")
    scraper = Scraper(registry)
    step = 100  # 1% of the series take a call before every scrape
    # Each gives (bytes, seconds to the last byte as the client saw them, or None for the wall time here).
    scrapes = {"generate_latest": lambda: (len(generate_latest(registry)), None),
               "generate_text": lambda: (len(generate_text(registry)), None),
               "generate_chunks": lambda: (streamed(registry), None),
               "GET /metrics": lambda: scraper.scrape("plain"),
               "GET /metrics gzip": lambda: scraper.scrape("gzip")}
    times: dict[str, list[float]] = {name: [] for name in scrapes} | {"collect() + Samples": []}
    cpu: dict[str, list[float]] = {name: [] for name in scrapes}
    sizes: dict[str, int] = {}
    for round_ in range(args.rounds):
        for k, (name, scrape) in enumerate(scrapes.items()):
            add_series(aggregator, range((round_ * len(scrapes) + k) % step, args.series, step))
            elapsed, used, (size, seconds) = timed(scrape)
            times[name].append(elapsed if seconds is None else seconds)
            cpu[name].append(used)
            sizes[name] = size
        # What generate_latest reads before it formats: the families and their Sample objects.
        times["collect() + Samples"].append(timed(lambda: [m.samples for m in registry.collect()])[0])
    text = generate_text(registry)
    latest = digest(generate_latest(registry))
    same = latest == digest(text) == digest(b"".join(generate_chunks(registry)))
    del text
    same_http = {encoding: scraper.get(f"{encoding} check")["digest"] == latest for encoding in ("plain", "gzip")}
    scraper.close()
    print(f"scrape, {sizes['generate_text'] / 2**20:,.1f} MiB of text ({sizes['GET /metrics gzip'] / 2**20:,.1f} MiB "
          f"gzipped), best of {args.rounds} (1% of series changed before each); HTTP: wall to the last byte in the "
          "client, CPU of the server's process:")
    for name, values in times.items():
        line = f"  {name:<19} {min(values):7.3f} s   (all: {', '.join(f'{v:.3f}' for v in values)})"
        if name in cpu:
            line += f"; CPU best {min(cpu[name]):.3f} s (all: {', '.join(f'{v:.3f}' for v in cpu[name])})"
        print(line)
    for name in ("generate_text", "generate_chunks", "GET /metrics", "GET /metrics gzip"):
        ratios = [latest / ours for latest, ours in zip(times["generate_latest"], times[name], strict=True)]
        print(f"  generate_latest / {name} per round: {', '.join(f'{r:.1f}x' for r in ratios)}")
    # Without building the families and Samples it reads (made lazily here, slower than prometheus_client's own
    # collectors would make them): prometheus_client's formatting alone against our whole scrape.
    formatting = [(latest - samples) / text for latest, samples, text in
                  zip(times["generate_latest"], times["collect() + Samples"], times["generate_text"], strict=True)]
    print(f"  generate_latest's formatting alone / generate_text: {', '.join(f'{r:.1f}x' for r in formatting)}")
    print(f"  byte-identical to generate_latest (process_ values aside): generate_text and generate_chunks {same}, "
          f"GET /metrics {same_http['plain']}, GET /metrics gzip (gunzipped) {same_http['gzip']}")


if __name__ == "__main__":
    main()
