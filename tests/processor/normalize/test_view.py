"""The view decoder (`otlp.py`, `normalize/read.py`) against the official classes: the same bytes are accepted or
refused alike, and every row reads the same fields from the view as a plain walk of the official `KeyValue`s does."""

from __future__ import annotations

import math
import random

import pytest
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from costline import attributes as A
from costline.processor.normalize import InvalidSpan, normalize_span
from costline.processor.normalize import read as read_module
from costline.processor.normalize.read import decoded, read
from costline.processor.normalize.sources import BOOL, COUNT, DECODER, FLOAT, OWNER, SOURCES, STR, TOKENS, Source
from costline.processor.normalize.values import as_bool, as_count, as_float, as_tokens
from costline.processor.otlp import TraceRequest, ViewSpan
from tests.processor.edge.otlp import llm_span, request_of

from .spans import make_span


def table(source: Source) -> list[tuple[str, tuple[str, ...], str]]:
    """(field, keys in order of preference, decoder) straight from the row's table, owner keys and fingerprint."""
    return ([(field, keys, DECODER[field]) for field, keys in source.fields.items()]
            + [(key, (key,), OWNER) for key in A.OWNER_KEYS] + [("fingerprint", (A.COSTLINE_API_KEY_FINGERPRINT,), STR)])


def reference(source: Source, span: Span) -> tuple[dict[str, object], dict[str, str], bool]:
    """What the row reads, from the official classes, written as plainly as the rule is stated: each field from the
    first of its keys whose value is usable; every token key present checked."""
    attributes = {kv.key: kv.value for kv in span.attributes}  # a key given twice: the last value, as a map keeps
    decoders = {STR: lambda v, k: v.string_value or None, OWNER: lambda v, k: v.string_value or None,
                TOKENS: as_tokens, BOOL: lambda v, k: as_bool(v), FLOAT: lambda v, k: as_float(v),
                COUNT: lambda v, k: as_count(v)}
    values: dict[str, object] = {}
    owner: dict[str, str] = {}
    invalid = False
    for field, keys, decoder in table(source):
        for key in keys:
            if key not in attributes:
                continue
            try:
                value = decoders[decoder](attributes[key], key)
            except InvalidSpan:
                invalid = True
                continue
            if value is None:
                continue
            if decoder is OWNER:
                owner[key] = value  # type: ignore[assignment]
            elif field not in values:
                values[field] = value
            if decoder is not TOKENS:
                break
    return values, owner, invalid


def via_view(source: Source, span: Span) -> tuple[dict[str, object], dict[str, str], bool]:
    values, owner, invalid = read(source, decoded(ViewSpan.FromString(span.SerializeToString()).attributes))
    return {k: v for k, v in values.items() if v is not None}, owner, invalid is not None


def same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


def assert_same(source: Source, span: Span) -> None:
    expected, got = reference(source, span), via_view(source, span)
    assert got[1:] == expected[1:], (source.name, span.attributes)
    assert got[0].keys() == expected[0].keys(), (source.name, span.attributes)
    assert all(same(got[0][k], expected[0][k]) for k in expected[0]), (source.name, got[0], expected[0])


EDGE_VALUES = [
    AnyValue(string_value=""), AnyValue(string_value="gpt-4o"), AnyValue(string_value="x" * 127),
    AnyValue(string_value="x" * 128), AnyValue(string_value="ü" * 300), AnyValue(string_value=" 42 "),
    AnyValue(string_value="1e3"), AnyValue(string_value="true"), AnyValue(string_value="0"),
    AnyValue(int_value=0), AnyValue(int_value=1), AnyValue(int_value=127), AnyValue(int_value=128),
    AnyValue(int_value=2**21), AnyValue(int_value=2**28 - 1), AnyValue(int_value=2**28), AnyValue(int_value=10**12),
    AnyValue(int_value=10**12 + 1), AnyValue(int_value=-1), AnyValue(int_value=-(2**63)), AnyValue(int_value=2**63 - 1),
    AnyValue(double_value=3.0), AnyValue(double_value=2.5), AnyValue(double_value=-1.0),
    AnyValue(double_value=float("nan")), AnyValue(double_value=float("inf")), AnyValue(bool_value=True),
    AnyValue(bool_value=False), AnyValue(bytes_value=b"\x0a\x01x"), AnyValue(),
    AnyValue(array_value=ArrayValue(values=[AnyValue(int_value=1)])),
    AnyValue(kvlist_value=KeyValueList(values=[KeyValue(key="a", value=AnyValue(string_value="b"))])),
]


@pytest.mark.parametrize("value", EDGE_VALUES, ids=lambda v: str(v).replace("\n", " ")[:40] or "empty")
def test_every_field_reads_an_edge_value_as_the_official_classes_do(value: AnyValue) -> None:
    for source in SOURCES:
        for _, keys, _ in table(source):
            for key in keys:
                assert_same(source, Span(attributes=[KeyValue(key=key, value=value)]))


def test_generated_spans_read_alike_on_every_row() -> None:
    """Property-style: random subsets of each row's keys (several keys of one field included), random values."""
    rng = random.Random(20261202)
    for _ in range(3000):
        source = rng.choice(SOURCES)
        keys = [key for _, field_keys, _ in table(source) for key in field_keys]
        chosen = rng.sample(keys, rng.randint(0, min(len(keys), 20)))
        chosen += [f"app.{i}" for i in range(rng.randint(0, 3))]  # keys no row reads
        rng.shuffle(chosen)
        span = Span(attributes=[KeyValue(key=key, value=rng.choice(EDGE_VALUES)) for key in chosen])
        assert_same(source, span)


