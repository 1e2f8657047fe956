"""An unmodified-style LLM app: it only uses the SDKs (and costline.owner), never configures OpenTelemetry.

Run under `opentelemetry-instrument`; the SDKs find the fake provider through OPENAI_BASE_URL/ANTHROPIC_BASE_URL.
"""

import asyncio
import os

import anthropic
import openai

PROMPT = "PROMPT-CANARY-7f3a: summarise our Q3 cloud invoice"

try:
    from costline import owner
except ImportError:  # the app must also run without Costline installed
    owner = None


def main() -> None:
    client = openai.OpenAI()
    client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": PROMPT}],
                                   extra_headers={"x-fake-usage": '{"input": 2000, "cached": 500, "output": 100}'})
    with owner(team="search", project="ranking"):
        for _ in client.chat.completions.create(model="gpt-4o-mini", stream=True,
                                                messages=[{"role": "user", "content": PROMPT}]):
            pass
        claude = anthropic.Anthropic()
        claude.messages.create(model="claude-haiku-4-5", max_tokens=64, messages=[{"role": "user", "content": PROMPT}],
                               extra_headers={"x-fake-usage": '{"input": 1450, "cached": 1000, "cache_write": 200, "output": 80}'})

    async def background() -> None:
        aclient = openai.AsyncOpenAI()
        await aclient.embeddings.create(model="text-embedding-3-small", input=[PROMPT])

    with owner(team="billing"):
        asyncio.run(background())
    print("app done", os.getpid(), flush=True)


if __name__ == "__main__":
    main()
