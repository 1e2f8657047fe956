"""The approval demo app: an ordinary LLM app calling a frontier model its org allows only on approval.

`demo/run.py` runs it under `opentelemetry-instrument` with `COSTLINE_GUARD=block` and `OPENAI_API_KEY` the key a
team admin registered through the API: before the org admin approves the team's request the guard refuses the call
(`costline.ModelNotAllowed`, rule `org acme openai on approval o3*`); while the approval lasts it is sent.

Prints one JSON line: what happened to the call.
"""

from __future__ import annotations

import json

import openai

import costline

USAGE = {"x-fake-usage": json.dumps({"input": 2000, "output": 300})}


def main() -> None:
    try:
        openai.OpenAI(max_retries=0).chat.completions.create(
            model="o3-mini", messages=[{"role": "user", "content": "prove the ranking change is safe"}],
            extra_headers=USAGE)
        outcome = {"sent": True}
    except costline.PolicyError as refusal:
        outcome = {"refused": f"costline.{type(refusal).__name__}", "rule": refusal.rule}
    print(json.dumps({"provider": "openai", "model": "o3-mini", **outcome}), flush=True)


if __name__ == "__main__":
    main()
