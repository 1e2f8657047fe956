"""Record `opentelemetry-instrumentation-botocore`'s Bedrock Runtime spans → tests/fixtures/spans/botocore/bedrock.json.

    pip install 'opentelemetry-instrumentation-botocore>=0.66b2' 'botocore>=1.44' opentelemetry-sdk \
        opentelemetry-exporter-otlp-proto-common
    PYTHONPATH=instrumentation/src:processor/src .venv/bin/python scripts/record-spans/python/botocore_bedrock.py

Workload, through a real botocore `bedrock-runtime` client against `BedrockServer`, a local HTTP server speaking
Bedrock's wire format: Converse (a plain chat, and one reading and writing the prompt cache), ConverseStream (the
`application/vnd.amazon.eventstream` framing, encoded here from the AWS spec since botocore only decodes it, and
checked by decoding it with botocore's own parser) and InvokeModel with a Titan embeddings body. Bedrock counts
`inputTokens` WITHOUT the cache (`cacheReadInputTokens` and `cacheWriteInputTokens` are beside them): the recorded
usage is as Bedrock reports it.
"""

from __future__ import annotations

import binascii
import json
import struct
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Recorder, write_fixture  # noqa: E402

CLAUDE = "global.anthropic.claude-sonnet-4-5-20250929-v1:0"
TITAN = "amazon.titan-embed-text-v2:0"


def usage(input: int, output: int, cache_read: int = 0, cache_write: int = 0) -> dict[str, int]:
    """Bedrock's usage: `inputTokens` exclude the cache; `totalTokens` is everything."""
    found = {"inputTokens": input, "outputTokens": output,
             "totalTokens": input + output + cache_read + cache_write}
    if cache_read or cache_write:
        found.update(cacheReadInputTokens=cache_read, cacheWriteInputTokens=cache_write)
    return found


# --- the event-stream framing (AWS "Event Stream Encoding") ---------------------------------------------------------
def _header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode(), value.encode()
    return struct.pack("!B", len(raw_name)) + raw_name + struct.pack("!BH", 7, len(raw_value)) + raw_value  # 7: string


def event_message(event_type: str, payload: dict[str, Any]) -> bytes:
    """One message: prelude (total length, headers length, CRC32 of both), headers, payload, CRC32 of all before."""
    headers = (_header(":event-type", event_type) + _header(":content-type", "application/json")
               + _header(":message-type", "event"))
    body = json.dumps(payload).encode()
    total = 12 + len(headers) + len(body) + 4
    prelude = struct.pack("!II", total, len(headers))
    prelude += struct.pack("!I", binascii.crc32(prelude))
    message = prelude + headers + body
    return message + struct.pack("!I", binascii.crc32(message))


def converse_stream_events(text: str, reported: dict[str, int]) -> bytes:
    events = [("messageStart", {"role": "assistant"})]
    events += [("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": word}}) for word in text.split(" ")]
    events += [("contentBlockStop", {"contentBlockIndex": 0}), ("messageStop", {"stopReason": "end_turn"}),
               ("metadata", {"usage": reported, "metrics": {"latencyMs": 12}})]
    return b"".join(event_message(kind, payload) for kind, payload in events)


