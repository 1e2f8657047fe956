"""An unmodified app that calls from many threads at once until its budget stops it; prints one JSON line with what
was sent and what was refused.

Run under `opentelemetry-instrument`; the SDK finds the fake provider through OPENAI_BASE_URL and its key through
OPENAI_API_KEY. Each call streams its answer a chunk every 25 ms, about as slowly as a short real answer.
"""

import json
import sys
from concurrent.futures import ThreadPoolExecutor

import openai

THREADS, ATTEMPTS = int(sys.argv[1]), int(sys.argv[2])


def worker(client):
    sent, refused = 0, []
    for _ in range(ATTEMPTS):
        try:
            for _ in client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}],
                                                    stream=True, extra_headers={"x-fake-chunk-delay-ms": "25"}):
                pass
            sent += 1
        except Exception as err:  # an app that only counts what failed
            refused.append(getattr(err, "rule", type(err).__name__))
    return sent, refused


def main() -> None:
    client = openai.OpenAI(max_retries=0)
    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(worker, [client] * THREADS))
    print(json.dumps({"sent": sum(s for s, _ in results), "refused": [r for _, rs in results for r in rs]}))


if __name__ == "__main__":
    main()
