"""Reading a report's JSON strictly: every field checked for presence and type, errors naming the field's path."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from costline.processor.reports.reconcile.report import ReportError


def load_json(raw: bytes | str, where: str) -> Any:
    """The document, numbers with a fraction as `Decimal` (a cost stays exact); a truncated or otherwise broken
    document is a `ReportError` naming `where` and the position."""
    try:
        return json.loads(raw, parse_float=Decimal)
    except UnicodeDecodeError as err:
        raise ReportError(f"{where}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    except json.JSONDecodeError as err:
        hint = " (truncated?)" if err.pos >= len(raw.rstrip()) else ""
        raise ReportError(f"{where}: not valid JSON at line {err.lineno}, column {err.colno}: {err.msg}{hint}") from None


class Fields:
    """A JSON object under a path, for typed reads: `Fields(obj, "data[0].results[2]").integer("output_tokens")`."""

    def __init__(self, obj: Any, path: str) -> None:
        if not isinstance(obj, dict):
            raise ReportError(f"{path}: expected an object, got {_kind(obj)}")
        self.obj = obj
        self.path = path

    def _get(self, name: str, optional: bool) -> Any:
        if name not in self.obj:
            if optional:
                return None
            raise ReportError(f"{self.path}.{name}: required field is missing")
        return self.obj[name]

    def integer(self, name: str, *, optional: bool = False, default: int | None = None) -> int | None:
        value = self._get(name, optional)
        if value is None:
            if optional:
                return default
            raise ReportError(f"{self.path}.{name}: must be an integer, got null")
        if type(value) is not int:
            raise ReportError(f"{self.path}.{name}: must be an integer, got {_kind(value)} {value!r}")
        if value < 0:
            raise ReportError(f"{self.path}.{name}: must not be negative, got {value}")
        return value

    def string(self, name: str, *, nullable: bool = False, optional: bool = False) -> str | None:
        value = self._get(name, optional)
        if value is None and (nullable or optional):
            return None
        if not isinstance(value, str):
            raise ReportError(f"{self.path}.{name}: must be a string{' or null' if nullable else ''}, "
                              f"got {_kind(value)} {value!r}")
        return value

    def boolean(self, name: str) -> bool:
        value = self._get(name, False)
        if type(value) is not bool:
            raise ReportError(f"{self.path}.{name}: must be true or false, got {_kind(value)} {value!r}")
        return value

    def array(self, name: str) -> list[Any]:
        value = self._get(name, False)
        if not isinstance(value, list):
            raise ReportError(f"{self.path}.{name}: must be an array, got {_kind(value)}")
        return value

    def object(self, name: str) -> Fields:
        return Fields(self._get(name, False), f"{self.path}.{name}")

    def decimal(self, name: str) -> Decimal:
        """A decimal string ("123.45") or a JSON number (read as Decimal by `load_json`), never a float."""
        value = self._get(name, False)
        if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
            raise ReportError(f"{self.path}.{name}: must be a decimal number, got {_kind(value)} {value!r}")
        try:
            amount = Decimal(value)
        except InvalidOperation:
            raise ReportError(f"{self.path}.{name}: must be a decimal number, got {value!r}") from None
        if not amount.is_finite():
            raise ReportError(f"{self.path}.{name}: must be a finite number, got {value!r}")
        return amount

    def unix_day(self, name: str) -> date:
        """A bucket boundary in unix seconds, which must fall on a UTC midnight (daily buckets)."""
        seconds = self.integer(name)
        assert seconds is not None
        if seconds % 86400:
            raise ReportError(f"{self.path}.{name}: {seconds} is not a UTC midnight; fetch with bucket_width=1d")
        return datetime.fromtimestamp(seconds, tz=timezone.utc).date()

    def rfc3339_day(self, name: str) -> date:
        text = self.string(name)
        assert text is not None
        try:
            when = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ReportError(f"{self.path}.{name}: not an RFC 3339 timestamp: {text!r}") from None
        if when.tzinfo is None:
            raise ReportError(f"{self.path}.{name}: {text!r} has no time zone")
        when = when.astimezone(timezone.utc)
        if (when.hour, when.minute, when.second, when.microsecond) != (0, 0, 0, 0):
            raise ReportError(f"{self.path}.{name}: {text!r} is not a UTC midnight; fetch with bucket_width=1d")
        return when.date()


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, Decimal, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
