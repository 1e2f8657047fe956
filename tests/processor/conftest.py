from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from costline.processor.model import LLMCall
from tests.postgres import POSTGRES_ADMIN, fresh_database  # noqa: F401 - POSTGRES_ADMIN: the fault suites' import
from tests.processor.served import serving  # noqa: F401 - a fixture (a real `costline serve`, stopped after the test)

EXAMPLE_CONFIG = Path(__file__).with_name("example.yaml")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """The same tests on SQLite and on the real PostgreSQL server (a fresh database each time)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.db'}"
        return
    with fresh_database() as url:
        yield url

def at(year, month, day, hour=12) -> int:
    return int(datetime(year, month, day, hour, tzinfo=timezone.utc).timestamp() * 1e9)


def make_call(n: int = 0, *, model="gpt-4o-mini-2024-07-18", provider="openai", input_tokens=1000, output=100,
              cache_read=0, cache_write=0, team="search", org="acme", start=None, response_id=None,
              fingerprint=None, error=None, trace=b"\x01" * 16, **owner) -> LLMCall:
    attrs = {"costline.team": team, "costline.org": org, **{f"costline.{k}": v for k, v in owner.items()}}
    return LLMCall(
        provider=provider, request_model=model, response_model=model, operation="chat",
        input_tokens=input_tokens, output_tokens=output, cache_read_tokens=cache_read, cache_write_tokens=cache_write,
        has_usage=True, error_type=error, trace_id=trace, span_id=n.to_bytes(8, "big"),
        start_time_unix_nano=start or at(2026, 11, 10), response_id=response_id,
        owner={k: v for k, v in attrs.items() if v}, api_key_fingerprint=fingerprint,
    )
