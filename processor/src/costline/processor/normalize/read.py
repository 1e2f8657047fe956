"""Reading one row's fields from a view span's attributes (`otlp.py`: each attribute's `KeyValue` encoding).

`decoded(entries)` decodes a span's attributes (each key some row reads, by that key's decoder), then
`read(source, decoded)` gives each field the value of the first of its keys, in the row's order of preference,
whose value is of a usable type (`values.py`); every token key present is read, used or not, because an impossible
count rejects the span whichever key carries it.

Why it is built this way: on the hot path, Python bytecode and Python objects are the cost, not C. So

* an attribute is decoded once per distinct encoding, key and value together: a bounded memo maps an attribute's
  bytes to its key and decoded value (models, providers, operations, owners and many token counts repeat from span
  to span, key and value alike), looked up for all of a span's attributes in one C-level pass; an attribute not in
  it is split (`otlp.split_entry`) and its value decoded by the key's decoder (the two encodings nearly every such
  value has, a short string and a small int, are read from the bytes; anything else through the official
  `AnyValue` and the decoder);
* the span's keys then give it a *shape*, which picks a precomputed plan of which key gives which field, so that the
  usual span's fields are one C-level dict construction. A span in which one field has several of its keys (a peer
  writing the current and the deprecated name) takes them in order of preference in Python.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from costline.processor.normalize.sources import (
    BOOL,
    COUNT,
    FLOAT,
    MARKER,
    OWNER,
    SOURCES,
    STR,
    TOKENS,
    Source,
)
from costline.processor.normalize.values import InvalidSpan, as_bool, as_count, as_float, as_tokens
from costline.processor.otlp import split_entry

__all__ = ["Decoded", "Fields", "decoded", "read"]

Fields = tuple[dict[str, object], dict[str, str], InvalidSpan | None]
"""(field -> value, None or absent when no key gave a usable one; owner key -> value; an impossible token count,
raised by the caller only once the span is known to be an LLM call)."""


def _text(value: AnyValue, key: str) -> str | None:
    return value.string_value or None  # any other type reads as "": ignored like an absent attribute


_READERS: dict[str, Callable[[AnyValue, str], object]] = {
    STR: _text, OWNER: _text, MARKER: _text, TOKENS: as_tokens,
    BOOL: lambda value, key: as_bool(value), FLOAT: lambda value, key: as_float(value),
    COUNT: lambda value, key: as_count(value),
}


def _decoders() -> dict[str, str]:
    """key -> its decoder: the same in every row that reads the key as a field (checked); a key that only marks a
    row is read as text (a marker value is compared as text)."""
    found: dict[str, str] = {}
    for source in SOURCES:
        for key, (_, _, decoder) in source.keymap.items():
            if decoder is not MARKER and found.setdefault(key, decoder) is not decoder:
                raise RuntimeError(f"attribute {key} is read with two decoders ({found[key]}, {decoder})")
    for source in SOURCES:
        for key in source.keymap:
            found.setdefault(key, STR)
    return found


_DECODERS = _decoders()
"""Every key some row reads; any other key's value is never decoded."""

_MEMO_LIMIT = 65536
"""Distinct attributes remembered; a memo that fills up starts again (attributes come from the wire)."""
_MEMO_MAX_BYTES = 256
"""Longer attributes (a label bomb, invocation parameters, content) are split every time rather than remembered."""
_UNREMEMBERED = frozenset({"gen_ai.response.id"})
"""Keys whose values are unique per call: remembering them would only fill the memo."""
_MEMO: dict[bytes, tuple[str, object]] = {}
"""An attribute's `KeyValue` encoding -> (key, decoded value: None for a value of no usable type or a key no row
reads)."""

_VARINT_CONTINUATION = (0, 0x80, 0x8080, 0x808080, 0x80808080)
"""Per varint length in bytes: the continuation bits of all its bytes (little-endian)."""
_VARINT_CONTINUED = (0, 0, 0x80, 0x8080, 0x808080)
"""...and their values in a varint that ends at its last byte: set on every byte but the last."""


def decode_value(raw: bytes, decoder: str, key: str) -> object:
    """An `AnyValue` encoding decoded for a field (`InvalidSpan` for an impossible token count, naming `key`).

    Read from the bytes without an `AnyValue`: an `AnyValue` that is only a `string_value` (field 1, tag 0x0A)
    under 128 bytes, as text; one that is only an `int_value` (field 3, tag 0x18) of one to four varint bytes and not
    zero, as tokens. Anything else goes through the official `AnyValue` and the field's decoder. The bytes were
    checked by the official decode (UTF-8 included: `otlp.TraceRequest`)."""
    if decoder is TOKENS:
        size = len(raw) - 1
        if 0 < size <= 4 and raw[0] == 0x18:
            number = int.from_bytes(raw[1:], "little")
            if number & _VARINT_CONTINUATION[size] == _VARINT_CONTINUED[size]:  # one varint, ending the value
                count = (number & 0x7F | (number >> 1) & 0x3F80 | (number >> 2) & 0x1FC000
                         | (number >> 3) & 0xFE00000)
                if count:
                    return count
    elif decoder is not BOOL and decoder is not FLOAT and decoder is not COUNT:  # text
        if len(raw) > 1 and raw[0] == 0x0A and raw[1] == len(raw) - 2:
            return raw[2:].decode() or None
    return _READERS[decoder](AnyValue.FromString(raw), key)


