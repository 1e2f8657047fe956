"""Spend overview: how much, who, on what, and how efficiently. The CFO's first click."""

from __future__ import annotations

from costline.dashboards import metrics
from costline.dashboards.config import MixinConfig
from costline.dashboards.layout import build_dashboard
from costline.dashboards.links import SPEND_OVERVIEW_UID
from costline.dashboards.panels import (
    COUNT,
    PERCENT,
    USD,
    USD_PER_HOUR,
    bargauge_panel,
    query,
    stat_panel,
    table_panel,
    timeseries_panel,
)
from costline.dashboards.promql import by, filtered, increase_with_births, without_replicas

RANGE = "$__range"
RATE = "$__rate_interval"
CACHE_READ = 'type="cache_read"'
CACHE_TYPES = 'type=~"cache_read|cache_write"'
INPUT_TYPES = 'type=~"input|cache_read|cache_write"'  # `input` counts uncached input only


def _cost(config: MixinConfig, *matchers: str) -> str:
    return filtered(config, metrics.COST, *matchers)


def _ledger(config: MixinConfig, gauge: str, *matchers: str) -> str:
    """A ledger-backed period gauge filtered by the dashboard variables, one series per figure across replicas."""
    return without_replicas(config, filtered(config, gauge, *matchers))


def month_to_date_spend(config: MixinConfig):
    # The ledger's own figure for the processor's current month: exact, whatever was scraped when. Relative time
    # `now/M` labels the panel as this month in Grafana (the query itself is an instant read of the gauge).
    return stat_panel(
        "Month-to-date spend",
        "Cost of every priced call since the start of this month (the processor's time zone), for the selected "
        "owners and models, read from the ledger. `costline usage` exports the same figures as CSV.",
        USD,
        query(f"sum({_ledger(config, metrics.PERIOD_COST)})", "spend", instant=True),
    ).time_from("now/M")


def spend_in_range(config: MixinConfig):
    return stat_panel(
        "Spend in selected range",
        "Cost of every priced call within the dashboard's time range.",
        USD,
        query(f"sum({increase_with_births(_cost(config), RANGE)})", "spend", instant=True),
    )


def requests_in_range(config: MixinConfig):
    return stat_panel(
        "Requests in selected range",
        "LLM API calls (successful and failed) within the time range.",
        COUNT,
        query(f"sum({increase_with_births(filtered(config, metrics.REQUESTS), RANGE)})", "requests", instant=True),
    )


def cost_per_1k_requests(config: MixinConfig):
    expr = f"1000 * sum({increase_with_births(_cost(config), RANGE)}) / sum({increase_with_births(filtered(config, metrics.REQUESTS), RANGE)})"
    return stat_panel(
        "Cost per 1k requests",
        "Average cost of a thousand calls within the time range: a size-independent way to compare periods.",
        USD,
        query(expr, "per 1k requests", instant=True),
    )


def cache_hit_ratio(config: MixinConfig):
    cached = f"sum({increase_with_births(filtered(config, metrics.TOKENS, CACHE_READ), RANGE)})"
    all_input = f"sum({increase_with_births(filtered(config, metrics.TOKENS, INPUT_TYPES), RANGE)})"
    return stat_panel(
        "Prompt cache hit ratio",
        "Share of input tokens served from the providers' prompt caches (billed at the cheaper cache-read price).",
        PERCENT,
        query(f"{cached} / {all_input}", "cache hits", instant=True),
        steps=(("orange", None), ("green", 0.3)),
    )


def unpriced_requests(config: MixinConfig):
    return stat_panel(
        "Unpriced requests",
        "Calls this month whose model has no known price (from the ledger): their cost is missing from every "
        "figure here. Add a price override in the processor config and run `costline reprice`; this drops to 0.",
        COUNT,
        query(f"sum({_ledger(config, metrics.PERIOD_UNPRICED_REQUESTS)}) or vector(0)", "unpriced", instant=True),
        steps=(("green", None), ("red", 1)),
    )


def _spend_by(config: MixinConfig, title: str, labels: tuple[str, ...], legend: str):
    return timeseries_panel(
        title,
        f"Spend rate per {' and '.join(labels)}, in USD per hour, stacked.",
        USD_PER_HOUR,
        query(f"sum {by(*labels)} (rate({_cost(config)}[{RATE}])) * 3600", legend),
        stacked=True,
    )


def spend_by_team(config: MixinConfig):
    return _spend_by(config, "Spend by team (USD per hour)", ("org", "team"), "{{org}}/{{team}}")


def spend_by_project(config: MixinConfig):
    return _spend_by(config, "Spend by project (USD per hour)", ("project",), "{{project}}")


def spend_by_model(config: MixinConfig):
    return _spend_by(config, "Spend by model (USD per hour)", ("provider", "model"), "{{provider}}/{{model}}")


def spend_by_provider(config: MixinConfig):
    return _spend_by(config, "Spend by provider (USD per hour)", ("provider",), "{{provider}}")


