"""Decoding OTLP `AnyValue`s into the few Python types normalisation needs, defensively.

Spans come from many libraries and some send the wrong type (a token count as a string, a model as an array).
The rule: a value of a usable type is converted, anything else is ignored as if absent — except a token count that
is present and numeric but impossible (negative, NaN, infinite, absurdly large), which rejects the whole span:
billing a garbage count would corrupt the ledger, ignoring it would silently under-bill.
"""

from __future__ import annotations

import math

from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from costline.processor.model import MAX_TOKENS

__all__ = ["MAX_TOKENS", "InvalidSpan", "as_bool", "as_count", "as_float", "as_plain", "as_str", "as_tokens"]


class InvalidSpan(ValueError):
    """A span that clearly describes an LLM call but carries data that must be rejected (counted, not billed)."""


def as_str(value: AnyValue) -> str | None:
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value or None
    return None


def as_bool(value: AnyValue) -> bool | None:
    kind = value.WhichOneof("value")
    if kind == "bool_value":
        return value.bool_value
    if kind == "string_value":  # some instrumentations stringify every attribute
        text = value.string_value.strip().lower()
        if text in ("true", "1"):
            return True
        if text in ("false", "0"):
            return False
    return None


def as_float(value: AnyValue) -> float | None:
    """A non-negative finite duration; anything else is dropped (a bad TTFT is not worth rejecting a bill for)."""
    kind = value.WhichOneof("value")
    if kind == "double_value":
        number = value.double_value
    elif kind == "int_value":
        number = float(value.int_value)
    elif kind == "string_value":
        try:
            number = float(value.string_value)
        except ValueError:
            return None
    else:
        return None
    if math.isfinite(number) and number >= 0:
        return number
    return None


MAX_RETRIES = 1_000
"""SDKs retry a handful of times; more is a broken producer, and a retry count never rejects a bill."""


def as_count(value: AnyValue) -> int | None:
    """A small non-negative count (`http.request.resend_count`); anything else is dropped, like a bad TTFT."""
    kind = value.WhichOneof("value")
    if kind == "int_value":
        count = value.int_value
    elif kind == "string_value":
        try:
            count = int(value.string_value.strip())
        except ValueError:
            return None
    elif kind == "double_value" and value.double_value.is_integer():
        count = int(value.double_value)
    else:
        return None
    return count if 0 <= count <= MAX_RETRIES else None


def as_tokens(value: AnyValue, key: str) -> int | None:
    """A token count, or None when the value is not a number at all. Raises `InvalidSpan` for impossible counts."""
    kind = value.WhichOneof("value")
    if kind == "int_value":
        count = value.int_value
    elif kind == "double_value":
        count = _whole(value.double_value, key)
    elif kind == "string_value":
        text = value.string_value.strip()
        try:
            count = int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                return None  # garbage text: not a count
            count = _whole(number, key)  # outside the try: InvalidSpan is a ValueError too
    else:
        return None  # bool, array, kvlist, bytes: not a count
    if count < 0 or count > MAX_TOKENS:
        raise InvalidSpan(f"{key}={count} is not a plausible token count")
    return count


def _whole(number: float, key: str) -> int:
    if not math.isfinite(number):
        raise InvalidSpan(f"{key}={number} is not a plausible token count")
    if number > MAX_TOKENS or number < 0:
        raise InvalidSpan(f"{key}={number:g} is not a plausible token count")
    return int(number)


def as_plain(value: AnyValue) -> object:
    """Any scalar as its Python value (for resource attributes); arrays and maps become None."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "int_value":
        return value.int_value
    if kind == "double_value":
        return value.double_value
    return None
