"""One demo service: an ordinary LLM app that knows nothing about OpenTelemetry.

`demo/run.py` starts three of these under `opentelemetry-instrument`; each is a team with its own models, API key
and habits. Ownership comes from `OTEL_RESOURCE_ATTRIBUTES` (org, team) and `costline.owner` (project, feature).

    python demo/workload.py --service search --duration 20
"""

from __future__ import annotations

import argparse
import json
import random
import time

import anthropic
import openai

from costline import outcome, owner


def usage(input_tokens: int, cached: int = 0, output: int = 200, reasoning: int = 0, cache_write: int = 0) -> dict:
    return {"x-fake-usage": json.dumps({"input": input_tokens, "cached": cached, "output": output,
                                        "reasoning": reasoning, "cache_write": cache_write})}


def search(rng: random.Random) -> None:
    client = openai.OpenAI()
    with owner(project="ranking", feature="rerank", user="alice"):
        if rng.random() < 0.5:
            for _ in client.chat.completions.create(  # streamed, usage requested by Costline
                model="gpt-4o-mini", stream=True, messages=[{"role": "user", "content": "rerank these results"}],
                extra_headers=usage(6000, cached=4000, output=300),
            ):
                pass
        else:
            client.chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": "write a query plan"}],
                extra_headers=usage(3000, cached=rng.choice([0, 2048]), output=400),
            )


def support(rng: random.Random) -> None:
    client = anthropic.Anthropic()  # the SDK's own tracing is on: Costline enriches its span
    with owner(project="helpdesk", feature="auto-reply"):
        with client.messages.stream(
            model="claude-haiku-4-5", max_tokens=512, messages=[{"role": "user", "content": "answer the ticket"}],
            extra_headers=usage(9000, cached=8000, cache_write=rng.choice([0, 500]), output=350),
        ) as stream:
            for _ in stream.text_stream:
                pass
        outcome("ticket_resolved")  # the business result support is charged for (value-based chargeback)


def research(rng: random.Random, self_hosted: openai.OpenAI) -> None:
    client = openai.OpenAI()
    with owner(project="evals", feature="benchmark"):
        client.responses.create(model="o4-mini", input="grade this answer",
                                extra_headers=usage(12000, output=2500, reasoning=1800))
        # A self-hosted model nobody priced yet: Costline reports it as unpriced, never as $0.
        self_hosted.chat.completions.create(model="acme-llama-70b", messages=[{"role": "user", "content": "eval"}],
                                            extra_headers=usage(4000, output=600))
        if rng.random() < 0.3:
            # A stream read without usage: this service runs with COSTLINE_OPENAI_STREAM_USAGE=false (as an app that
            # must get its stream's chunks untouched would), so nobody asks for `stream_options.include_usage` and
            # the provider sends no usage. The processor counts the call as without usage: cost unknown, never $0.
            for _ in client.chat.completions.create(
                model="gpt-4o-mini", stream=True, messages=[{"role": "user", "content": "summarise the eval"}],
                extra_headers=usage(2000, output=150),
            ):
                pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--service", choices=("search", "support", "research"), required=True)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=8.0, help="calls per second")
    parser.add_argument("--self-hosted-url", default=None, help="OpenAI-compatible base URL of the self-hosted model")
    args = parser.parse_args()
    rng = random.Random(args.service)
    self_hosted = openai.OpenAI(base_url=args.self_hosted_url or openai.OpenAI().base_url, api_key="none")
    step = {"search": search, "support": support, "research": lambda r: research(r, self_hosted)}[args.service]
    deadline = time.monotonic() + args.duration
    iterations = 0
    while time.monotonic() < deadline:
        step(rng)
        iterations += 1
        time.sleep(1 / args.rate)
    print(f"{args.service}: {iterations} iterations", flush=True)


if __name__ == "__main__":
    main()
