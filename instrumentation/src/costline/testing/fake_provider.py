"""A fake LLM provider speaking the exact OpenAI and Anthropic wire formats, for tests, benchmarks and the demo.

Two faces over one response function (`respond`):

* `mock_transport_handler` — plug into `httpx2.MockTransport`, no socket at all;
* `FakeProviderServer` — a real HTTP/1.1 server on 127.0.0.1 that writes SSE streams chunk by chunk.

Endpoints: OpenAI `/v1/chat/completions`, `/v1/responses`, `/v1/embeddings`, `/v1/completions` (also under Azure's
`/openai/deployments/{name}/...`), `/v1/audio/transcriptions` and `/translations` (multipart; token usage, or
duration for `whisper-1`; streamed as `transcript.text.*` events), `/v1/images/generations` and `/edits`; Anthropic
`/v1/messages`, the same messages on AWS Bedrock (`/model/{id}/invoke`, and `/invoke-with-response-stream` in AWS's
binary event-stream framing) and on Google Vertex AI (`.../publishers/anthropic/models/{id}:rawPredict`,
`:streamRawPredict`). JSON bodies and SSE streams follow the real APIs, including OpenAI's usage-only final chunk
(only when `stream_options.include_usage` is set) and Anthropic's `message_start` / `message_delta` usage events.

Request headers steer scenarios:

* `x-fake-usage: {"input": 1000, "cached": 400, "cache_write": 0, "output": 50, "reasoning": 10}` — exact usage;
  also `cache_write_1h` (of `cache_write`), `audio_in`, `image_in` (of `input`), `audio_out`, `image_out` (of
  `output`), `web_searches`, `code_executions`; each reported where the real API reports it;
* `x-fake-service-tier: flex` — the tier the response says it was billed at (else OpenAI echoes the request's
  `service_tier`, `auto` answering `default`, and Anthropic says `standard`);
* `x-fake-scenario: 429-once` (429 with `retry-after-ms: 1` on the first attempt, then success),
  `500` (always 500), `midstream-error` (stream breaks after the first chunk with an error event);
* `x-fake-chunk-delay-ms: N` — delay between SSE chunks (server only).

The server also keeps the provider's own book: `GET /v1/organization/usage/completions` (OpenAI's admin Usage API,
bearer token required, paginated) reports every OpenAI completion call it answered, per UTC day, model (the dated
snapshot it answered with), `api_key_id` (`key_` and the fingerprint of the caller's API key) and `project_id` (the
`OpenAI-Project` header, else `proj_default`) — what `costline reconcile --api-base` reads.

Stdlib only: importing this pulls nothing into an application.
"""

from __future__ import annotations

import base64
import json
import struct
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from costline.fingerprint import fingerprint
from costline.testing.admin_reports import OPENAI_USAGE_PATH, Served, day_of_unix, openai_usage_buckets, page

DEFAULT_USAGE = {"input": 120, "cached": 0, "cache_write": 0, "output": 24, "reasoning": 0, "cache_write_1h": 0,
                 "audio_in": 0, "image_in": 0, "audio_out": 0, "image_out": 0, "web_searches": 0,
                 "code_executions": 0}
CHUNK_TEXTS = ("Costline ", "counts ", "every ", "token.")


@dataclass
class FakeResponse:
    status: int
    headers: dict[str, str]
    body: bytes = b""
    chunks: list[bytes] = field(default_factory=list)
    """For SSE: the events, each written and flushed on its own."""

    @property
    def streamed(self) -> bool:
        return bool(self.chunks)


def _usage(headers: dict[str, str], body: dict[str, Any]) -> dict[str, int]:
    raw = headers.get("x-fake-usage")
    usage = dict(DEFAULT_USAGE)
    if raw:
        usage.update({k: int(v) for k, v in json.loads(raw).items()})
    elif isinstance(body.get("input"), (str, list)):  # embeddings: size of the input
        usage["input"] = 8 * (len(body["input"]) if isinstance(body["input"], list) else 1)
    return usage


def _json(status: int, payload: Any, extra: dict[str, str] | None = None) -> FakeResponse:
    headers = {"content-type": "application/json", **(extra or {})}
    return FakeResponse(status, headers, json.dumps(payload).encode())


