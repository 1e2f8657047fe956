"""An app that samples 10 % of its traces (`OTEL_TRACES_SAMPLER=traceidratio`, `OTEL_TRACES_SAMPLER_ARG=0.1`, set by
the test) and makes `CALLS` openai and `CALLS` anthropic calls, each in a trace of its own, under
`opentelemetry-instrument`. It never configures OpenTelemetry itself."""

import os

import anthropic
import openai

CALLS = int(os.environ["SAMPLED_APP_CALLS"])
USAGE = {"x-fake-usage": '{"input": 1000, "cached": 0, "output": 100}'}


def main() -> None:
    chat = openai.OpenAI()
    claude = anthropic.Anthropic()  # its own span goes to the app's provider: the SDK span path
    for _ in range(CALLS):
        chat.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}], extra_headers=USAGE)
        claude.messages.create(model="claude-haiku-4-5", max_tokens=64, messages=[{"role": "user", "content": "hi"}],
                               extra_headers=USAGE)
    print("app done", flush=True)


if __name__ == "__main__":
    main()
