"""Reading one row's fields from a view span's attributes (`otlp.py`: key -> the `AnyValue`'s encoding).

`read(source, attributes)` gives each field the value of the first of its keys, in the row's order of preference,
whose value is of a usable type (`values.py`); every token key present is read, used or not, because an impossible
count rejects the span whichever key carries it.

Why it is built this way: on the hot path, Python bytecode and Python objects are the cost, not C. So

* a value is decoded once per distinct encoding and field: a bounded memo per field (`_Memo`) maps the bytes to the
  decoded value (models, providers, operations, owners and most token counts repeat from span to span); a value not
  in the memo is decoded by the memo (the two encodings nearly every such value has, a short string and a small
  int, are read from the bytes; anything else through the official `AnyValue` and the field's decoder);
* a span's *shape* (its keys, in the order its map keeps them: iterating a map's keys is cheap, looking one up costs
  about what reading its value does) picks a precomputed plan of which keys to read for which field, so that the
  usual span is read with a few C-level calls (the values of the keys the row reads, their memo entries, a dict of
  the fields) and Python code runs only for values not in their memo. A span in which one field has several of its
  keys (a peer writing the current and the deprecated name) is read key by key (`_read_by_key`), as is a span of a
  new shape once a row has seen `_SHAPES_LIMIT` of them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from costline.processor.normalize.sources import BOOL, COUNT, FLOAT, OWNER, SOURCES, STR, TOKENS, Source
from costline.processor.normalize.values import InvalidSpan, as_bool, as_count, as_float, as_tokens

__all__ = ["Fields", "read"]

Fields = tuple[dict[str, object], dict[str, str], InvalidSpan | None]
"""(field -> value, None or absent when no key gave a usable one; owner key -> value; an impossible token count,
raised by the caller only once the span is known to be an LLM call)."""


def _text(value: AnyValue, key: str) -> str | None:
    return value.string_value or None  # any other type reads as "": ignored like an absent attribute


_READERS: dict[str, Callable[[AnyValue, str], object]] = {
    STR: _text, OWNER: _text, TOKENS: as_tokens,
    BOOL: lambda value, key: as_bool(value), FLOAT: lambda value, key: as_float(value),
    COUNT: lambda value, key: as_count(value),
}

_MEMO_LIMIT = 4096
"""Distinct values remembered per field; a memo that fills up starts again (values come from the wire)."""
_MEMO_MAX_BYTES = 256
"""Longer values (a label bomb, invocation parameters) are decoded every time rather than remembered."""
_UNREMEMBERED = frozenset({"response_id"})
"""Fields whose values are unique per call: a memo of them would never be hit."""

_VARINT_CONTINUATION = (0, 0x80, 0x8080, 0x808080, 0x80808080)
"""Per varint length in bytes: the continuation bits of all its bytes (little-endian)."""
_VARINT_CONTINUED = (0, 0, 0x80, 0x8080, 0x808080)
"""...and their values in a varint that ends at its last byte: set on every byte but the last."""


class _Memo(dict[bytes, object]):
    """One field's values by their encoding (None: not of a usable type). Looked up with `dict.__getitem__`, so a
    value not yet in it is decoded by `__missing__`, and remembered."""

    __slots__ = ("decoder", "field", "remember")

    def __init__(self, field: str, decoder: str) -> None:
        super().__init__()
        self.field, self.decoder = field, decoder
        self.remember = field not in _UNREMEMBERED

    def __missing__(self, raw: bytes) -> object:
        """Raises `InvalidSpan` (not remembered: its message names the key, and the same bytes raise again)."""
        decoded = self.read(raw, self.field)
        if self.remember and len(raw) <= _MEMO_MAX_BYTES:
            if len(self) >= _MEMO_LIMIT:
                self.clear()
            self[raw] = decoded
        return decoded

    def read(self, raw: bytes, key: str) -> object:
        """Decode a value (of attribute `key`, which an `InvalidSpan` names).

        Read from the bytes without an `AnyValue`: an `AnyValue` that is only a `string_value` (field 1, tag 0x0A)
        under 128 bytes, as text; one that is only an `int_value` (field 3, tag 0x18) of one to four varint bytes
        and not zero, as tokens. Anything else goes through the official `AnyValue` and the field's decoder. The
        bytes were checked by the official decode (UTF-8 included: `otlp.TraceRequest`)."""
        decoder = self.decoder
        if decoder is TOKENS:
            size = len(raw) - 1
            if 0 < size <= 4 and raw[0] == 0x18:
                number = int.from_bytes(raw[1:], "little")
                if number & _VARINT_CONTINUATION[size] == _VARINT_CONTINUED[size]:  # one varint, ending the value
                    count = (number & 0x7F | (number >> 1) & 0x3F80 | (number >> 2) & 0x1FC000
                             | (number >> 3) & 0xFE00000)
                    if count:
                        return count
        elif (decoder is STR or decoder is OWNER) and len(raw) > 1 and raw[0] == 0x0A and raw[1] == len(raw) - 2:
            return raw[2:].decode() or None
        return _READERS[decoder](AnyValue.FromString(raw), key)


_MEMOS: dict[str, _Memo] = {}
"""field (an owner key for owner values) -> its memo, shared by the rows."""
_LOOK_UP = dict.__getitem__  # calls a subclass's __missing__, which dict.get does not
_UNSEEN = object()


def _memo(field: str, decoder: str) -> _Memo:
    if field not in _MEMOS:
        _MEMOS[field] = _Memo(field, decoder)
    return _MEMOS[field]


Step = tuple[str, tuple[str, ...], str, _Memo]
"""(field, its keys in order of preference, decoder, the field's memo)."""


class _Shape:
    """How to read the spans of one row that carry one set of its keys, each field from at most one key: the keys
    read, in the row's order with the owner keys last, each with its field's memo."""

    __slots__ = ("keys", "fields", "memos", "owner_keys", "split")

    def __init__(self, steps: list[Step]) -> None:
        steps.sort(key=lambda step: step[2] is OWNER)  # stable: the row's order, then the owner keys
        self.keys = tuple(keys[0] for _, keys, _, _ in steps)
        self.memos = tuple(memo for _, _, _, memo in steps)
        self.split = sum(1 for step in steps if step[2] is not OWNER)
        self.fields = tuple(field for field, _, _, _ in steps[:self.split])
        self.owner_keys = self.keys[self.split:]


class _Row:
    """A row's reading plan (`steps`), and the shapes of the spans seen so far, by their keys."""

    __slots__ = ("steps", "shapes")

    def __init__(self, source: Source) -> None:
        self.steps: tuple[Step, ...] = tuple(
            (field, keys, decoder, _memo(field, decoder)) for field, keys, decoder in source.plan)
        self.shapes: dict[tuple[str, ...], _Shape | None] = {}

    def shape(self, layout: tuple[str, ...]) -> _Shape | None:
        """The plan for spans with these keys; None when a field has two of its keys there."""
        present = set(layout)
        steps: list[Step] = []
        shape: _Shape | None = None
        for field, keys, decoder, memo in self.steps:
            there = [key for key in keys if key in present]
            if len(there) > 1:
                break
            if there:
                steps.append((field, (there[0],), decoder, memo))
        else:
            shape = _Shape(steps)
        if len(self.shapes) < _SHAPES_LIMIT:
            self.shapes[layout] = shape
        return shape


_SHAPES_LIMIT = 1024
"""Key sets come from the wire: past this many per row, a span of a new one is planned again each time."""

_ROWS = {source.name: _Row(source) for source in SOURCES}


def read(source: Source, attributes: Mapping[str, bytes]) -> Fields:
    """`source`'s fields from a view span's attributes."""
    row = _ROWS[source.name]
    layout = tuple(attributes)
    shape = row.shapes.get(layout, _UNSEEN)
    if shape is _UNSEEN:
        shape = row.shape(layout)
    if shape is None:
        return _read_by_key(row, attributes)
    raws = list(map(attributes.__getitem__, shape.keys))  # type: ignore[union-attr]
    try:
        decoded = list(map(_LOOK_UP, shape.memos, raws))  # type: ignore[union-attr]
    except InvalidSpan:  # an impossible count: key by key, for the error naming its key
        return _read_by_key(row, attributes)
    owner = dict(zip(shape.owner_keys, decoded[shape.split:], strict=True))  # type: ignore[union-attr]
    if not all(owner.values()):  # a text that is empty reads as None: only a missing owner value is falsy
        owner = {key: text for key, text in owner.items() if text is not None}
    return dict(zip(shape.fields, decoded, strict=False)), owner, None  # type: ignore[union-attr]


def _read_by_key(row: _Row, attributes: Mapping[str, bytes]) -> Fields:
    """`read` key by key, for a span in which a field has several of its keys: the first usable one wins."""
    values: dict[str, object] = {}
    owner: dict[str, str] = {}
    invalid: InvalidSpan | None = None
    for field, keys, decoder, memo in row.steps:
        for key in keys:
            if key not in attributes:
                continue
            raw = attributes[key]
            decoded = memo.get(raw, _UNSEEN)
            if decoded is _UNSEEN:
                try:
                    decoded = memo.read(raw, key)  # not remembered here: not the usual path
                except InvalidSpan as err:
                    invalid = err
                    continue
            if decoded is None:
                continue  # wrong type: a lower-priority key may still give the field
            if decoder is OWNER:
                owner[key] = decoded  # type: ignore[assignment]
                break
            if field not in values:
                values[field] = decoded
            if decoder is not TOKENS:
                break
    return values, owner, invalid