def _sse(events: list[tuple[str | None, Any]]) -> FakeResponse:
    chunks = []
    for event, data in events:
        text = data if isinstance(data, str) else json.dumps(data)
        chunks.append(((f"event: {event}\n" if event else "") + f"data: {text}\n\n").encode())
    return FakeResponse(200, {"content-type": "text/event-stream", "cache-control": "no-cache"}, chunks=chunks)


def _openai_error(status: int, kind: str, message: str) -> FakeResponse:
    extra = {"retry-after-ms": "1", "x-request-id": "req_fake"} if status == 429 else {}
    return _json(status, {"error": {"message": message, "type": kind, "param": None, "code": kind}}, extra)


def _anthropic_error(status: int, kind: str, message: str) -> FakeResponse:
    extra = {"retry-after-ms": "1", "request-id": "req_fake"} if status == 429 else {}
    return _json(status, {"type": "error", "error": {"type": kind, "message": message}}, extra)


def _parse_body(headers: dict[str, str], raw_body: bytes) -> dict[str, Any]:
    """A JSON body, or the text fields of a multipart form (the audio and image endpoints upload files)."""
    content_type = headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        message = BytesParser(policy=HTTP).parsebytes(b"content-type: " + content_type.encode() + b"\r\n\r\n"
                                                      + raw_body)
        fields: dict[str, Any] = {}
        for part in message.iter_parts():
            if part.get_filename() is None:
                fields[part.get_param("name", header="content-disposition")] = part.get_content().strip()
        if "stream" in fields:
            fields["stream"] = fields["stream"] == "true"
        return fields
    body = json.loads(raw_body or b"{}")
    if not isinstance(body, dict):
        raise ValueError("not a JSON object")
    return body


_BEDROCK_PREFIX = "/model/"
_VERTEX_MARKER = "/publishers/anthropic/models/"


def _platform_model(path: str) -> tuple[str, bool] | None:
    """(model, streamed) of a Bedrock or Vertex AI messages path, which names both; None for any other path."""
    if path.startswith(_BEDROCK_PREFIX) and path.endswith(("/invoke", "/invoke-with-response-stream")):
        model, _, action = path[len(_BEDROCK_PREFIX):].rpartition("/")
        return unquote(model), action == "invoke-with-response-stream"
    if _VERTEX_MARKER in path and path.endswith((":rawPredict", ":streamRawPredict")):
        model, _, action = path.split(_VERTEX_MARKER, 1)[1].rpartition(":")
        return unquote(model), action == "streamRawPredict"
    return None


def respond(method: str, path: str, headers: dict[str, str], raw_body: bytes) -> FakeResponse:
    """The fake provider's answer to one HTTP request (headers with lowercase names)."""
    platform = _platform_model(path)
    anthropic = path.endswith("/v1/messages") or path == "/messages" or platform is not None
    try:
        body = _parse_body(headers, raw_body)
    except ValueError:
        return (_anthropic_error if anthropic else _openai_error)(400, "invalid_request_error", "bad JSON")
    scenario = headers.get("x-fake-scenario", "")
    if scenario == "429-once" and headers.get("x-stainless-retry-count", "0") == "0":
        return (_anthropic_error if anthropic else _openai_error)(429, "rate_limit_error", "slow down")
    if scenario == "500":
        return (_anthropic_error if anthropic else _openai_error)(500, "api_error", "internal error")
    usage = _usage(headers, body)
    model = str(body.get("model", "unknown-model"))
    midstream_error = scenario == "midstream-error"
    tier = headers.get("x-fake-service-tier")
    if platform is not None:
        # Bedrock takes the model and the stream flag from the path (the SDK pops both from the body).
        model, streamed = platform
        body = {**body, "stream": streamed}
        answer = _anthropic_message(model, body, usage, midstream_error, tier)
        return _aws_event_stream(answer) if streamed and path.startswith(_BEDROCK_PREFIX) else answer
    if anthropic:
        return _anthropic_message(model, body, usage, midstream_error, tier)
    if not tier:
        asked = body.get("service_tier")
        tier = "default" if asked in (None, "auto") else str(asked)
    if path.endswith("/chat/completions"):
        return _chat(model, body, usage, midstream_error, tier)
    if path.endswith("/responses"):
        return _responses(model, body, usage, midstream_error, tier)
    if path.endswith(("/audio/transcriptions", "/audio/translations")):
        return _transcription(model, body, usage)
    if path.endswith(("/images/generations", "/images/edits")):
        return _json(200, {"created": 1_700_000_000, "data": [{"b64_json": base64.b64encode(b"png").decode()}],
                           "usage": _image_usage(usage)})
    if path.endswith("/embeddings"):
        return _json(200, {
            "object": "list",
            "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2, 0.3]}],
            "model": model,
            "usage": {"prompt_tokens": usage["input"], "total_tokens": usage["input"]},
        })
    if path.endswith("/completions"):
        return _completion(model, body, usage)
    return _openai_error(404, "not_found", f"no route {method} {path}")


