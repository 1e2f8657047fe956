"""An unmodified app for the guard: it knows nothing of Costline and reports what each call did, one JSON line each.

Run under `opentelemetry-instrument`; the SDK finds the fake provider through OPENAI_BASE_URL and its key through
OPENAI_API_KEY.
"""

import asyncio
import json

import openai


def attempt(name, call):
    try:
        result = call()
        if hasattr(result, "__iter__") and not hasattr(result, "choices"):
            for _ in result:
                pass
        outcome = {"call": name, "ok": True}
    except Exception as err:  # an app that only logs what failed
        outcome = {"call": name, "ok": False, "error": f"{type(err).__module__}.{type(err).__qualname__}",
                   "rule": getattr(err, "rule", None), "message": str(err)}
    print(json.dumps(outcome), flush=True)


def main() -> None:
    client = openai.OpenAI(max_retries=0)
    messages = [{"role": "user", "content": "hello"}]
    attempt("chat", lambda: client.chat.completions.create(model="gpt-4o", messages=messages))
    attempt("stream", lambda: client.chat.completions.create(model="gpt-4o", messages=messages, stream=True))
    attempt("denied", lambda: client.chat.completions.create(model="o3-mini", messages=messages))
    aclient = openai.AsyncOpenAI(max_retries=0)
    attempt("async", lambda: asyncio.run(aclient.chat.completions.create(model="gpt-4o", messages=messages)))


if __name__ == "__main__":
    main()
