"""Against a real HTTP server: chunks reach the application as they arrive, never buffered by Costline."""

from __future__ import annotations

import time

import anthropic
import openai

from .conftest import ANTHROPIC_KEY, OPENAI_KEY

DELAY_MS = 100
MESSAGES = [{"role": "user", "content": "hi"}]


def _arrival_times(stream, started: float) -> list[float]:
    return [time.perf_counter() - started for _ in stream]


def test_openai_chunks_arrive_as_sent(spans, fake_server):
    client = openai.OpenAI(api_key=OPENAI_KEY, base_url=fake_server.openai_base_url)
    started = time.perf_counter()
    stream = client.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, stream=True, extra_headers={"x-fake-chunk-delay-ms": str(DELAY_MS)}
    )
    times = _arrival_times(stream, started)
    # The server sends a chunk every DELAY_MS: the app must see the first long before the last was even sent.
    assert len(times) == 5
    assert times[-1] - times[0] >= 3 * DELAY_MS / 1000 * 0.9
    ttft = spans.one().attributes["gen_ai.response.time_to_first_chunk"]
    assert ttft < times[-1] - 2 * DELAY_MS / 1000
    # the server received Costline's include_usage request over the wire
    assert b'"include_usage":true' in fake_server.requests[-1][2].replace(b" ", b"")


def test_anthropic_chunks_arrive_as_sent(spans, fake_server):
    client = anthropic.Anthropic(api_key=ANTHROPIC_KEY, base_url=fake_server.anthropic_base_url, open_telemetry=False)
    started = time.perf_counter()
    stream = client.messages.create(
        model="claude-haiku-4-5", max_tokens=10, messages=MESSAGES, stream=True,
        extra_headers={"x-fake-chunk-delay-ms": str(DELAY_MS)},
    )
    times = _arrival_times(stream, started)
    assert times[-1] - times[0] >= 5 * DELAY_MS / 1000 * 0.9
    ttft = spans.one().attributes["gen_ai.response.time_to_first_chunk"]
    assert ttft < times[-1] - 4 * DELAY_MS / 1000
