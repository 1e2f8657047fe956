"""What every coding assistant's module shares: one log record as an event, reading its values, and the identity
that makes an exporter's retry bill once.

A tool module (`claude_code.py`, `gemini_cli.py`, ...) declares an `Assistant`: its `source` (the `LLMCall.source`
it bills under), which events are its API requests (`bills`) and how one becomes an `LLMCall` (`read`). Values are
read with the normalisation's rules (`normalize.values`): a value of the wrong type is absent, an impossible token
count rejects the event (`InvalidSpan`: counted, named in the partial-success message, not billed).

Identity. These events are log records, not spans: they have no span id of their own (Claude Code's carry no
trace context at all). Each tool stamps its events with what makes one event one request — a session id and a
per-session sequence number (Claude Code), a prompt id and a timestamp (Gemini CLI), a conversation id and a
timestamp (Codex CLI), a response id (Copilot Chat). `identify` digests those into the call's trace id (the session)
and span id (the event), so the ledger's `s:` key (`model.call_keys`) is a pure function of the event: an exporter
that sends the same batch again, to this processor or another sharing the ledger, bills nothing twice.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from hashlib import blake2b

from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from costline.processor.ingest.normalize.values import InvalidSpan, as_float, as_str, as_tokens
from costline.processor.model import LLMCall

__all__ = ["Assistant", "InvalidSpan", "LogEvent", "identify"]


@dataclass(frozen=True, slots=True)
class LogEvent:
    """One OTLP log record as an event: its name, its attributes over its resource's, its time and trace context."""

    name: str
    """`LogRecord.event_name`, else the `event.name` attribute, else a string body that looks like a name (Claude
    Code writes `claude_code.api_request` in the body and `api_request` in `event.name`)."""
    attributes: Mapping[str, AnyValue]
    """The record's attributes, falling back to the resource's (`OTEL_RESOURCE_ATTRIBUTES` ends up there)."""
    time_unix_nano: int
    service_name: str
    scope: str
    trace_id: bytes = b""
    span_id: bytes = b""

    def text(self, key: str) -> str | None:
        value = self.attributes.get(key)
        return None if value is None else as_str(value)

    def tokens(self, key: str) -> int:
        """A token count; 0 when absent or not a number; `InvalidSpan` when impossible."""
        value = self.attributes.get(key)
        return (as_tokens(value, key) or 0) if value is not None else 0

    def has(self, key: str) -> bool:
        return key in self.attributes

    def number(self, key: str) -> float | None:
        """A non-negative finite number (a cost, a duration), None otherwise."""
        value = self.attributes.get(key)
        return None if value is None else as_float(value)

    def ident(self, key: str) -> str:
        """An identity part as text whatever its type (`event.sequence` is an int): "" when absent."""
        value = self.attributes.get(key)
        if value is None:
            return ""
        kind = value.WhichOneof("value")
        return str(getattr(value, kind)) if kind in ("string_value", "int_value", "double_value", "bool_value") else ""


class Assistant(ABC):
    """One coding assistant's events."""

    source: str
    """`LLMCall.source`: `claude-code`, `gemini-cli`, `codex-cli`, `copilot-chat`."""
    docs: str
    """Where the tool documents the events read here (cited in docs/coding-assistants.md)."""

    @abstractmethod
    def bills(self, event: LogEvent) -> bool:
        """Is `event` one of this tool's API requests (billed once each)?"""

    @abstractmethod
    def read(self, event: LogEvent) -> LLMCall:
        """The call `event` reports. Raises `InvalidSpan` for impossible values."""

    @staticmethod
    def accounts(event: LogEvent) -> list[tuple[str, str]]:
        """(`email` | `account_id`, value) the event names its developer by, most specific first."""
        found = []
        for kind, key in (("email", "user.email"), ("account_id", "user.account_uuid"),
                          ("account_id", "user.account_id")):
            value = event.text(key)
            if value:
                found.append((kind, value.lower() if kind == "email" else value))
        return found


def identify(call: LLMCall, source: str, session: str, *event: str) -> LLMCall:
    """Stamp `call` with the identity of its event: trace id from the tool and session, span id from the event's
    own identity parts. Every part is the event's (never the receiving processor's), so a resent event gets the
    same keys; with no part at all the call keeps no ids and is keyed by its content (`model.call_keys`). Marks
    the call `rare`: the tools report their own cost and 1-hour cache writes, which the series count only then."""
    call.rare = True
    if not session and not any(event):
        return call
    call.trace_id = blake2b(f"{source}\0{session}".encode(), digest_size=16).digest()
    call.span_id = blake2b("\0".join((source, session, *event)).encode(), digest_size=8).digest()
    return call


def start_of(event: LogEvent, duration_ms: float | None) -> int:
    """The request's start: the event is written when the response is complete, `duration_ms` after it began."""
    if duration_ms is None or not event.time_unix_nano:
        return event.time_unix_nano
    return max(event.time_unix_nano - int(duration_ms * 1_000_000), 0)


def reject_if(condition: bool, message: str) -> None:
    if condition:
        raise InvalidSpan(message)
