"""What keeping cost per run (`ledger.runs`) adds to a ledger write: `LedgerWriter.record` of the same 1000-call batches
with runs off and on, alternated in one process so the machine's drift falls on both alike.

Two workloads: the worst case, every call its own trace with a conversation and a session id of its own (three new
run rows per call), and agent runs, ten calls per trace, a conversation per trace and a session per ten traces.
Each round writes one batch of each variant into its own fresh SQLite ledger (so neither finds the other's rows)
and times it (CPU time of the writing thread); the medians over rounds are printed with their ratio.

    .venv/bin/python benchmarks/runs_write.py [--rounds 30] [--calls 1000]
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


def timed_write(directory: Path, name: str, entries: list[Entry], runs) -> float:
    ledger = Ledger(f"sqlite:///{directory / name}.db")
    ledger.record(batch(random.Random(0), 10, 1), now=NOW_S, runs=runs)  # warm: tables, statements, first prune
    gc.collect()
    started = time.thread_time()
    ledger.record(entries, now=NOW_S, runs=runs)
    elapsed = time.thread_time() - started
    ledger.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--calls", type=int, default=1000)
    args = parser.parse_args()
    rng = random.Random(1)
    for label, per_trace in (("worst case: a trace, conversation and session per call", 1),
                             ("agent runs: 10 calls per trace and conversation, 100 per session", 10)):
        off, on = [], []
        with tempfile.TemporaryDirectory() as tmp:
            for r in range(args.rounds):
                entries = batch(rng, args.calls, per_trace)
                variants = [("off", None, off), ("on", DEFAULT_RUN_POLICY, on)]
                for name, runs, times in variants if r % 2 else variants[::-1]:
                    times.append(timed_write(Path(tmp), f"{name}-{r}", entries, runs) / args.calls * 1e6)
        a, b = statistics.median(off), statistics.median(on)
        print(f"{label}: ledger write {a:.1f} us/call without runs, {b:.1f} with: +{b - a:.1f} us (x{b / a:.2f}); "
              f"median of {args.rounds} alternated rounds")


if __name__ == "__main__":
    main()
