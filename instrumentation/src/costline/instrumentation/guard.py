"""Telemetry code must never raise into the application's LLM call.

Every piece of Costline that runs inside an SDK call catches its own exceptions and hands them to `swallow`: an
exception there is logged at debug level and counted, and the SDK call goes on as if Costline were not installed.
"""

from __future__ import annotations

import logging
import threading

logger = logging.getLogger("costline.instrumentation")

_lock = threading.Lock()
_internal_errors = 0


def internal_errors() -> int:
    """How many exceptions Costline's telemetry code has swallowed in this process."""
    return _internal_errors


def swallow(what: str) -> None:
    """Record the exception being handled: call only from an `except` block."""
    global _internal_errors
    with _lock:
        _internal_errors += 1
    logger.debug("costline: %s failed; the LLM call is unaffected", what, exc_info=True)
