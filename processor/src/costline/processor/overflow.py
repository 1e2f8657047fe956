"""The one cardinality-overflow rule, for every series whose label values come from spans.

**Per label, at most its limit of distinct values keep their name** (`metrics.cardinality_limit`, or the label's
own entry in `metrics.cardinality_limits`); **every other value is counted under `__overflow__`**, with its sums
added to that series, so every total stays exact while the number of series stays bounded. Which values keep their
name depends on what is being bounded:

- live counters (the call series of `metrics.aggregate`, `costline_outcomes_total`, `costline_policy_violations_total`)
  keep the **first** values that come (`FirstCome`): a counter's series cannot change its labels once scraped, so
  weight cannot decide;
- gauges and reports made afresh from a ledger snapshot (period totals, the chargeback gauges and the statement's
  teams) keep the values of **most weight** (`kept_values`, `folded`): they are remade whole on every read.

No family has a limit on its number of series beside the per-label ones: their product is what the operator sizes
with `cardinality_limits`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Generic, TypeVar

OVERFLOW = "__overflow__"
"""The label value every value past a cardinality limit is counted under: live series (`metrics.aggregate`), gauges
made from snapshots, and the chargeback statement's teams alike."""

V = TypeVar("V")


class FirstCome(Generic[V]):
    """Live series' side of the rule: per label, the first values to come keep their name, up to the label's limit.

    `admit(name, value)` answers what the caller keeps for a value — `as_kept(name, value)`, made once per admitted
    value (the exposition's label text for the call series; the value itself by default) — or `as_kept(name,
    OVERFLOW)` past the limit, counting it in `overflows`. Not thread-safe: its owner holds its own lock."""

    def __init__(self, names: Sequence[str], limit: int, per_label: Mapping[str, int] | None = None,
                 as_kept: Callable[[str, str], V] = lambda name, value: value) -> None:  # type: ignore[assignment]
        self._as_kept = as_kept
        self.kept: dict[str, dict[str, V]] = {name: {} for name in names}
        """Per label: admitted value -> what is kept for it (the caller may read these dicts, never write them)."""
        self.overflow: dict[str, V] = {name: as_kept(name, OVERFLOW) for name in names}
        self.overflows: dict[str, int] = dict.fromkeys(names, 0)
        """Per label: values refused so far (a call counted under `__overflow__` counts once per label folded)."""
        self.limits: dict[str, int] = {}
        self.configure(limit, per_label)

    def configure(self, limit: int, per_label: Mapping[str, int] | None = None) -> None:
        """New limits (a reload). Values already admitted stay: a series never changes its labels mid-life."""
        per_label = per_label or {}
        self.limits = {name: per_label.get(name, limit) for name in self.kept}

    def admit(self, name: str, value: str) -> V:
        kept = self.kept[name]
        found = kept.get(value)
        if found is not None:
            return found
        if len(kept) >= self.limits[name]:
            self.overflows[name] += 1
            return self.overflow[name]
        found = kept[value] = self._as_kept(name, value)
        return found


def kept_values(weight: Mapping[str, Any], limit: int) -> set[str] | None:
    """Snapshots' side of the rule: the `limit` values of most weight (ties: the greater value), or None when all of
    them fit."""
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
