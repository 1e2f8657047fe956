"""Every span source the processor understands: one module per source, each defining `SOURCE` (a `base.Source`).

Adding a source is adding a module here (and its recorded fixture under `tests/fixtures/spans/<source>/`):
the modules are discovered, ordered by `Source.precedence` (the first whose scope or markers match a span wins; the
catch-all `semconv` is last). `python -m costline.processor.ingest.normalize.sources` prints docs/sources.md's table
from the modules' `SourceDoc`s (checked for drift by the tests).
"""

from __future__ import annotations

import importlib
import pkgutil

from costline.processor.ingest.normalize.sources.base import (
    AGGREGATE_KINDS,
    BOOL,
    COUNT,
    FLOAT,
    MARKER,
    NON_CALL_OPERATIONS,
    OWNER,
    STR,
    TOKENS,
    Source,
)

__all__ = ["AGGREGATE_KINDS", "BOOL", "COUNT", "FLOAT", "MARKER", "NON_CALL_OPERATIONS", "OWNER", "SEMCONV_SOURCE", "SOURCES", "STR",
           "TOKENS", "Source", "docs_table"]


def _discover() -> tuple[Source, ...]:
    found: list[Source] = []
    for info in pkgutil.iter_modules(__path__):
        if info.name == "base" or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        source = getattr(module, "SOURCE", None)
        if not isinstance(source, Source):
            raise TypeError(f"{module.__name__} defines no SOURCE (a costline...sources.base.Source)")
        found.append(source)
    names = [s.name for s in found]
    if len(set(names)) != len(names):
        raise ValueError(f"two span sources share a name: {sorted(names)}")
    return tuple(sorted(found, key=lambda s: (s.precedence, s.name)))


SOURCES: tuple[Source, ...] = _discover()
SEMCONV_SOURCE = SOURCES[-1]
if SEMCONV_SOURCE.name != "semconv":
    raise ValueError("the catch-all `semconv` source must come last (highest precedence)")


def docs_table() -> str:
    """docs/sources.md's table of sources, from the modules' `SourceDoc`s."""
    lines = ["| source (`LLMCall.source`) | tested with | what its spans report | how Costline reads them | known limits |",
             "|---|---|---|---|---|"]
    for source in SOURCES:
        doc = source.doc
        if doc is None:
            raise ValueError(f"span source {source.name!r} has no SourceDoc")
        lines.append(f"| `{source.name}` | {doc.tested} | {doc.reports} | {doc.reading} | {doc.limits or '—'} |")
    return "\n".join(lines) + "\n"
