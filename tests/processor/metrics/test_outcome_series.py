"""`costline_outcomes_total` folds like the other per-owner series (the one rule of `overflow.py`): per label, past
its limit, values become `__overflow__`, the counts stay exact, and a reload's new limits keep admitted series."""

from __future__ import annotations

from costline.processor.config.core import MetricsConfig
from costline.processor.metrics.outcomes import OutcomeCounter
from costline.processor.model import Outcome, Owner
from costline.processor.overflow import OVERFLOW


def _outcome(name: str, count: int = 1) -> Outcome:
    return Outcome(name=name, count=count)


def test_each_label_folds_past_its_own_limit_and_totals_stay_exact() -> None:
    counter = OutcomeCounter(MetricsConfig(cardinality_limit=2, cardinality_limits={"team": 1}))
    counter.add([(_outcome("resolved"), Owner(org="acme", team=f"t{n}", feature="chat")) for n in range(3)])
    counter.add([(_outcome(name, 2), Owner(org="acme", team="t0", feature="chat")) for name in ("a", "b")])
    assert counter.snapshot() == {
        ("acme", "t0", "chat", "resolved"): 1,
        ("acme", OVERFLOW, "chat", "resolved"): 2,  # team's limit is 1; org and feature keep theirs
        ("acme", "t0", "chat", "a"): 2,
        ("acme", "t0", "chat", OVERFLOW): 2,  # `name` takes `cardinality_limit`: two names, then the rest
    }


def test_a_reload_keeps_admitted_values_and_applies_new_limits() -> None:
    counter = OutcomeCounter(MetricsConfig(cardinality_limit=1))
    counter.add([(_outcome("resolved"), Owner(org="acme", team="t0"))])
    counter.configure(MetricsConfig(cardinality_limit=2))
    counter.add([(_outcome("resolved"), Owner(org="acme", team=team)) for team in ("t0", "t1", "t2")])
    assert counter.snapshot() == {("acme", "t0", "", "resolved"): 2, ("acme", "t1", "", "resolved"): 1,
                                  ("acme", OVERFLOW, "", "resolved"): 1}
