"""What the Node recorders' workload costs, by hand: list prices in nano-USD (1e-9 USD) per token and the fixtures.

gpt-4o-mini (openai.com/api/pricing): $0.15 / $0.075 cached / $0.60 per MTok; claude-haiku-4-5 (anthropic.com/pricing):
$1 / $0.10 cache read / $1.25 5-minute cache write / $5 per MTok; text-embedding-3-small: $0.02 per MTok.
"""

from __future__ import annotations

from pathlib import Path

from tests.processor.sources.recorded import FIXTURES, Fixture, bill, load

GPT = ("openai", "gpt-4o-mini-2024-07-18", "chat")
GPT_ALIAS = ("openai", "gpt-4o-mini", "chat")  # a stream span that names only the requested model
CLAUDE = ("anthropic", "claude-haiku-4-5", "chat")
EMBEDDING = ("openai", "text-embedding-3-small", "embeddings")

NANO = {  # per token: input, cache read, cache write, output
    GPT: (150, 75, 0, 600), GPT_ALIAS: (150, 75, 0, 600),
    CLAUDE: (1000, 100, 1250, 5000),
    EMBEDDING: (20, 0, 0, 0),
}


def nano(key: tuple[str, str, str], input: int = 0, cache_read: int = 0, cache_write: int = 0,  # noqa: A002
         output: int = 0) -> int:
    rates = NANO[key]
    return input * rates[0] + cache_read * rates[1] + cache_write * rates[2] + output * rates[3]


def fixture(source: str, scenario: str = "node-workload") -> Fixture:
    return load(FIXTURES / source / f"{scenario}.json")


def billed(source: str, tmp_path: Path, scenario: str = "node-workload") -> dict[tuple[str, str, str], dict[str, int]]:
    """The fixture's calls as the ledger billed them, per (provider, model, operation)."""
    rows, ledger = bill(fixture(source, scenario), f"sqlite:///{tmp_path}/ledger.db")
    ledger.close()
    return rows


def cost_nano(row: dict[str, int]) -> int:
    assert row["cost_pico"] % 1000 == 0, row
    return row["cost_pico"] // 1000
