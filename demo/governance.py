"""The governance demo app: an ordinary LLM app making two calls its owners' policy refuses.

`demo/run.py` runs it twice under `opentelemetry-instrument`, with `OPENAI_API_KEY` the research team's key (whose
team budget the demo blows) and `ANTHROPIC_API_KEY` the support team's (allowed `claude-*haiku*` only):

- unguarded: both calls are sent; the processor counts the denied model in `costline_policy_violations_total`;
- with `COSTLINE_GUARD=block`: both are refused in the process (`costline.BudgetExceeded`,
  `costline.ModelNotAllowed`) and nothing reaches the provider.

Prints one JSON line per call: what happened to it.
"""

from __future__ import annotations

import json

import anthropic
import openai

import costline

USAGE = {"x-fake-usage": json.dumps({"input": 3000, "output": 400})}


def main() -> None:
    calls = {
        ("openai", "o4-mini"): lambda: openai.OpenAI().responses.create(
            model="o4-mini", input="grade this answer", extra_headers=USAGE),
        ("anthropic", "claude-sonnet-4-5"): lambda: anthropic.Anthropic().messages.create(
            model="claude-sonnet-4-5", max_tokens=512, messages=[{"role": "user", "content": "answer the ticket"}],
            extra_headers=USAGE),
    }
    for (provider, model), call in calls.items():
        try:
            call()
            outcome = {"sent": True}
        except costline.PolicyError as refusal:
            outcome = {"refused": f"costline.{type(refusal).__name__}", "rule": refusal.rule}
        print(json.dumps({"provider": provider, "model": model, **outcome}), flush=True)


if __name__ == "__main__":
    main()
