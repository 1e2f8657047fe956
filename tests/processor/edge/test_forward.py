"""Forwarding downstream: content stripped, LLM spans enriched, a slow downstream never blocks, drops counted."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from costline.processor.forward import Enrichment, Forwarder, rewrite, traces_url
from tests.otlp_sink import OTLPSink

from .otlp import llm_request, llm_span, request_of

CONTENT = {"gen_ai.input.messages": '[{"role":"user"}]', "gen_ai.prompt.0.content": "hi", "input.value": "x",
           "llm.output_messages.0.message.content": "y", "gen_ai.system_instructions": "be nice"}


def test_rewrite_strips_content_and_enriches_llm_spans() -> None:
    llm = llm_span(team="self-declared", extra=CONTENT)
    other = llm_span(extra={"http.route": "/search", **CONTENT})
    request = request_of([llm, other])
    enrichment = Enrichment(cost_usd=0.0123, unpriced=False, owner={"costline.team": "search", "costline.org": "acme"})
    out = rewrite(request, {(llm.trace_id, llm.span_id): enrichment})
    spans = out.resource_spans[0].scope_spans[0].spans
    first = {kv.key: kv.value for kv in spans[0].attributes}
    second = {kv.key: kv.value for kv in spans[1].attributes}
    for attributes in (first, second):
        assert not set(CONTENT) & set(attributes)
    assert first["costline.cost.usd"].double_value == 0.0123
    assert first["costline.unpriced"].bool_value is False
    assert first["costline.team"].string_value == "search"  # the resolved owner replaces the self-declared one
    assert [kv.key for kv in spans[0].attributes].count("costline.team") == 1
    assert first["costline.org"].string_value == "acme"
    assert "costline.cost.usd" not in second and second["http.route"].string_value == "/search"
    # The received request itself is untouched (the ledger and other readers may still hold it).
    assert {kv.key for kv in request.resource_spans[0].scope_spans[0].spans[0].attributes} >= set(CONTENT)


def test_unpriced_spans_carry_no_cost() -> None:
    span = llm_span(model="my-own-llama")
    out = rewrite(request_of([span]), {(span.trace_id, span.span_id): Enrichment(None, True, {})})
    attributes = {kv.key: kv.value for kv in out.resource_spans[0].scope_spans[0].spans[0].attributes}
    assert attributes["costline.unpriced"].bool_value is True
    assert "costline.cost.usd" not in attributes


def test_traces_url() -> None:
    assert traces_url("http://collector:4318") == "http://collector:4318/v1/traces"
    assert traces_url("http://collector:4318/v1/traces") == "http://collector:4318/v1/traces"


def test_forwarder_posts_to_a_real_otlp_receiver() -> None:
    with OTLPSink() as sink:
        forwarder = Forwarder(sink.endpoint).start()
        span = llm_span(extra=CONTENT)
        assert forwarder.submit(request_of([span, llm_span()]), {(span.trace_id, span.span_id):
                                                                 Enrichment(1.5, False, {"costline.team": "x"})})
        forwarder.stop(5)
        received = sink.spans()
    assert len(received) == 2
    assert received[0][2]["costline.cost.usd"] == 1.5
    assert not set(CONTENT) & set(received[0][2])
    assert forwarder.counts() == {"sent": 2, "dropped": 0, "failed": 0}


class _Slow(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers["Content-Length"]))
        self.server.release.wait(10)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


def test_slow_downstream_never_blocks_and_drops_are_counted() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Slow)
    server.daemon_threads = True
    server.release = threading.Event()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    forwarder = Forwarder(f"http://127.0.0.1:{server.server_address[1]}", max_queue_spans=10).start()
    started = time.perf_counter()
    results = [forwarder.submit(llm_request(4), {}) for _ in range(20)]
    elapsed = time.perf_counter() - started
    assert elapsed < 0.5  # 20 submits while the downstream hangs: none of them waited
    # One request is being sent, two more fit in the 10-span queue; everything else was dropped.
    assert results.count(True) <= 3
    assert forwarder.counts()["dropped"] == 4 * results.count(False)
    server.release.set()
    forwarder.stop(5)
    assert forwarder.counts()["sent"] == 4 * results.count(True)
    names = {m.name for m in forwarder.collect()}
    assert names == {"costline_forward_spans", "costline_forward_queue_spans"}
    server.shutdown()
    server.server_close()


def test_unreachable_downstream_counts_failures() -> None:
    with OTLPSink() as sink:
        url = sink.endpoint
    forwarder = Forwarder(url, max_attempts=2).start()  # the sink is closed: connection refused
    forwarder.submit(llm_request(3), {})
    forwarder.stop(5)
    assert forwarder.counts()["failed"] == 3
