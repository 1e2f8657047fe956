"""Performance: how fast and how reliably the providers answer, per model — the other side of the cost."""

from __future__ import annotations

from costline.dashboards import metrics
from costline.dashboards.config import MixinConfig
from costline.dashboards.layout import build_dashboard
from costline.dashboards.links import PERFORMANCE_UID
from costline.dashboards.panels import COUNT, PERCENT, SECONDS, query, timeseries_panel
from costline.dashboards.promql import by, filtered

RATE = "$__rate_interval"
MODEL_LEGEND = "{{provider}}/{{model}}"


def _ttft_quantile(config: MixinConfig, quantile: float) -> str:
    buckets = filtered(config, f"{metrics.TIME_TO_FIRST_TOKEN}_bucket")
    return f"histogram_quantile({quantile}, sum {by('provider', 'model', 'le')} (rate({buckets}[{RATE}])))"


def ttft_p50(config: MixinConfig):
    return timeseries_panel(
        "Time to first token p50",
        "Median seconds from the call to the first streamed chunk, per model (streamed calls only).",
        SECONDS,
        query(_ttft_quantile(config, 0.5), MODEL_LEGEND),
    )


def ttft_p95(config: MixinConfig):
    return timeseries_panel(
        "Time to first token p95",
        "95th percentile of the time to the first streamed chunk, per model: what the slowest users wait.",
        SECONDS,
        query(_ttft_quantile(config, 0.95), MODEL_LEGEND),
    )


def error_rate(config: MixinConfig):
    requests = filtered(config, metrics.REQUESTS)
    errors = filtered(config, metrics.REQUESTS, 'outcome="error"')
    model = by("provider", "model")
    # `or ... * 0` keeps models without a single error on the chart, at 0 %.
    expr = (
        f"(sum {model} (rate({errors}[{RATE}])) or sum {model} (rate({requests}[{RATE}])) * 0)"
        f" / sum {model} (rate({requests}[{RATE}]))"
    )
    return timeseries_panel(
        "Error rate by model",
        "Share of calls that failed (after the SDK's own retries), per model. Failed calls are billed for the "
        "tokens the provider reports, usually none.",
        PERCENT,
        query(expr, MODEL_LEGEND),
    )


def requests_by_outcome(config: MixinConfig):
    return timeseries_panel(
        "Requests per second by outcome",
        "Call rate per model and outcome (success, error).",
        "reqps",
        query(
            f"sum {by('provider', 'model', 'outcome')} (rate({filtered(config, metrics.REQUESTS)}[{RATE}]))",
            "{{model}} {{outcome}}",
        ),
        stacked=True,
    ).span(24)


def retry_rate(config: MixinConfig):
    retries = filtered(config, metrics.RETRIES)
    requests = filtered(config, metrics.REQUESTS)
    model = by("provider", "model")
    return timeseries_panel(
        "Retries per request by model",
        "Retries the SDKs made (`http.request.resend_count`) per call, per model: rate limits and flaky "
        f"connections show here before they show as errors. Needs the processor's `{metrics.RETRIES}` counter.",
        COUNT,
        query(
            f"sum {model} (rate({retries}[{RATE}])) / sum {model} (rate({requests}[{RATE}]))",
            MODEL_LEGEND,
        ),
    )


def output_tokens_per_second(config: MixinConfig):
    tokens = filtered(config, metrics.TOKENS, 'type="output"')
    return timeseries_panel(
        "Output tokens per second",
        "Tokens generated per second per model, across all calls (throughput, not per-call speed).",
        COUNT,
        query(f"sum {by('provider', 'model')} (rate({tokens}[{RATE}]))", MODEL_LEGEND),
        stacked=True,
    )


def tokens_per_second_by_type(config: MixinConfig):
    return timeseries_panel(
        "Tokens per second by type",
        "All tokens processed per second, split into uncached input, cache reads, cache writes, output and the "
        "reasoning part of output.",
        COUNT,
        query(f"sum {by('type')} (rate({filtered(config, metrics.TOKENS)}[{RATE}]))", "{{type}}"),
    )


def dashboard(config: MixinConfig) -> dict[str, object]:
    return build_dashboard(
        config,
        uid=PERFORMANCE_UID,
        title="Costline / Performance",
        description="Time to first token, error and retry rates, and token throughput per model.",
        time_from="now-6h",
        rows=[
            ("Latency", [ttft_p50(config), ttft_p95(config)]),
            ("Reliability", [error_rate(config), retry_rate(config), requests_by_outcome(config)]),
            ("Throughput", [output_tokens_per_second(config), tokens_per_second_by_type(config)]),
        ],
    )
