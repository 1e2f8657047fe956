"""`poll`: the one wait-until of the tests — for what a thread, a subprocess or a server does on its own time.

Tests wait on observable state, never on a sleep of a guessed length: `poll` calls `condition` until it returns
something true (a non-empty query result, a count reached), and returns that; it fails after `timeout` seconds, or
as soon as `process` has exited, with `message` (a string, or a callable for text read only then, such as a log).
A value that may be 0 is waited for with `is not None`, not returned.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def poll(condition: Callable[[], T], timeout: float = 30.0, message: str | Callable[[], str] = "",
         *, interval: float = 0.05, ignoring: tuple[type[BaseException], ...] = (),
         process: subprocess.Popen | None = None) -> T:
    """`condition()`'s first true answer. Exceptions of the `ignoring` types count as "not yet" (a server not
    listening so far)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = condition()
        except ignoring:
            result = None
        if result:
            return result
        if process is not None and process.poll() is not None:
            raise AssertionError(f"exited with {process.returncode} while waiting: {_text(message)}")
        if time.monotonic() >= deadline:
            raise AssertionError(f"not done within {timeout:g} s: {_text(message)}")
        time.sleep(interval)


def _text(message: str | Callable[[], str]) -> str:
    return message() if callable(message) else message
