"""An unmodified-style app that spends in one burst and goes quiet: 20 Claude calls (about $1.20 at list price) and
one call to a self-hosted model nobody priced. It knows nothing of OpenTelemetry; its team comes from
`OTEL_RESOURCE_ATTRIBUTES`, and `opentelemetry-instrument` does the rest.
"""

import json
import os

import anthropic
import openai


def usage(input_tokens: int, output: int) -> dict:
    return {"x-fake-usage": json.dumps({"input": input_tokens, "output": output})}


def main() -> None:
    claude = anthropic.Anthropic()
    for _ in range(20):
        claude.messages.create(model="claude-3-5-haiku-20241022", max_tokens=64,
                               messages=[{"role": "user", "content": "grade this"}],
                               extra_headers=usage(50_000, 5_000))
    self_hosted = openai.OpenAI(base_url=os.environ["SELF_HOSTED_BASE_URL"], api_key="none")
    self_hosted.chat.completions.create(model="acme-llama-70b", messages=[{"role": "user", "content": "eval"}],
                                        extra_headers=usage(4_000, 600))
    print("burst done", flush=True)


if __name__ == "__main__":
    main()
