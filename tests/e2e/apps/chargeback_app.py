"""One of three services of a company, unmodified apart from `costline.owner` / `costline.outcome` calls, run under
`opentelemetry-instrument` with its owner (or none) in OTEL_RESOURCE_ATTRIBUTES. APP_ROLE picks the service."""

import os

import openai

import costline

PROMPT = "help"


def ask(client, tokens_in: int, tokens_out: int, model: str = "gpt-4o") -> None:
    client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": PROMPT}],
        extra_headers={"x-fake-usage": f'{{"input": {tokens_in}, "cached": 0, "output": {tokens_out}}}'})


def main() -> None:
    client = openai.OpenAI()
    role = os.environ["APP_ROLE"]
    if role == "product":  # resource: team engineering; one feature owned by marketing in code
        for _ in range(6):
            ask(client, 1_900_003, 100_001)  # 12 Mtok in the month: tier 2
        with costline.owner(team="marketing", feature="campaigns"):
            for _ in range(3):
                ask(client, 333_333, 7)
    elif role == "support":  # resource: team support; value-based
        for ticket in range(5):
            ask(client, 20_001, 1_999)
            with costline.owner(feature="auto-reply"):
                costline.outcome("ticket_resolved", count=2 if ticket == 4 else 1)
        costline.outcome("escalated")  # an outcome without a rate: counted, not charged
    elif role == "batch":  # no owner anywhere: unattributed
        for _ in range(4):
            ask(client, 5_555, 55)
    print("app done", role, flush=True)


if __name__ == "__main__":
    main()
