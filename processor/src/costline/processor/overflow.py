"""Bounding the series of gauges made from ledger snapshots (period totals, chargeback): past a label's cardinality
limit, the values of most weight keep their names and the rest are summed under `__overflow__`, so every total
stays exact while the number of series stays bounded (live series do the same as calls arrive: `aggregate`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

OVERFLOW = "__overflow__"
"""The label value every value past a cardinality limit is counted under: live series (`metrics.aggregate`), gauges
made from snapshots, and the chargeback statement's teams alike."""

V = TypeVar("V")


def kept_values(weight: Mapping[str, Any], limit: int) -> set[str] | None:
    """The `limit` values of most weight (ties: the greater value), or None when all of them fit."""
    if len(weight) <= limit:
        return None
    return set(sorted(weight, key=lambda v: (weight[v], v), reverse=True)[:limit])


def folded(rows: Mapping[tuple[str, ...], V], index: int, kept: set[str], add: Callable[[V, V], V]
           ) -> dict[tuple[str, ...], V]:
    """`rows` with the label at `index` made `__overflow__` where it is not `kept`; rows that then meet are summed
    with `add`."""
    out: dict[tuple[str, ...], V] = {}
    for key, value in rows.items():
        if key[index] not in kept:
            key = (*key[:index], OVERFLOW, *key[index + 1:])
        previous = out.get(key)
        out[key] = value if previous is None else add(previous, value)
    return out
