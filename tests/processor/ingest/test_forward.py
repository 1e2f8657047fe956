"""Forwarding downstream: content stripped, keys scrubbed, LLM spans enriched, a slow downstream never blocks, drops
counted."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from costline.processor.ingest.forward import Enrichment, Forwarder, rewrite, traces_url
from costline.processor.ingest.redact import REDACTED, scrub
from tests.otlp_sink import OTLPSink
from tests.processor.otlp import attributes as key_values
from tests.processor.otlp import llm_request, llm_span, request_of

CONTENT = {"gen_ai.input.messages": '[{"role":"user"}]', "gen_ai.prompt.0.content": "hi", "input.value": "x",
           "llm.output_messages.0.message.content": "y", "gen_ai.system_instructions": "be nice"}


def test_rewrite_strips_content_and_enriches_llm_spans() -> None:
    llm = llm_span(team="self-declared", extra=CONTENT)
    other = Span(trace_id=llm.trace_id, span_id=b"\x07" * 8, name="GET /search",
                 attributes=key_values({"http.route": "/search", **CONTENT}))
    request = request_of([llm, other])
    enrichment = Enrichment(cost_usd=0.0123, unpriced=False, owner={"costline.team": "search", "costline.org": "acme"})
    out = rewrite(request, {(llm.trace_id, llm.span_id): enrichment}, {(llm.trace_id, llm.span_id)})
    spans = out.resource_spans[0].scope_spans[0].spans
    first = {kv.key: kv.value for kv in spans[0].attributes}
    second = {kv.key: kv.value for kv in spans[1].attributes}
    for attributes in (first, second):
        assert not set(CONTENT) & set(attributes)
    assert first["costline.cost.usd"].double_value == 0.0123
    assert first["gen_ai.usage.cost.amount"].double_value == 0.0123  # the draft semconv's cost, after redaction
    assert first["gen_ai.usage.cost.currency"].string_value == "USD"
    assert first["gen_ai.usage.cost.source"].string_value == "costline"
    assert first["costline.unpriced"].bool_value is False
    assert first["costline.team"].string_value == "search"  # the resolved owner replaces the self-declared one
    assert [kv.key for kv in spans[0].attributes].count("costline.team") == 1
    assert first["costline.org"].string_value == "acme"
    assert "costline.cost.usd" not in second and second["http.route"].string_value == "/search"
    # The received request itself is untouched (the ledger and other readers may still hold it).
    assert {kv.key for kv in request.resource_spans[0].scope_spans[0].spans[0].attributes} >= set(CONTENT)


def test_unpriced_spans_carry_no_cost() -> None:
    span = llm_span(model="my-own-llama")
    key = (span.trace_id, span.span_id)
    out = rewrite(request_of([span]), {key: Enrichment(None, True, {})}, {key})
    attributes = {kv.key: kv.value for kv in out.resource_spans[0].scope_spans[0].spans[0].attributes}
    assert attributes["costline.unpriced"].bool_value is True
    assert "costline.cost.usd" not in attributes
    assert not {"gen_ai.usage.cost.amount", "gen_ai.usage.cost.currency", "gen_ai.usage.cost.source"} & set(attributes)


def test_a_cost_the_span_carried_is_replaced_by_the_bill() -> None:
    span = llm_span(extra={"gen_ai.usage.cost.amount": 9.0, "gen_ai.usage.cost.source": "gateway"})
    key = (span.trace_id, span.span_id)
    out = rewrite(request_of([span]), {key: Enrichment(0.5, False, {})}, {key})
    attributes = [(kv.key, kv.value) for kv in out.resource_spans[0].scope_spans[0].spans[0].attributes]
    costs = [(k, v) for k, v in attributes if k.startswith("gen_ai.usage.cost.")]
    assert sorted((k, v.double_value or v.string_value) for k, v in costs) == [
        ("gen_ai.usage.cost.amount", 0.5), ("gen_ai.usage.cost.currency", "USD"),
        ("gen_ai.usage.cost.source", "costline")]


def test_traces_url() -> None:
    assert traces_url("http://collector:4318") == "http://collector:4318/v1/traces"
    assert traces_url("http://collector:4318/v1/traces") == "http://collector:4318/v1/traces"


def test_forwarder_posts_to_a_real_otlp_receiver() -> None:
    with OTLPSink() as sink:
        forwarder = Forwarder(sink.endpoint).start()
        span, duplicate = llm_span(extra=CONTENT), llm_span()
        keys = {(s.trace_id, s.span_id) for s in (span, duplicate)}
        assert forwarder.submit(request_of([span, duplicate]), {(span.trace_id, span.span_id):
                                                                Enrichment(1.5, False, {"costline.team": "x"})}, keys)
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
    results = [forwarder.submit(llm_request(4), {}, set()) for _ in range(20)]
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
    forwarder.submit(llm_request(3), {}, set())
    forwarder.stop(5)
    assert forwarder.counts()["failed"] == 3


def _attributes(span: Span) -> dict:
    return {kv.key: kv.value for kv in span.attributes}


def test_scrub_replaces_every_key_shape_and_leaves_ordinary_text() -> None:
    for key in ("sk-proj-" + "A1b2" * 12, "sk-ant-api03-" + "x9" * 20 + "-AA", "sk-" + "z" * 48,
                "sk-proj-abc1" + "*" * 30 + "wxyz", "gsk_" + "q1" * 26, "AIza" + "B" * 35):
        assert scrub(f"key={key}.") == f"key={REDACTED}."
    assert scrub("Authorization: Bearer abc.DEF-123_xyz==") == f"Authorization: Bearer {REDACTED}"
    for ordinary in ("task-scheduler-for-the-batch-jobs", "disk-usage", "sk-short", "GET /v1/chat/completions"):
        assert scrub(ordinary) == ordinary


def test_an_unbilled_llm_span_is_cut_to_the_allowlist_too() -> None:
    """The second description of a call (deduplicated, so not enriched) is still an LLM span."""
    span = llm_span(extra={"gen_ai.user": "alice@example.com", "gen_ai.headers": "{'authorization': 'x'}",
                           "gen_ai.request.max_tokens": 100, "gen_ai.usage.cache_creation_input_tokens": 5})
    span.events.add(name="gen_ai.choice", attributes=key_values({"message": "hello"}))
    span.events.add(name="exception", attributes=key_values({
        "exception.type": "openai.AuthenticationError", "exception.message": "Incorrect API key provided: sk-"
        + "k3y" * 10, "code.context": "messages=[...]"}))
    out = rewrite(request_of([span]), {}, {(span.trace_id, span.span_id)}).resource_spans[0].scope_spans[0].spans[0]
    kept = _attributes(out)
    assert "gen_ai.user" not in kept and "gen_ai.headers" not in kept
    assert kept["gen_ai.usage.input_tokens"].int_value == 1000
    assert kept["gen_ai.request.max_tokens"].int_value == 100
    assert kept["gen_ai.usage.cache_creation_input_tokens"].int_value == 5
    assert [event.name for event in out.events] == ["exception"]
    exception = {kv.key: kv.value.string_value for kv in out.events[0].attributes}
    assert exception == {"exception.type": "openai.AuthenticationError",
                         "exception.message": f"Incorrect API key provided: {REDACTED}"}


def test_other_spans_keep_their_attributes_and_events_minus_content_and_keys() -> None:
    key = "sk-proj-" + "Z9" * 20
    span = Span(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name=f"POST /keys/{key}",
                attributes=key_values({"http.route": "/keys", "db.statement": f"UPDATE keys SET v='{key}'",
                                       "input.value": "a question", "traceloop.entity.output": "an answer",
                                       "retrieval.documents.0.document.content": "a page"}))
    span.attributes.append(KeyValue(key="app.tags", value=AnyValue(array_value=ArrayValue(
        values=[AnyValue(string_value="a"), AnyValue(string_value=key)]))))
    span.status.message = f"refused {key}"
    span.events.add(name="cache miss", attributes=key_values({"cache.key": "user:42", "note": key}))
    span.events.add(name="gen_ai.user.message", attributes=key_values({"content": "a question"}))
    span.links.add(trace_id=b"\x03" * 16, span_id=b"\x04" * 8, attributes=key_values({"why": key}))
    request = request_of([span], resource={"process.command_line": f"app --key {key}"}, scope="myapp")
    out = rewrite(request, {}, set())
    resource = {kv.key: kv.value.string_value for kv in out.resource_spans[0].resource.attributes}
    assert resource["process.command_line"] == f"app --key {REDACTED}"
    forwarded = out.resource_spans[0].scope_spans[0].spans[0]
    assert forwarded.name == f"POST /keys/{REDACTED}" and forwarded.status.message == f"refused {REDACTED}"
    kept = _attributes(forwarded)
    assert set(kept) == {"http.route", "db.statement", "app.tags"}
    assert kept["db.statement"].string_value == f"UPDATE keys SET v='{REDACTED}'"
    assert [v.string_value for v in kept["app.tags"].array_value.values] == ["a", REDACTED]
    assert [event.name for event in forwarded.events] == ["cache miss"]
    assert {kv.key: kv.value.string_value for kv in forwarded.events[0].attributes} == {"cache.key": "user:42",
                                                                                       "note": REDACTED}
    assert forwarded.links[0].attributes[0].value.string_value == REDACTED


class _Capture:
    """Stands in for a `Forwarder`: keeps what the pipeline submits."""

    def __init__(self) -> None:
        self.submitted: list[tuple] = []

    def submit(self, request, enrichments, llm_spans) -> bool:
        self.submitted.append((request, enrichments, llm_spans))
        return True


def test_the_pipeline_tells_forwarding_which_spans_are_calls(tmp_path) -> None:
    """Billed, duplicate and invalid LLM spans are named as calls (forwarding cuts them to the allowlist without
    normalising the request again); an HTTP span is not."""
    from datetime import datetime, timezone

    from costline.processor.config.core import parse_config
    from costline.processor.ledger import Ledger
    from costline.processor.service import assemble_pipeline

    billed = llm_span()
    # The same span sent twice in one request (one source's spans with different span ids are different calls).
    duplicate = llm_span(trace_id=billed.trace_id, span_id=billed.span_id)
    del duplicate.attributes[:]
    duplicate.attributes.extend(billed.attributes)
    invalid = llm_span(input_tokens=-5)
    http = Span(trace_id=billed.trace_id, span_id=b"\x07" * 8, name="GET /search",
                attributes=key_values({"http.route": "/search"}))
    capture = _Capture()
    pipeline = assemble_pipeline(parse_config({}), Ledger(f"sqlite:///{tmp_path / 'l.db'}"),
                                 clock=lambda: datetime.now(timezone.utc), forwarder=capture)
    try:
        pipeline.ingest(request_of([billed, duplicate, invalid, http]))
    finally:
        pipeline.close()
    ((_, enrichments, llm_spans),) = capture.submitted
    key = lambda span: (span.trace_id, span.span_id)  # noqa: E731
    assert set(enrichments) == {key(billed)}
    assert set(llm_spans) == {key(billed), key(duplicate), key(invalid)}
