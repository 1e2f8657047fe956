"""Telemetry code never raises into the application's call; SDK errors pass through untouched."""

from __future__ import annotations

import openai
import pytest

from costline.instrumentation import guard
from costline.instrumentation.openai import usage as openai_usage

from .conftest import OPENAI_KEY, mock_http

MESSAGES = [{"role": "user", "content": "hi"}]


def _boom(*args, **kwargs):
    raise RuntimeError("bug inside Costline")


def test_bug_reading_a_response_is_swallowed_and_counted(spans, monkeypatch, caplog):
    monkeypatch.setattr("costline.instrumentation.openai.record_response", _boom)
    before = guard.internal_errors()
    client = openai.OpenAI(api_key=OPENAI_KEY, http_client=mock_http())
    with caplog.at_level("DEBUG", logger="costline.instrumentation"):
        result = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert result.choices[0].message.content
    assert guard.internal_errors() == before + 1
    assert "bug inside Costline" in caplog.text
    assert len(spans.all()) == 1  # the span still ends


def test_bug_observing_stream_chunks_never_reaches_the_app(spans, monkeypatch):
    monkeypatch.setattr(openai_usage.ChunkStreamObserver, "observe", _boom)
    client = openai.OpenAI(api_key=OPENAI_KEY, http_client=mock_http())
    chunks = list(client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True))
    assert len(chunks) >= 4
    assert len(spans.all()) == 1


def test_bug_starting_the_span_leaves_the_call_alone(spans, monkeypatch):
    monkeypatch.setattr("costline.instrumentation.openai.provider_for", _boom)
    before = guard.internal_errors()
    client = openai.OpenAI(api_key=OPENAI_KEY, http_client=mock_http())
    assert client.chat.completions.create(model="gpt-4o", messages=MESSAGES).id == "chatcmpl-fake123"
    assert spans.all() == []
    assert guard.internal_errors() == before + 1


def test_interruption_propagates_and_is_not_an_api_error(spans):
    def handler(request):
        raise KeyboardInterrupt  # a BaseException: must propagate, span must not swallow it

    client = openai.OpenAI(api_key=OPENAI_KEY, http_client=mock_http(handler), max_retries=0)
    with pytest.raises(KeyboardInterrupt):
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    span = spans.one()
    assert "error.type" not in span.attributes  # an interruption is not an API error


class _Abort(BaseException):
    """Not an `Exception`: no SDK version wraps it, so what reaches the caller is exactly what Costline re-raised."""


def test_exception_from_below_the_sdk_is_the_same_object(spans):
    sentinel = _Abort("raised by the transport")

    def handler(request):
        raise sentinel

    client = openai.OpenAI(api_key=OPENAI_KEY, http_client=mock_http(handler), max_retries=0)
    with pytest.raises(_Abort) as info:
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert info.value is sentinel
    assert spans.one().status.status_code.name == "UNSET"  # an abort is not an API error
