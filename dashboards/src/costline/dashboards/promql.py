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


def owner_label(expr: str) -> str:
    """Adds `owner="acme/marketing"` (or `acme/engineering/alice/alice-laptop`, `campaigns`) to budget series.

    A budget series carries only the owner labels of its scope, so joining all of them leaves empty parts; the
    label_replace trims the slashes they leave at either end."""
    joined = f'label_join({expr}, "owner", "/", "org", "team", "user", "key", "project")'
    return f'label_replace({joined}, "owner", "$1", "owner", "/*(.*?)/*")'
