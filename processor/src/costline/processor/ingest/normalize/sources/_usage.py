"""Reading a usage object a source carries as text (Langfuse's `usage_details` JSON, LiteLLM's `usage_object`, a
Python dict's repr): what several sources' `refine` steps share. Not a source (a leading `_`: not discovered).

The object is the provider's usage as the SDK returned it, in one of three shapes, told apart by its keys:
OpenAI Chat Completions (`prompt_tokens`, `prompt_tokens_details.cached_tokens`, ...), OpenAI Responses
(`input_tokens`, `input_tokens_details.cached_tokens`, ...) and Anthropic (`input_tokens` beside
`cache_read_input_tokens` / `cache_creation_input_tokens`: there the input EXCLUDES the cache, so the cache is added
to it here and every shape comes out with semconv's meaning, input including the cache). Langfuse's own canonical
keys (`input`, `output`, `total`, and beside them `input_cached_tokens` / `input_cache_write_tokens`, as its JS SDK
writes them) exclude the cache too: each usage type is priced on its own there.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping, MutableMapping

from costline.processor.model import MAX_TOKENS

MAX_TEXT = 16_384
"""A usage object is a few hundred characters: a longer text is not parsed (the hot path stays bounded)."""

# field -> paths into the usage object, first present wins
_PATHS: dict[str, tuple[tuple[str, ...], ...]] = {
    "input": (("prompt_tokens",), ("input_tokens",), ("input",)),
    "output": (("completion_tokens",), ("output_tokens",), ("output",)),
    "total": (("total_tokens",), ("total",)),
    "cache_read": (("prompt_tokens_details", "cached_tokens"), ("input_tokens_details", "cached_tokens"),
                   ("cache_read_input_tokens",), ("input_cached_tokens",), ("input_cache_read",)),
    "cache_write": (("prompt_tokens_details", "cache_write_tokens"),
                    ("prompt_tokens_details", "cache_creation_tokens"), ("cache_creation_input_tokens",),
                    ("input_cache_write_tokens",), ("input_cache_creation",)),
    "reasoning": (("completion_tokens_details", "reasoning_tokens"), ("output_tokens_details", "reasoning_tokens"),
                  ("output_reasoning",), ("output_reasoning_tokens",)),
    "input_audio": (("prompt_tokens_details", "audio_tokens"), ("input_audio_tokens",)),
    "output_audio": (("completion_tokens_details", "audio_tokens"), ("output_audio_tokens",)),
}


_LANGFUSE_CACHE_KEYS = ("input_cached_tokens", "input_cache_read", "input_cache_write_tokens", "input_cache_creation")


def parse_object(text: object) -> Mapping[str, object] | None:
    """The mapping `text` spells as JSON or as a Python literal (LiteLLM writes `str(dict)`), else None: text that is
    neither, or too long, is ignored like any attribute of the wrong type. `ast.literal_eval` evaluates literals
    only, never code."""
    if not isinstance(text, str) or not text or len(text) > MAX_TEXT:
        return None
    try:
        found = json.loads(text)
    except ValueError:
        try:
            found = ast.literal_eval(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            return None
    return found if isinstance(found, Mapping) else None


def _count(usage: Mapping[str, object], path: tuple[str, ...]) -> int | None:
    node: object = usage
    for key in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    # A count of the wrong type (None, a bool, a string) or an impossible one is ignored, as an attribute would be.
    if isinstance(node, bool) or not isinstance(node, int) or not 0 <= node <= MAX_TOKENS:
        return None
    return node


def usage_fields(usage: Mapping[str, object]) -> dict[str, int]:
    """The usage object's counts by field name, input including the cache (semconv meaning)."""
    found: dict[str, int] = {}
    for name, paths in _PATHS.items():
        for path in paths:
            value = _count(usage, path)
            if value is not None:
                found[name] = value
                break
    anthropic_shape = "prompt_tokens" not in usage and (
        "cache_read_input_tokens" in usage or "cache_creation_input_tokens" in usage)
    langfuse_shape = "prompt_tokens" not in usage and "input_tokens" not in usage and any(
        key in usage for key in _LANGFUSE_CACHE_KEYS)
    if (anthropic_shape or langfuse_shape) and "input" in found:
        found["input"] += found.get("cache_read", 0) + found.get("cache_write", 0)
    return found


def fill_usage(values: MutableMapping[str, object], text: object) -> None:
    """Fill the fields the span's attributes did not give from the usage object in `text` (attributes win)."""
    usage = parse_object(text)
    if usage is None:
        return
    for name, value in usage_fields(usage).items():
        values.setdefault(name, value)
