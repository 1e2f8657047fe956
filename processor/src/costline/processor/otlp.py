"""OTLP trace export requests as the processor reads them: a *view* of the wire format in which a span's attributes
are undecoded `KeyValue` encodings, so that normalisation makes no Python object per attribute and per value.

The view is the official schema (`opentelemetry.proto.trace.v1`, `...collector.trace.v1`), copied from the installed
descriptors at import and changed in one place: `Span.attributes` is `repeated bytes` instead of `repeated KeyValue`
(the same field number; a length-delimited field holds a message's encoding or bytes alike, so the same bytes decode
into either). Everything else (resources, scopes, events, links) is the official message. Iterating `KeyValue`s
makes two Python messages and a key per attribute; the view hands out one `bytes` per attribute, which
`normalize/read.py` looks up whole in a memo (most attributes repeat, key and value, from span to span) and splits
(`split_entry`) only when it is not there.

`TraceRequest` decodes a body twice, both in C: the official message, which accepts and refuses exactly what it did
before the view existed (the view's `bytes` are not checked for UTF-8 where a `KeyValue`'s key and an `AnyValue`'s
string are, so the view alone would accept a request the official schema refuses) and which forwarding rewrites;
and the view, which the pipeline reads. Neither makes Python objects for what nobody reads.
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.trace.v1 import trace_pb2

__all__ = ["TraceRequest", "ViewRequest", "ViewSpan", "split_entry"]

_TRACE = "opentelemetry.proto.trace.v1"
_COLLECTOR = "opentelemetry.proto.collector.trace.v1"
_VIEW_TRACE = "costline.processor.view.trace.v1"
_VIEW_COLLECTOR = "costline.processor.view.collector.trace.v1"
_RENAMED = {f".{_TRACE}.": f".{_VIEW_TRACE}.", f".{_COLLECTOR}.": f".{_VIEW_COLLECTOR}."}


def _copy(file: object, name: str, package: str) -> descriptor_pb2.FileDescriptorProto:
    """The official file's descriptor under another name and package, its references to the two renamed packages
    pointing at the copies (references to common and resource stay on the official messages)."""
    proto = descriptor_pb2.FileDescriptorProto()
    file.CopyToProto(proto)  # type: ignore[attr-defined]
    proto.name, proto.package = name, package
    proto.ClearField("service")  # the gRPC service stays the official one; the view is only its request
    pending = list(proto.message_type)
    while pending:
        message = pending.pop()
        pending.extend(message.nested_type)
        for field in message.field:
            for old, new in _RENAMED.items():
                if field.type_name.startswith(old):
                    field.type_name = new + field.type_name[len(old):]
    return proto


def _view_files() -> tuple[descriptor_pb2.FileDescriptorProto, descriptor_pb2.FileDescriptorProto]:
    trace = _copy(trace_pb2.DESCRIPTOR, "costline/processor/view/trace.proto", _VIEW_TRACE)
    span = next(message for message in trace.message_type if message.name == "Span")
    attributes = next(field for field in span.field if field.name == "attributes")
    if attributes.number != 9 or not attributes.type_name.endswith(".KeyValue"):
        raise RuntimeError(f"opentelemetry-proto's Span.attributes is no longer repeated KeyValue: {attributes}")
    attributes.type = descriptor_pb2.FieldDescriptorProto.TYPE_BYTES
    attributes.ClearField("type_name")
    service = _copy(trace_service_pb2.DESCRIPTOR, "costline/processor/view/trace_service.proto", _VIEW_COLLECTOR)
    service.dependency[:] = [trace.name if d == trace_pb2.DESCRIPTOR.name else d for d in service.dependency]
    return trace, service


def _view_classes() -> tuple[type[Message], type[Message]]:
    pool = descriptor_pool.Default()  # where the official files are, which the view depends on
    for file in _view_files():
        try:
            pool.FindFileByName(file.name)
        except KeyError:
            pool.Add(file)
    return (message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_VIEW_COLLECTOR}.ExportTraceServiceRequest")),
            message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_VIEW_TRACE}.Span")))


ViewRequest, ViewSpan = _view_classes()
"""`ExportTraceServiceRequest` and `Span` of the view: `span.attributes` is each attribute's `KeyValue` encoding."""


def split_entry(entry: bytes) -> tuple[str, bytes]:
    """A `KeyValue`'s encoding as its key and its value's (`AnyValue`'s) encoding.

    The usual encoding (key, then value, each under 128 bytes) is split by hand; any other (longer fields, another
    order, a field repeated, unknown fields) is decoded by the official `KeyValue` and the value encoded again,
    which reads the same. `entry` was checked by the official decode (`TraceRequest`)."""
    size = len(entry)
    if size > 1 and entry[0] == 0x0A and entry[1] < 0x80:
        end = 2 + entry[1]
        if end == size:
            return entry[2:end].decode(), b""
        if end + 2 <= size and entry[end] == 0x12 and entry[end + 1] == size - end - 2:
            return entry[2:end].decode(), entry[end + 2:]
    kv = KeyValue.FromString(entry)
    return kv.key, kv.value.SerializeToString()


class TraceRequest:
    """One export request: the official message and the view of the same bytes."""

    __slots__ = ("official", "view")

    def __init__(self, body: bytes) -> None:
        """Decode `body` (raises `google.protobuf.message.DecodeError`, or `RecursionError` for absurd nesting)."""
        self.official: ExportTraceServiceRequest = ExportTraceServiceRequest.FromString(body)
        """The request as OTLP defines it; shared, so nobody may modify it (forwarding copies it)."""
        self.view = ViewRequest.FromString(body)  # cannot fail where the official decode did not: a laxer schema

    @classmethod
    def of(cls, request: TraceRequest | ExportTraceServiceRequest) -> TraceRequest:
        """`request` as a `TraceRequest` (an official message, from the JSON receiver and tests, is kept as is)."""
        if isinstance(request, TraceRequest):
            return request
        made = cls.__new__(cls)
        made.official, made.view = request, ViewRequest.FromString(request.SerializeToString())
        return made
