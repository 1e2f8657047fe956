"""One proxy base class for every SDK stream: chunks pass through as they arrive, telemetry ends exactly once.

A stream's call ends when the application exhausts it, closes it, leaves its `with` block, drops it (garbage
collection), or when reading it raises. The proxies are not subclassed per SDK: each stream gets a `StreamObserver`
that says what a chunk teaches and whether the application should see it (`observe` returns False to hide
Costline's own usage-only chunk), and moves what it learnt onto the call before the span ends (`finish`).
"""

from __future__ import annotations

from typing import Any

import wrapt

from costline.instrumentation.call_span import CallSpan
from costline.instrumentation.guard import swallow


class StreamObserver:
    """Learns from the chunks of one stream. `observe` returns whether the application should see the chunk."""

    __slots__ = ("call",)

    def __init__(self, call: CallSpan) -> None:
        self.call = call

    def observe(self, chunk: Any) -> bool:  # pragma: no cover - overridden
        return True

    def finish(self) -> None:
        """Called once before the span ends: move what the chunks taught onto the call."""


class _StreamProxyBase(wrapt.ObjectProxy):
    """State and finalisation shared by the sync and async proxies. The subclasses' methods are twins that differ by
    an `await`, which Python cannot share a body across without a frame more per chunk: what is shared is called
    only where it is needed anyway (a chunk's observing, the end)."""

    def __init__(self, wrapped: Any, observer: StreamObserver) -> None:
        super().__init__(wrapped)
        self._self_observer = observer
        self._self_done = False

    def _self_finalize(self, error: BaseException | None = None) -> None:
        if self._self_done:
            return
        self._self_done = True
        observer = self._self_observer
        try:
            observer.finish()
        except Exception:
            swallow("finishing a stream's telemetry")
        observer.call.end(error)

    _self_end: type[BaseException] = StopIteration
    """What reading the stream raises at its end (not an error)."""

    def _self_stopped(self, exc: BaseException) -> None:
        """Reading the stream raised `exc`: its end, or the call's error. Off the per-chunk path."""
        self._self_finalize(None if isinstance(exc, self._self_end) else exc)

    def _self_accept(self, chunk: Any) -> bool:
        observer = self._self_observer
        try:
            observer.call.chunk_arrived()
            return observer.observe(chunk)
        except Exception:
            swallow("observing a stream chunk")
            return True

    def __del__(self) -> None:
        # An application may drop a stream half-read without closing it: end the span rather than leak it.
        try:
            self._self_finalize()
        except Exception:
            pass


class SyncStreamProxy(_StreamProxyBase):
    def __iter__(self) -> SyncStreamProxy:
        return self

    def __next__(self) -> Any:
        while True:
            try:
                chunk = self.__wrapped__.__next__()
            except BaseException as exc:
                self._self_stopped(exc)
                raise
            if self._self_accept(chunk):
                return chunk

    def __enter__(self) -> SyncStreamProxy:
        self.__wrapped__.__enter__()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        try:
            return self.__wrapped__.__exit__(exc_type, exc, tb)
        finally:
            # An exception raised by the application inside the `with` block is not the API call's error.
            self._self_finalize()

    def close(self) -> None:
        try:
            self.__wrapped__.close()
        finally:
            self._self_finalize()


class AsyncStreamProxy(_StreamProxyBase):
    _self_end = StopAsyncIteration

    def __aiter__(self) -> AsyncStreamProxy:
        return self

    async def __anext__(self) -> Any:
        while True:
            try:
                chunk = await self.__wrapped__.__anext__()
            except BaseException as exc:
                self._self_stopped(exc)
                raise
            if self._self_accept(chunk):
                return chunk

    async def __aenter__(self) -> AsyncStreamProxy:
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        try:
            return await self.__wrapped__.__aexit__(exc_type, exc, tb)
        finally:
            self._self_finalize()

    async def close(self) -> None:
        try:
            await self.__wrapped__.close()
        finally:
            self._self_finalize()