def _served_model(model: str) -> str:
    """What the provider reports as billed: dated snapshots for aliases, as the real APIs do."""
    return {"gpt-4o": "gpt-4o-2024-08-06", "gpt-4o-mini": "gpt-4o-mini-2024-07-18"}.get(model, model)


def _openai_usage(usage: dict[str, int]) -> dict[str, Any]:
    return {
        "prompt_tokens": usage["input"],
        "completion_tokens": usage["output"],
        "total_tokens": usage["input"] + usage["output"],
        "prompt_tokens_details": {"cached_tokens": usage["cached"], "cache_write_tokens": usage["cache_write"],
                                  "audio_tokens": usage["audio_in"], "image_tokens": usage["image_in"]},
        "completion_tokens_details": {"reasoning_tokens": usage["reasoning"], "audio_tokens": usage["audio_out"]},
    }


def _media_input(usage: dict[str, int], kind: str) -> dict[str, int]:
    return {f"{kind}_tokens": usage[f"{kind}_in"], "text_tokens": usage["input"] - usage[f"{kind}_in"]}


def _image_usage(usage: dict[str, int]) -> dict[str, Any]:
    """gpt-image-1's usage; the output split only when the scenario gives image output tokens (the older shape,
    still answered, has none: every output token is an image token)."""
    shape: dict[str, Any] = {"input_tokens": usage["input"], "output_tokens": usage["output"],
                             "total_tokens": usage["input"] + usage["output"],
                             "input_tokens_details": _media_input(usage, "image")}
    if usage["image_out"]:
        shape["output_tokens_details"] = {"image_tokens": usage["image_out"],
                                          "text_tokens": usage["output"] - usage["image_out"]}
    return shape


def _transcription(model: str, body: dict[str, Any], usage: dict[str, int]) -> FakeResponse:
    text = "".join(CHUNK_TEXTS)
    if model == "whisper-1":  # billed by the minute: OpenAI reports the duration, no tokens
        return _json(200, {"text": text, "usage": {"type": "duration", "seconds": 12}})
    tokens = {"type": "tokens", "input_tokens": usage["input"], "output_tokens": usage["output"],
              "total_tokens": usage["input"] + usage["output"], "input_token_details": _media_input(usage, "audio")}
    if not body.get("stream"):
        return _json(200, {"text": text, "usage": tokens})
    events: list[tuple[str | None, Any]] = [
        (None, {"type": "transcript.text.delta", "delta": piece}) for piece in CHUNK_TEXTS]
    events.append((None, {"type": "transcript.text.done", "text": text, "usage": tokens}))
    return _sse(events)


def _chat(model: str, body: dict[str, Any], usage: dict[str, int], midstream_error: bool, tier: str) -> FakeResponse:
    served = _served_model(model)
    base = {"id": "chatcmpl-fake123", "created": 1_700_000_000, "model": served, "system_fingerprint": "fp_fake",
            "service_tier": tier}
    if not body.get("stream"):
        return _json(200, {**base, "object": "chat.completion", "choices": [{
            "index": 0, "message": {"role": "assistant", "content": "".join(CHUNK_TEXTS), "refusal": None},
            "logprobs": None, "finish_reason": "stop"}], "usage": _openai_usage(usage)})
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    events: list[tuple[str | None, Any]] = []
    for i, text in enumerate(CHUNK_TEXTS):
        delta = {"role": "assistant", "content": text} if i == 0 else {"content": text}
        events.append((None, {**base, "object": "chat.completion.chunk",
                              "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}],
                              **({"usage": None} if include_usage else {})}))
        if midstream_error:
            events.append((None, {"error": {"message": "upstream overloaded", "type": "server_error"}}))
            return _sse(events)
    events.append((None, {**base, "object": "chat.completion.chunk",
                          "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}],
                          **({"usage": None} if include_usage else {})}))
    if include_usage:
        events.append((None, {**base, "object": "chat.completion.chunk", "choices": [],
                              "usage": _openai_usage(usage)}))
    events.append((None, "[DONE]"))
    return _sse(events)