def _span_with(key: str, raw: bytes) -> Span:
    """A span whose one attribute's value is the `AnyValue` encoding `raw`, as some producer wrote it."""
    entry = KeyValue(key=key).SerializeToString() + bytes([0x12, len(raw)]) + raw
    return Span.FromString(bytes([0x4A, len(entry)]) + entry)  # field 9 (attributes), length-delimited


def test_a_value_that_is_not_canonical_is_read_by_the_official_rule() -> None:
    """Two `string_value`s, or a string then an int, in one `AnyValue`: the last field wins, as protobuf says."""
    two_strings = AnyValue(string_value="first").SerializeToString() + AnyValue(string_value="gpt").SerializeToString()
    then_int = AnyValue(string_value="7").SerializeToString() + AnyValue(int_value=9).SerializeToString()
    then_text = AnyValue(int_value=9).SerializeToString() + AnyValue(string_value="12").SerializeToString()
    for raw in (two_strings, then_int, then_text):
        for key in ("gen_ai.request.model", "gen_ai.usage.input_tokens", "costline.team", "gen_ai.request.stream"):
            assert_same(SOURCES[0], _span_with(key, raw))


def test_a_key_given_twice_keeps_its_last_value() -> None:
    """OTLP forbids duplicate keys; the view reads a map, which keeps the last (documented in otlp.py)."""
    span = make_span({"gen_ai.operation.name": "chat", "gen_ai.request.model": "first"})
    span.attributes.append(KeyValue(key="gen_ai.request.model", value=AnyValue(string_value="last")))
    call = normalize_span(span, {}, "costline.instrumentation")
    assert call is not None and call.request_model == "last"


def test_impossible_counts_reject_the_span_on_either_path() -> None:
    span = make_span({"gen_ai.operation.name": "chat", "gen_ai.request.model": "m", "gen_ai.usage.input_tokens": -5})
    for _ in range(2):  # the second time, every other value is in its memo
        with pytest.raises(InvalidSpan, match="gen_ai.usage.input_tokens=-5"):
            normalize_span(span, {}, "costline.instrumentation")
    both = make_span({"gen_ai.operation.name": "chat", "gen_ai.request.model": "m",
                      "gen_ai.usage.cache_write.input_tokens": 5, "gen_ai.usage.cache_creation.input_tokens": -1})
    with pytest.raises(InvalidSpan, match="cache_creation.input_tokens=-1"):  # the unused alias is checked too
        normalize_span(both, {}, "costline.instrumentation")


def test_the_memo_stays_bounded() -> None:
    for i in range(read_module._MEMO_LIMIT + 10):
        span = make_span({"gen_ai.operation.name": "chat", "gen_ai.request.model": f"m{i}",
                          "gen_ai.response.id": f"chatcmpl-{i}"})
        call = normalize_span(span, {}, "costline.instrumentation")
        assert call is not None and call.request_model == f"m{i}" and call.response_id == f"chatcmpl-{i}"
    assert len(read_module._MEMO) <= read_module._MEMO_LIMIT
    assert not any(key == "gen_ai.response.id" for key, _ in read_module._MEMO.values())  # unique per call


def test_the_view_accepts_and_refuses_exactly_what_the_official_classes_do() -> None:
    rng = random.Random(7)
    valid = request_of([llm_span(team="view"), llm_span(team="view", model="gpt-4o-mini")]).SerializeToString()
    candidates = [valid[:cut] for cut in range(len(valid))]
    for _ in range(3000):
        mutated = bytearray(valid)
        for _ in range(rng.randint(1, 4)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        candidates.append(bytes(mutated))
    outcomes = set()
    for body in candidates:
        try:
            ExportTraceServiceRequest.FromString(body)
            official = True
        except DecodeError:
            official = False
        try:
            TraceRequest(body)
            view = True
        except DecodeError:
            view = False
        assert view == official, body
        outcomes.add(official)
    assert outcomes == {True, False}


def test_a_string_that_is_not_utf8_in_an_attribute_nobody_reads_is_refused_as_before() -> None:
    span = llm_span(team="view")
    span.attributes.append(KeyValue(key="app.unread", value=AnyValue(string_value="QQ")))
    body = request_of([span]).SerializeToString()
    assert body.count(b"\x0a\x02QQ") == 1
    body = body.replace(b"\x0a\x02QQ", b"\x0a\x02\xff\xfe")  # the same length: only the text is not UTF-8
    with pytest.raises(DecodeError):
        ExportTraceServiceRequest.FromString(body)
    with pytest.raises(DecodeError):
        TraceRequest(body)


def test_official_messages_are_read_through_the_view_alike() -> None:
    request = request_of([llm_span(team="a"), llm_span(team="b", model="claude-sonnet-4-5")])
    converted = TraceRequest.of(request)
    assert converted.official is request
    direct = TraceRequest(request.SerializeToString())
    calls = [normalize_span(s, {}, "costline.instrumentation") for r in (converted, direct)
             for s in r.view.resource_spans[0].scope_spans[0].spans]
    assert calls[:2] == calls[2:] and all(calls)
