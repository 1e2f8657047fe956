"""Small builders for PromQL text, so selectors and dashboard filters are written the same way everywhere."""

from __future__ import annotations

from collections.abc import Iterable

from costline.dashboards.config import MixinConfig

DASHBOARD_FILTER_LABELS: tuple[str, ...] = ("org", "team", "project", "model")
"""The chained dashboard variables, in chain order: each one's values are limited by the ones before it."""


def selector(config: MixinConfig, *matchers: str) -> str:
    """`{job="costline", <matchers>}`: the configured selector plus extra matchers."""
    return "{" + ", ".join(m for m in (config.costline_selector, *matchers) if m) + "}"


def variable_matchers(labels: Iterable[str] = DASHBOARD_FILTER_LABELS) -> tuple[str, ...]:
    """`org=~"$org"`, ...: regex matchers because the variables are multi-value with an `.*` "All"."""
    return tuple(f'{label}=~"${label}"' for label in labels)


def filtered(config: MixinConfig, metric: str, *matchers: str, labels: Iterable[str] = DASHBOARD_FILTER_LABELS) -> str:
    """`metric{job="costline", org=~"$org", team=~"$team", ..., <matchers>}`."""
    return metric + selector(config, *variable_matchers(labels), *matchers)


def by(*labels: str) -> str:
    return "by (" + ", ".join(labels) + ")"


def without(labels: Iterable[str]) -> str:
    return "without (" + ", ".join(labels) + ")"


BUDGET_FILTER_LABELS: tuple[str, ...] = ("org", "team", "project")
"""Budget series carry owner labels but no `model`: budget panels filter by these only."""


def recorded(name: str, *matchers: str, labels: Iterable[str] = DASHBOARD_FILTER_LABELS) -> str:
    """A recorded series filtered by the dashboard variables. No job selector: the recording rule applied it."""
    return name + "{" + ", ".join((*variable_matchers(labels), *matchers)) + "}"


BUDGET_OWNER_LABELS = ("org", "team", "user", "key", "project", "feature", "environment", "customer", "model")
"""The owner labels of the budget series (the processor's `model.BUDGET_LABELS`, hierarchy first): a budget carries
those of its scope only."""


def owner_label(expr: str) -> str:
    """Adds `owner="acme/marketing"` (or `acme/engineering/alice/alice-laptop`, `campaigns`, `globex`, `gpt-5`) to
    budget series.

    A budget series carries only the owner labels of its scope, so joining all of them leaves empty parts; the
    label_replace trims the slashes they leave at either end."""
    labels = ", ".join(f'"{label}"' for label in BUDGET_OWNER_LABELS)
    joined = f'label_join({expr}, "owner", "/", {labels})'
    return f'label_replace({joined}, "owner", "$1", "owner", "/*(.*?)/*")'


_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def seconds(duration: str) -> int:
    """`5m` -> 300: a fixed PromQL duration from the config, as a number a rate can be divided by."""
    number, unit = duration[:-1], duration[-1:]
    if not number.isdigit() or unit not in _SECONDS:
        raise ValueError(f"{duration!r}: expected a whole number and one of {', '.join(_SECONDS)} (e.g. 5m, 1h, 1d)")
    return int(number) * _SECONDS[unit]


def increase_with_births(series: str, window: str) -> str:
    """`increase()` that counts a series born inside the window in full.

    A counter series the processor creates with its first calls already counted (a new team x model, the first
    rejected span) has no earlier sample at 0, so `increase()` sees no growth and a whole burst is missing. A series
    that did not exist at the window's start counted from zero within the window: its value is its increase.
    Series that did exist keep `increase()` (counter resets included)."""
    return f"({series} unless {series} offset {window} or increase({series}[{window}]))"


def rate_with_births(series: str, window: str) -> str:
    """`rate()` with series born inside the window counted in full (see `increase_with_births`); `window` must be a
    fixed duration (a config field), not a Grafana variable, to divide by."""
    return f"(({series} unless {series} offset {window}) / {seconds(window)} or rate({series}[{window}]))"


def without_replicas(config: MixinConfig, expr: str) -> str:
    """One series per ledger-backed figure: every processor sharing a ledger exposes the same value, so take one
    (`max`) instead of summing them."""
    return f"max {without(config.replica_labels)} ({expr})"
