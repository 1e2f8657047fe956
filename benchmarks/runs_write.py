"""What keeping cost per run (`ledger.runs`) adds to a ledger write: `LedgerWriter.record` of the same 1000-call batches
with runs off and on, alternated in one process so the machine's drift falls on both alike.

Two workloads: the worst case, every call its own trace with a conversation and a session id of its own (three new
run rows per call), and agent runs, ten calls per trace, a conversation per trace and a session per ten traces.
Each variant has its own SQLite ledger, which grows round by round as a processor's does (a run table keyed by its
random trace ids would dirty a page per new run once large: the cost shows only on a grown ledger); each round writes
the same fresh batch into both, in alternating order, timing the CPU time of the writing thread; the medians over
the rounds are printed with their ratio.

    .venv/bin/python benchmarks/runs_write.py [--rounds 40] [--calls 1000]
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import tempfile
import time
from pathlib import Path

from costline.processor.ledger import Ledger
from costline.processor.ledger.runs import DEFAULT_RUN_POLICY
from costline.processor.model import Entry, LLMCall, Owner, call_keys

NOW_S = int(time.time())


def batch(rng: random.Random, calls: int, per_trace: int) -> list[Entry]:
    entries = []
    trace, conversation, session, owner = b"", "", "", Owner()
    for i in range(calls):
        if i % per_trace == 0:
            trace = rng.randbytes(16)
            conversation = f"conv-{trace.hex()[:12]}"
            if i % (per_trace * 10) == 0:
                session = f"sess-{rng.getrandbits(48):012x}"
            team = rng.randrange(20)  # an agent run has one owner
            owner = Owner(org="acme", team=f"team-{team}", project=f"project-{rng.randrange(10)}",
                          user=f"user-{team}-{rng.randrange(3)}")
        start = (NOW_S - rng.randint(0, 3000)) * 1_000_000_000
        call = LLMCall(provider="openai", request_model="gpt-4o", response_model="gpt-4o", operation="chat",
                       input_tokens=rng.randint(50, 20_000), output_tokens=rng.randint(1, 2000), has_usage=True,
                       trace_id=trace, span_id=rng.randbytes(8), start_time_unix_nano=start,
                       end_time_unix_nano=start + 900_000_000, conversation_id=conversation, session_id=session)
        entries.append(Entry(call, owner, rng.randint(1, 10**9), call_keys(call)))
    return entries


def timed_write(ledger: Ledger, entries: list[Entry], runs) -> float:
    gc.collect()
    started = time.thread_time()
    ledger.record(entries, now=NOW_S, runs=runs)
    return time.thread_time() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--calls", type=int, default=1000)
    args = parser.parse_args()
    rng = random.Random(1)
    for label, per_trace in (("worst case: a trace, conversation and session per call", 1),
                             ("agent runs: 10 calls per trace and conversation, 100 per session", 10)):
        off, on = [], []
        with tempfile.TemporaryDirectory() as tmp:
            variants = [(Ledger(f"sqlite:///{Path(tmp) / name}.db"), runs, times)
                        for name, runs, times in (("off", None, off), ("on", DEFAULT_RUN_POLICY, on))]
            for r in range(args.rounds):
                entries = batch(rng, args.calls, per_trace)
                for ledger, runs, times in variants if r % 2 else variants[::-1]:
                    times.append(timed_write(ledger, entries, runs) / args.calls * 1e6)
            for ledger, _, _ in variants:
                ledger.close()
        a, b = statistics.median(off), statistics.median(on)
        print(f"{label}: ledger write {a:.1f} us/call without runs, {b:.1f} with: +{b - a:.1f} us (x{b / a:.2f}); "
              f"median of {args.rounds} alternated rounds")


if __name__ == "__main__":
    main()