def _completion(model: str, body: dict[str, Any], usage: dict[str, int]) -> FakeResponse:
    base = {"id": "cmpl-fake123", "object": "text_completion", "created": 1_700_000_000, "model": model}
    if not body.get("stream"):
        return _json(200, {**base, "choices": [{"index": 0, "text": "".join(CHUNK_TEXTS), "logprobs": None,
                                                "finish_reason": "stop"}], "usage": _openai_usage(usage)})
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    events: list[tuple[str | None, Any]] = [
        (None, {**base, "choices": [{"index": 0, "text": t, "logprobs": None, "finish_reason": None}]})
        for t in CHUNK_TEXTS
    ]
    if include_usage:
        events.append((None, {**base, "choices": [], "usage": _openai_usage(usage)}))
    events.append((None, "[DONE]"))
    return _sse(events)


_MESSAGE_ITEM = {"type": "message", "id": "msg_fake", "status": "completed", "role": "assistant",
                 "content": [{"type": "output_text", "text": "".join(CHUNK_TEXTS), "annotations": []}]}


def _response_object(model: str, usage: dict[str, int], status: str, with_output: bool,
                     tier: str = "default") -> dict[str, Any]:
    # The web searches the model ran come before its answer, one output item each, as the real API lists them.
    searches = [{"type": "web_search_call", "id": f"ws_fake{i}", "status": "completed",
                 "action": {"type": "search", "query": "costline"}} for i in range(usage["web_searches"])]
    return {
        "id": "resp_fake123", "object": "response", "created_at": 1_700_000_000, "status": status,
        "model": _served_model(model), "output": [*searches, _MESSAGE_ITEM] if with_output else [],
        "parallel_tool_calls": True, "tool_choice": "auto", "tools": [], "service_tier": tier,
        "usage": {
            "input_tokens": usage["input"],
            "input_tokens_details": {"cached_tokens": usage["cached"], "cache_write_tokens": usage["cache_write"]},
            "output_tokens": usage["output"],
            "output_tokens_details": {"reasoning_tokens": usage["reasoning"]},
            "total_tokens": usage["input"] + usage["output"],
        } if status == "completed" else None,
    }


def _responses(model: str, body: dict[str, Any], usage: dict[str, int], midstream_error: bool,
               tier: str) -> FakeResponse:
    if not body.get("stream"):
        return _json(200, _response_object(model, usage, "completed", True, tier))
    seq = iter(range(1000))
    events: list[tuple[str | None, Any]] = [
        ("response.created", {"type": "response.created", "sequence_number": next(seq),
                              "response": _response_object(model, usage, "in_progress", False)}),
        ("response.output_item.added", {
            "type": "response.output_item.added", "sequence_number": next(seq), "output_index": 0,
            "item": {"type": "message", "id": "msg_fake", "status": "in_progress", "role": "assistant",
                     "content": []}}),
        ("response.content_part.added", {
            "type": "response.content_part.added", "sequence_number": next(seq), "item_id": "msg_fake",
            "output_index": 0, "content_index": 0,
            "part": {"type": "output_text", "text": "", "annotations": []}}),
    ]
    for text in CHUNK_TEXTS:
        events.append(("response.output_text.delta", {
            "type": "response.output_text.delta", "sequence_number": next(seq), "item_id": "msg_fake",
            "output_index": 0, "content_index": 0, "delta": text, "logprobs": []}))
        if midstream_error:
            events.append(("error", {"type": "error", "sequence_number": next(seq), "code": "server_error",
                                     "message": "upstream overloaded", "param": None}))
            return _sse(events)
    text = "".join(CHUNK_TEXTS)
    events += [
        ("response.output_text.done", {"type": "response.output_text.done", "sequence_number": next(seq),
                                       "item_id": "msg_fake", "output_index": 0, "content_index": 0, "text": text,
                                       "logprobs": []}),
        ("response.content_part.done", {"type": "response.content_part.done", "sequence_number": next(seq),
                                        "item_id": "msg_fake", "output_index": 0, "content_index": 0,
                                        "part": {"type": "output_text", "text": text, "annotations": []}}),
        ("response.output_item.done", {"type": "response.output_item.done", "sequence_number": next(seq),
                                       "output_index": 0, "item": _MESSAGE_ITEM}),
    ]
    events.append(("response.completed", {"type": "response.completed", "sequence_number": next(seq),
                                          "response": _response_object(model, usage, "completed", True, tier)}))
    return _sse(events)