def top_spenders(config: MixinConfig):
    expr = f"topk({config.top_n}, sum {by('org', 'team', 'project')} ({increase_with_births(_cost(config), RANGE)}))"
    return bargauge_panel(
        f"Top {config.top_n} spenders",
        "Team and project pairs that spent most within the time range.",
        USD,
        query(expr, "{{org}}/{{team}} · {{project}}", instant=True),
    )


def spend_by_model_table(config: MixinConfig):
    requests = filtered(config, metrics.REQUESTS)
    tokens = filtered(config, metrics.TOKENS)
    per_model = by("provider", "model")
    return table_panel(
        "Models: spend, requests, tokens",
        "Per model within the time range: spend, calls, tokens of every type, and the average cost of 1k calls.",
        query(f"sum {per_model} ({increase_with_births(_cost(config), RANGE)})", instant=True),
        query(f"sum {per_model} ({increase_with_births(requests, RANGE)})", instant=True),
        query(f"sum {per_model} ({increase_with_births(tokens, RANGE)})", instant=True),
        query(
            f"1000 * sum {per_model} ({increase_with_births(_cost(config), RANGE)})"
            f" / sum {per_model} ({increase_with_births(requests, RANGE)})",
            instant=True,
        ),
        columns={"Value #A": "Spend", "Value #B": "Requests", "Value #C": "Tokens", "Value #D": "Per 1k requests"},
        units={"Spend": USD, "Per 1k requests": USD, "Requests": COUNT, "Tokens": COUNT},
        sort_by="Spend",
    )


def cached_tokens(config: MixinConfig):
    cache = filtered(config, metrics.TOKENS, CACHE_TYPES)
    return timeseries_panel(
        "Cache savings: input tokens served from cache",
        "Input tokens per second per model that the provider served from its prompt cache (cache reads) and "
        "wrote to it. Each cache-read token costs a fraction of a fresh input token (10-50 % depending on the "
        "provider): the larger the cache-read share, the larger the saving.",
        "short",
        query(
            f"sum {by('provider', 'model', 'type')} (rate({cache}[{RATE}]))",
            "{{model}} {{type}}",
        ),
    )


def cost_per_1k_requests_by_model(config: MixinConfig):
    requests = filtered(config, metrics.REQUESTS)
    per_model = by("provider", "model")
    return timeseries_panel(
        "Cost per 1k requests by model",
        "Average cost of a thousand calls per model over time: rising lines mean bigger prompts or answers.",
        USD,
        query(
            f"1000 * sum {per_model} (rate({_cost(config)}[{RATE}])) / sum {per_model} (rate({requests}[{RATE}]))",
            "{{provider}}/{{model}}",
        ),
    )


def unpriced_by_model(config: MixinConfig):
    return table_panel(
        "Unpriced requests by model and team",
        "Which models could not be priced this month, and who called them (from the ledger; gone once repriced).",
        query(
            f"sum {by('provider', 'model', 'org', 'team')} ({_ledger(config, metrics.PERIOD_UNPRICED_REQUESTS)}) > 0",
            instant=True,
        ),
        columns={"Value": "Unpriced requests"},
        sort_by="Unpriced requests",
    ).span(24)


def calls_without_usage(config: MixinConfig):
    # The counter has no owner labels (source, provider and model say where usage is lost): the model variable only.
    missing = filtered(config, metrics.CALLS_WITHOUT_USAGE, labels=("model",))
    return table_panel(
        "Calls without usage by source and model",
        "Successful calls in the time range whose spans reported no token counts: their cost is unknown, so they are "
        "in no figure here (never counted as $0). Make the instrumentation report usage (for OpenAI streams, "
        "`stream_options.include_usage`; docs/sources.md, usage missing).",
        query(f"sum {by('source', 'provider', 'model')} ({increase_with_births(missing, RANGE)}) > 0", instant=True),
        columns={"Value": "Calls without usage"},
        sort_by="Calls without usage",
    ).span(24)


def dashboard(config: MixinConfig) -> dict[str, object]:
    return build_dashboard(
        config,
        uid=SPEND_OVERVIEW_UID,
        title="Costline / Spend overview",
        description="Month-to-date and recent LLM spend by team, project, model and provider.",
        rows=[
            (
                "Totals",
                [
                    month_to_date_spend(config),
                    spend_in_range(config),
                    requests_in_range(config),
                    cost_per_1k_requests(config),
                    cache_hit_ratio(config),
                    unpriced_requests(config),
                ],
            ),
            (
                "Spend over time",
                [spend_by_team(config), spend_by_project(config), spend_by_model(config), spend_by_provider(config)],
            ),
            ("Who and what", [top_spenders(config), spend_by_model_table(config)]),
            (
                "Efficiency and gaps",
                [cached_tokens(config), cost_per_1k_requests_by_model(config), unpriced_by_model(config),
                 calls_without_usage(config)],
            ),
        ],
    )