Decoded = tuple[dict[str, object], list[tuple[str, InvalidSpan]]]
"""(key -> decoded value, None for a value of no usable type or a key no row reads; the keys whose value is an
impossible token count, with the error)."""


def decoded(entries: Iterable[bytes]) -> Decoded:
    """A view span's attributes, decoded (the last of a key given twice, as a map keeps it: OTLP forbids it)."""
    pairs = list(map(_MEMO.get, entries))
    errors: list[tuple[str, InvalidSpan]] = []
    if None in pairs:
        entries = list(entries)
        for i, pair in enumerate(pairs):
            if pair is None:
                pairs[i] = pair = _first_read(entries[i], errors)
    return dict(pairs), errors  # type: ignore[arg-type]


def _first_read(entry: bytes, errors: list[tuple[str, InvalidSpan]]) -> tuple[str, object]:
    key, raw = split_entry(entry)
    decoder = _DECODERS.get(key)
    if decoder is None:
        pair: tuple[str, object] = (key, None)
    else:
        try:
            pair = (key, decode_value(raw, decoder, key))
        except InvalidSpan as err:
            errors.append((key, err))
            return key, None  # not remembered: the same bytes raise again
    if len(entry) <= _MEMO_MAX_BYTES and key not in _UNREMEMBERED:
        if len(_MEMO) >= _MEMO_LIMIT:
            _MEMO.clear()
        _MEMO[entry] = pair
    return pair


class _Shape:
    """How to read the spans of one row that carry one set of keys, each field from at most one key."""

    __slots__ = ("fields", "keys", "owner_keys")

    def __init__(self, fields: tuple[str, ...], keys: tuple[str, ...], owner_keys: tuple[str, ...]) -> None:
        self.fields, self.keys, self.owner_keys = fields, keys, owner_keys


Step = tuple[str, tuple[str, ...], str]


class _Row:
    """A row's reading plan (`source.plan`), and the shapes of the spans seen so far, by their keys."""

    __slots__ = ("steps", "shapes")

    def __init__(self, source: Source) -> None:
        self.steps: tuple[Step, ...] = source.plan
        self.shapes: dict[tuple[str, ...], _Shape | None] = {}

    def shape(self, layout: tuple[str, ...]) -> _Shape | None:
        """The plan for spans with these keys; None when a field has two of its keys there."""
        present = set(layout)
        fields: list[str] = []
        keys: list[str] = []
        owner_keys: list[str] = []
        shape: _Shape | None = None
        for field, field_keys, decoder in self.steps:
            there = [key for key in field_keys if key in present]
            if len(there) > 1:
                break
            if there and decoder is OWNER:
                owner_keys.append(there[0])
            elif there:
                fields.append(field)
                keys.append(there[0])
        else:
            shape = _Shape(tuple(fields), tuple(keys), tuple(owner_keys))
        if len(self.shapes) < _SHAPES_LIMIT:
            self.shapes[layout] = shape
        return shape


_SHAPES_LIMIT = 1024
"""Key sets come from the wire: past this many per row, a span of a new one is planned again each time."""
_UNSEEN = object()

_ROWS = {source.name: _Row(source) for source in SOURCES}


def read(source: Source, attributes: Decoded) -> Fields:
    """`source`'s fields from a span's decoded attributes; an impossible count only in a key this row reads."""
    values_by_key, errors = attributes
    invalid = next((err for key, err in reversed(errors) if key in source.keymap), None) if errors else None
    row = _ROWS[source.name]
    layout = tuple(values_by_key)
    shape = row.shapes.get(layout, _UNSEEN)
    if shape is _UNSEEN:
        shape = row.shape(layout)
    if shape is None:
        return _read_in_order(row, values_by_key, invalid)
    get = values_by_key.__getitem__
    owner = dict(zip(shape.owner_keys, map(get, shape.owner_keys), strict=True))  # type: ignore[union-attr]
    if not all(owner.values()):  # a text that is empty reads as None: only a missing owner value is falsy
        owner = {key: text for key, text in owner.items() if text is not None}
    values = dict(zip(shape.fields, map(get, shape.keys), strict=True))  # type: ignore[union-attr]
    return values, owner, invalid  # type: ignore[return-value]


def _read_in_order(row: _Row, attributes: dict[str, object], invalid: InvalidSpan | None) -> Fields:
    """`read` for a span in which a field has several of its keys: the first usable one wins."""
    values: dict[str, object] = {}
    owner: dict[str, str] = {}
    for field, keys, decoder in row.steps:
        for key in keys:
            value = attributes.get(key)
            if value is not None:
                if decoder is OWNER:
                    owner[key] = value  # type: ignore[assignment]
                else:
                    values[field] = value
                break
    return values, owner, invalid