def _anthropic_message(model: str, body: dict[str, Any], usage: dict[str, int], midstream_error: bool,
                       tier: str | None = None) -> FakeResponse:
    # Anthropic's input_tokens exclude cache reads and writes: the fake's "input" is the semconv total.
    uncached = max(usage["input"] - usage["cached"] - usage["cache_write"], 0)
    full_usage: dict[str, Any] = {
        "input_tokens": uncached,
        "cache_read_input_tokens": usage["cached"],
        "cache_creation_input_tokens": usage["cache_write"],
        "cache_creation": {"ephemeral_5m_input_tokens": usage["cache_write"] - usage["cache_write_1h"],
                           "ephemeral_1h_input_tokens": usage["cache_write_1h"]},
        "output_tokens": usage["output"],
        "service_tier": tier or "standard",
    }
    tools = None
    if usage["web_searches"] or usage["code_executions"]:
        tools = {"web_search_requests": usage["web_searches"], "web_fetch_requests": 0}
        if usage["code_executions"]:
            tools["code_execution_requests"] = usage["code_executions"]
        full_usage["server_tool_use"] = tools
    message = {"id": "msg_fake123", "type": "message", "role": "assistant", "model": model,
               "stop_reason": "end_turn", "stop_sequence": None}
    if not body.get("stream"):
        return _json(200, {**message, "content": [{"type": "text", "text": "".join(CHUNK_TEXTS)}],
                           "usage": full_usage}, {"request-id": "req_fake"})
    # The tools run while the message streams: `message_start` has none yet, the final `message_delta` counts them.
    start_usage = {k: v for k, v in full_usage.items() if k != "server_tool_use"}
    start_usage["output_tokens"] = 1
    events: list[tuple[str | None, Any]] = [
        ("message_start", {"type": "message_start", "message": {**message, "stop_reason": None, "content": [],
                                                                "usage": start_usage}}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "text", "text": ""}}),
        ("ping", {"type": "ping"}),
    ]
    for text in CHUNK_TEXTS:
        events.append(("content_block_delta", {"type": "content_block_delta", "index": 0,
                                               "delta": {"type": "text_delta", "text": text}}))
        if midstream_error:
            events.append(("error", {"type": "error", "error": {"type": "overloaded_error",
                                                                "message": "Overloaded"}}))
            return _sse(events)
    events += [
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                           "usage": {"output_tokens": usage["output"],
                                     **({"server_tool_use": tools} if tools else {})}}),
        ("message_stop", {"type": "message_stop"}),
    ]
    return _sse(events)


def _aws_event_stream(answer: FakeResponse) -> FakeResponse:
    """An Anthropic SSE answer as Bedrock streams it: each event's JSON base64-encoded in a `chunk` frame of AWS's
    binary event-stream encoding (prelude with lengths and CRC32, string headers, payload, message CRC32)."""
    frames = []
    for chunk in answer.chunks:
        data = chunk.decode().split("data: ", 1)[1].strip()
        if json.loads(data).get("type") == "ping":
            continue
        payload = json.dumps({"bytes": base64.b64encode(data.encode()).decode()}).encode()
        headers = b"".join(_aws_header(name, value) for name, value in (
            (":event-type", "chunk"), (":content-type", "application/json"), (":message-type", "event")))
        prelude = struct.pack(">II", 12 + len(headers) + len(payload) + 4, len(headers))
        message = prelude + struct.pack(">I", zlib.crc32(prelude)) + headers + payload
        frames.append(message + struct.pack(">I", zlib.crc32(message)))
    return FakeResponse(200, {"content-type": "application/vnd.amazon.eventstream"}, chunks=frames)


def _aws_header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode(), value.encode()
    return struct.pack(">B", len(raw_name)) + raw_name + b"\x07" + struct.pack(">H", len(raw_value)) + raw_value


# --- face 1: httpx2.MockTransport -----------------------------------------------------------------------------------
def mock_transport_handler(request: Any) -> Any:
    """Handler for `httpx2.MockTransport`: `httpx2.Client(transport=httpx2.MockTransport(mock_transport_handler))`."""
    import httpx2

    headers = {k.lower(): v for k, v in request.headers.items()}
    answer = respond(request.method, request.url.path, headers, request.read())
    content = b"".join(answer.chunks) if answer.streamed else answer.body
    return httpx2.Response(answer.status, headers=answer.headers, content=content)