# --- the server -------------------------------------------------------------------------------------------------------
class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: BedrockServer  # type: ignore[assignment]

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("content-length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        # /model/{modelId}/{converse | converse-stream | invoke}; the model id is URL-encoded (its ':').
        _, _, model, action = self.path.split("/", 3)
        model = unquote(model)
        reported = self.server.usage.get(json.dumps(body.get("messages") or body.get("inputText")), usage(20, 5))
        if action == "converse":
            self._send("application/json", json.dumps({
                "output": {"message": {"role": "assistant", "content": [{"text": "Costline counts every token."}]}},
                "stopReason": "end_turn", "usage": reported, "metrics": {"latencyMs": 12}}).encode())
        elif action == "converse-stream":
            self._send("application/vnd.amazon.eventstream",
                       converse_stream_events("Costline counts every token.", reported))
        elif action == "invoke" and model.startswith("amazon.titan-embed"):
            self._send("application/json", json.dumps({"embedding": [0.1, 0.2, 0.3],
                                                       "inputTextTokenCount": reported["inputTokens"]}).encode())
        else:
            self._send("application/json", b'{"message": "no such route"}', status=404)

    def _send(self, content_type: str, payload: bytes, status: int = 200) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("x-amzn-requestid", "req-fake-bedrock")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class BedrockServer(ThreadingHTTPServer):
    """Bedrock Runtime on 127.0.0.1; `usage` maps a request's messages (as JSON) to the usage to report."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.usage: dict[str, dict[str, int]] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def __enter__(self) -> BedrockServer:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()


def _check_framing() -> None:
    """The framing written above is what botocore's own event-stream parser reads back, CRCs included."""
    from botocore.eventstream import EventStreamBuffer

    buffer = EventStreamBuffer()
    buffer.add_data(converse_stream_events("a b", usage(1, 2)))
    kinds = [message.headers[":event-type"] for message in buffer]
    assert kinds == ["messageStart", "contentBlockDelta", "contentBlockDelta", "contentBlockStop", "messageStop",
                     "metadata"], kinds


def workload(recorder: Recorder, _server: object = None) -> None:
    """The five calls, each its own export, against a `BedrockServer` of its own (shared with the live test)."""
    import botocore.session
    from opentelemetry.instrumentation.botocore import BotocoreInstrumentor

    _check_framing()
    BotocoreInstrumentor().instrument(tracer_provider=recorder.provider)
    with BedrockServer() as server:
        client = botocore.session.get_session().create_client(
            "bedrock-runtime", region_name="us-east-1", endpoint_url=server.url,
            aws_access_key_id="AKIDRECORD", aws_secret_access_key="record-secret")

        def say(text: str, reported: dict[str, int]) -> list[dict[str, Any]]:
            messages = [{"role": "user", "content": [{"text": text}]}]
            server.usage[json.dumps(messages)] = reported
            return messages

        def chat() -> None:
            client.converse(modelId=CLAUDE, messages=say("hello", usage(1000, 50)))

        def stream() -> None:
            response = client.converse_stream(modelId=CLAUDE, messages=say("stream", usage(1200, 60)))
            for _ in response["stream"]:
                pass

        def cached() -> None:
            client.converse(modelId=CLAUDE, messages=say("cached", usage(300, 80, cache_read=1500, cache_write=200)))

        def cached_stream() -> None:
            response = client.converse_stream(modelId=CLAUDE, messages=say("cached stream",
                                                                           usage(100, 40, cache_read=1700)))
            for _ in response["stream"]:
                pass

        def embeddings() -> None:
            server.usage[json.dumps("a b")] = usage(16, 0)
            client.invoke_model(modelId=TITAN, body=json.dumps({"inputText": "a b"}),
                                contentType="application/json", accept="application/json")

        for step in (chat, stream, cached, cached_stream, embeddings):
            recorder.step(step)


EXPECTED = [
    {"provider": "aws.bedrock", "model": CLAUDE, "operation": "chat", "input_tokens": 1000,
     "output_tokens": 50},
    {"provider": "aws.bedrock", "model": CLAUDE, "operation": "chat", "input_tokens": 1200,
     "output_tokens": 60},
    {"provider": "aws.bedrock", "model": CLAUDE, "operation": "chat", "input_tokens": 300,
     "cache_read_tokens": 1500, "cache_write_tokens": 200, "output_tokens": 80,
     "note": "Bedrock's inputTokens exclude the cache: 300 uncached"},
    {"provider": "aws.bedrock", "model": CLAUDE, "operation": "chat", "input_tokens": 100,
     "cache_read_tokens": 1700, "output_tokens": 40},
    {"provider": "aws.bedrock", "model": TITAN, "operation": "embeddings", "input_tokens": 16},
]


def main() -> None:
    recorder = Recorder()
    workload(recorder)
    write_fixture(
        "botocore", "bedrock", packages=["opentelemetry-instrumentation-botocore", "botocore"],
        script="botocore_bedrock.py",
        workload="Converse chat and cached chat, ConverseStream and cached ConverseStream, InvokeModel Titan "
                 "embeddings, against a local server speaking Bedrock's wire format",
        requests=recorder.requests, expected=EXPECTED,
    )


if __name__ == "__main__":
    main()
