"""A fake LLM provider speaking the exact OpenAI and Anthropic wire formats, for tests, benchmarks and the demo.

Two faces over one response function (`respond`):

* `mock_transport_handler` — plug into `httpx2.MockTransport`, no socket at all;
* `FakeProviderServer` — a real HTTP/1.1 server on 127.0.0.1 that writes SSE streams chunk by chunk.

Endpoints: OpenAI `/v1/chat/completions`, `/v1/responses`, `/v1/embeddings`, `/v1/completions` (also under Azure's
`/openai/deployments/{name}/...`), Anthropic `/v1/messages`. JSON bodies and SSE streams follow the real APIs,
including OpenAI's usage-only final chunk (only when `stream_options.include_usage` is set) and Anthropic's
`message_start` / `message_delta` usage events.

Request headers steer scenarios:

* `x-fake-usage: {"input": 1000, "cached": 400, "cache_write": 0, "output": 50, "reasoning": 10}` — exact usage;
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

import json
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from costline.fingerprint import fingerprint
from costline.testing.admin_reports import OPENAI_USAGE_PATH, Served, day_of_unix, openai_usage_buckets, page

DEFAULT_USAGE = {"input": 120, "cached": 0, "cache_write": 0, "output": 24, "reasoning": 0}
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


def respond(method: str, path: str, headers: dict[str, str], raw_body: bytes) -> FakeResponse:
    """The fake provider's answer to one HTTP request (headers with lowercase names)."""
    anthropic = path.endswith("/v1/messages") or path == "/messages"
    try:
        body = json.loads(raw_body or b"{}")
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
    if anthropic:
        return _anthropic_message(model, body, usage, midstream_error)
    if path.endswith("/chat/completions"):
        return _chat(model, body, usage, midstream_error)
    if path.endswith("/responses"):
        return _responses(model, body, usage, midstream_error)
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
                                  "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": usage["reasoning"], "audio_tokens": 0},
    }


def _chat(model: str, body: dict[str, Any], usage: dict[str, int], midstream_error: bool) -> FakeResponse:
    served = _served_model(model)
    base = {"id": "chatcmpl-fake123", "created": 1_700_000_000, "model": served, "system_fingerprint": "fp_fake",
            "service_tier": "default"}
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


def _response_object(model: str, usage: dict[str, int], status: str, with_output: bool) -> dict[str, Any]:
    output = [{"type": "message", "id": "msg_fake", "status": "completed", "role": "assistant",
               "content": [{"type": "output_text", "text": "".join(CHUNK_TEXTS), "annotations": []}]}]
    return {
        "id": "resp_fake123", "object": "response", "created_at": 1_700_000_000, "status": status,
        "model": _served_model(model), "output": output if with_output else [], "parallel_tool_calls": True,
        "tool_choice": "auto", "tools": [], "service_tier": "default",
        "usage": {
            "input_tokens": usage["input"],
            "input_tokens_details": {"cached_tokens": usage["cached"]},
            "output_tokens": usage["output"],
            "output_tokens_details": {"reasoning_tokens": usage["reasoning"]},
            "total_tokens": usage["input"] + usage["output"],
        } if status == "completed" else None,
    }


def _responses(model: str, body: dict[str, Any], usage: dict[str, int], midstream_error: bool) -> FakeResponse:
    if not body.get("stream"):
        return _json(200, _response_object(model, usage, "completed", True))
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
                                       "output_index": 0,
                                       "item": _response_object(model, usage, "completed", True)["output"][0]}),
    ]
    events.append(("response.completed", {"type": "response.completed", "sequence_number": next(seq),
                                          "response": _response_object(model, usage, "completed", True)}))
    return _sse(events)


def _anthropic_message(model: str, body: dict[str, Any], usage: dict[str, int], midstream_error: bool) -> FakeResponse:
    # Anthropic's input_tokens exclude cache reads and writes: the fake's "input" is the semconv total.
    uncached = max(usage["input"] - usage["cached"] - usage["cache_write"], 0)
    full_usage = {
        "input_tokens": uncached,
        "cache_read_input_tokens": usage["cached"],
        "cache_creation_input_tokens": usage["cache_write"],
        "output_tokens": usage["output"],
        "service_tier": "standard",
    }
    message = {"id": "msg_fake123", "type": "message", "role": "assistant", "model": model,
               "stop_reason": "end_turn", "stop_sequence": None}
    if not body.get("stream"):
        return _json(200, {**message, "content": [{"type": "text", "text": "".join(CHUNK_TEXTS)}],
                           "usage": full_usage}, {"request-id": "req_fake"})
    start_usage = {**full_usage, "output_tokens": 1}
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
                           "usage": {"output_tokens": usage["output"]}}),
        ("message_stop", {"type": "message_stop"}),
    ]
    return _sse(events)


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