# --- face 2: a real HTTP server ---------------------------------------------------------------------------------------
class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FakeProviderServer  # type: ignore[assignment]

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence per-request logging
        pass

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.server.record(self.path, headers, raw)
        path = self.path.split("?", 1)[0]
        answer = respond("POST", path, headers, raw)
        if answer.status == 200:
            self.server.bill(path, headers, raw)
        self.send_response(answer.status)
        for key, value in answer.headers.items():
            self.send_header(key, value)
        if not answer.streamed:
            self.send_header("content-length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)
            return
        delay = int(headers.get("x-fake-chunk-delay-ms", "0")) / 1000
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        for chunk in _paced(answer.chunks, delay):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


    def do_GET(self) -> None:  # noqa: N802
        url = urlsplit(self.path)
        if url.path != OPENAI_USAGE_PATH:
            return self._send_json(404, {"error": {"message": f"no route GET {url.path}", "type": "not_found"}})
        if not self.headers.get("authorization", "").startswith("Bearer "):
            return self._send_json(401, {"error": {"message": "an admin key is required", "type": "invalid_api_key"}})
        query = parse_qs(url.query)
        try:
            start, end = day_of_unix(query["start_time"][0]), day_of_unix(query["end_time"][0])
        except (KeyError, ValueError):
            return self._send_json(400, {"error": {"message": "start_time and end_time (unix seconds) are required",
                                                   "type": "invalid_request_error"}})
        buckets = openai_usage_buckets(self.server.billed(), start, end)
        self._send_json(200, {"object": "page", **page(buckets, query)})

    def _send_json(self, status: int, payload: Any) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


_BILLED_PATHS = ("/chat/completions", "/responses", "/completions")
"""OpenAI calls the completions usage report covers (embeddings have a report of their own)."""


def _paced(chunks: list[bytes], delay: float) -> Iterator[bytes]:
    for i, chunk in enumerate(chunks):
        if i and delay:
            time.sleep(delay)
        yield chunk


class FakeProviderServer(ThreadingHTTPServer):
    """`with FakeProviderServer() as server: openai.OpenAI(base_url=server.openai_base_url, ...)`."""

    daemon_threads = True
    request_queue_size = 128
    """socketserver's default listen backlog is 5: an app calling from 20 threads at once overflowed it, and the
    connections the kernel then dropped reached the SDK as `APIConnectionError` (a real provider's backlog is far
    larger)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__((host, port), _Handler)
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self._billed: list[Served] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def record(self, path: str, headers: dict[str, str], body: bytes) -> None:
        with self._lock:
            self.requests.append((path, headers, body))

    def bill(self, path: str, headers: dict[str, str], raw: bytes) -> None:
        """Book an answered OpenAI completion call for the usage report."""
        if path.endswith("/v1/messages") or not path.endswith(_BILLED_PATHS):
            return
        body = json.loads(raw or b"{}")
        usage = _usage(headers, body)
        key = headers.get("authorization", "").removeprefix("Bearer ").strip()
        served = Served(datetime.now(timezone.utc).date(), _served_model(str(body.get("model", "unknown-model"))),
                        f"key_{fingerprint(key)}", headers.get("openai-project") or "proj_default",
                        usage["input"] - usage["cached"], usage["cached"], 0, usage["output"])
        with self._lock:
            self._billed.append(served)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up (an SDK closing a stream early, a demo app exiting with a keep-alive connection
        open) is routine for a provider, not a traceback on the demo's terminal; anything else still is one."""
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)

    def billed(self) -> list[Served]:
        """The OpenAI completion calls answered so far, as the provider books them."""
        with self._lock:
            return list(self._billed)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def openai_base_url(self) -> str:
        return self.url + "/v1"

    @property
    def anthropic_base_url(self) -> str:
        return self.url

    def start(self) -> FakeProviderServer:
        self._thread = threading.Thread(target=self.serve_forever, name="fake-provider", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def __enter__(self) -> FakeProviderServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:
    """`python -m costline.testing.fake_provider [PORT]`: serve until interrupted."""
    import sys

    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8089
    server = FakeProviderServer(port=port)
    print(f"fake provider on {server.url}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
