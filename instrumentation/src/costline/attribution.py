"""`costline.owner(...)`: say in code who a piece of LLM spending belongs to.

    from costline import owner

    with owner(team="search", project="ranking"):
        client.chat.completions.create(...)

    @owner(team="support", feature="auto-reply")
    async def answer(ticket): ...

The keys go into the OpenTelemetry context as W3C baggage entries (`costline.team=search`), so they are inherited by
everything called inside — threads started with context propagation, asyncio tasks, and downstream services that
receive the `baggage` header — and Costline's span processor stamps them onto every GenAI span started inside.
An inner `owner(...)` overrides the keys it names and inherits the rest.

This module must stay cheap to import: it is imported by `import costline`. It is called `attribution`, not
`ownership`, because `costline.processor.ownership` is another concept: the processor resolving an owner's place
in the org/team/project hierarchy. This module only lets the application say whom a call is attributed to.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from opentelemetry import baggage, context

_F = TypeVar("_F", bound=Callable[..., Any])

OWNER_KEYWORDS = {
    "org": "costline.org",
    "team": "costline.team",
    "project": "costline.project",
    "user": "costline.user",
    "cost_center": "costline.cost_center",
    "feature": "costline.feature",
    "customer": "costline.customer",
}
"""Keyword argument of `owner(...)` and `costline.outcome(...)` -> baggage key. Spelled here, not imported from
`costline.attributes`, to keep `import costline` minimal."""


class owner:  # noqa: N801 - used like a function: `with owner(team=...)`, `@owner(team=...)`
    """Context manager and decorator that assigns LLM spending inside it to an owner.

    Keyword arguments: `org`, `team`, `project`, `user`, `cost_center`, `feature`, `customer`. `None` leaves a key
    as inherited. Values must be non-empty strings.
    """

    __slots__ = ("_entries", "_tokens")

    def __init__(
        self,
        *,
        org: str | None = None,
        team: str | None = None,
        project: str | None = None,
        user: str | None = None,
        cost_center: str | None = None,
        feature: str | None = None,
        customer: str | None = None,
    ) -> None:
        values = {
            "org": org,
            "team": team,
            "project": project,
            "user": user,
            "cost_center": cost_center,
            "feature": feature,
            "customer": customer,
        }
        entries: list[tuple[str, str]] = []
        for name, value in values.items():
            if value is None:
                continue
            if not isinstance(value, str) or not value:
                raise ValueError(f"costline.owner: {name} must be a non-empty string, got {value!r}")
            entries.append((OWNER_KEYWORDS[name], value))
        self._entries = tuple(entries)
        self._tokens: list[object] = []

    def context(self, parent: context.Context | None = None) -> context.Context:
        """The context `parent` (default: the current one) with this owner's baggage entries set."""
        ctx = parent if parent is not None else context.get_current()
        for key, value in self._entries:
            ctx = baggage.set_baggage(key, value, context=ctx)
        return ctx

    def __enter__(self) -> owner:
        # A stack, so that one `owner` object can be entered re-entrantly (a decorated recursive function).
        self._tokens.append(context.attach(self.context()))
        return self

    def __exit__(self, *exc_info: object) -> None:
        context.detach(self._tokens.pop())

    def __call__(self, func: _F) -> _F:
        """Decorate `func` (sync, async, generator or async generator) to run inside this owner."""
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                token = context.attach(self.context())
                try:
                    return await func(*args, **kwargs)
                finally:
                    context.detach(token)

            return async_wrapper  # type: ignore[return-value]

        if inspect.isasyncgenfunction(func):

            @functools.wraps(func)
            async def asyncgen_wrapper(*args: Any, **kwargs: Any) -> Any:
                ctx = self.context()
                agen = func(*args, **kwargs)
                # Each step runs inside the owner; the caller's context is restored between steps.
                while True:
                    token = context.attach(ctx)
                    try:
                        item = await agen.__anext__()
                    except StopAsyncIteration:
                        return
                    finally:
                        context.detach(token)
                    yield item

            return asyncgen_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            token = context.attach(self.context())
            try:
                return func(*args, **kwargs)
            finally:
                context.detach(token)

        return wrapper  # type: ignore[return-value]

    def __repr__(self) -> str:
        inner = ", ".join(f"{k.removeprefix('costline.')}={v!r}" for k, v in self._entries)
        return f"costline.owner({inner})"
