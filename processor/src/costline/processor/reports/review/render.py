"""The review as a JSON document (what the webhook carries and the API would serve) and as an HTML page (Jinja2,
autoescaped: team and model names come from spans). Figures carry `data-*` attributes naming what they are, so a
test (or a script) reads them back from the rendered page."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import jinja2

from costline.processor.formats import cents_text
from costline.processor.reports.review.build import Review, TeamReview


def _money(value: Decimal | None) -> str | None:
    return None if value is None else cents_text(value)


def _team(t: TeamReview) -> dict[str, Any]:
    return {
        "org": t.org, "team": t.team, "key": t.key,
        "spent_usd": _money(t.spent_usd), "previous_usd": _money(t.previous_usd),
        "change_pct": None if t.change_pct is None else str(t.change_pct),
        "requests": t.requests, "unpriced_requests": t.unpriced_requests,
        "usage_missing_requests": t.usage_missing_requests, "untracked_usd": _money(t.untracked_usd),
        "month_to_date_usd": _money(t.month_to_date_usd), "monthly_budget_usd": _money(t.monthly_budget_usd),
        "budget_used_pct": None if t.budget_used_pct is None else str(t.budget_used_pct),
        "month_forecast_usd": _money(t.month_forecast_usd),
        "suggested_budget_usd": _money(t.suggested_budget_usd),
        "anomalies": [{"day": a.day.isoformat(), "spent_usd": _money(a.spent_usd),
                       "baseline_usd": _money(a.baseline_usd)} for a in t.anomalies],
        "models": [{"model": m.model, "operation": m.operation, "cost_usd": _money(m.cost_usd), "tokens": m.tokens,
                    "requests": m.requests, "cheaper_model": m.cheaper_model, "saving_usd": _money(m.saving_usd)}
                   for m in t.models],
    }


def review_document(review: Review) -> dict[str, Any]:
    """Money as cent strings (exact to the cent, never a float), instants in ISO 8601 UTC."""
    return {
        "kind": "costline.review", "version": 1,
        "start": review.start.isoformat(), "end": review.end.isoformat(),
        "previous_start": review.previous_start.isoformat(), "timezone": review.timezone,
        "org": _team(review.org), "teams": [_team(t) for t in review.teams],
    }


def review_json(review: Review) -> bytes:
    return json.dumps(review_document(review), indent=1).encode() + b"\n"


_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Cost review {{ d.start[:10] }} to {{ d.end[:10] }}</title>
<style>
 body { font: 10.5pt/1.4 "DejaVu Sans", Arial, sans-serif; color: #1d2430; max-width: 190mm; margin: 10mm auto; }
 section { border-top: 2px solid #1d2430; margin-top: 14pt; padding-top: 6pt; }
 h1 { font-size: 17pt; margin: 0 0 4pt; } h2 { font-size: 13pt; margin: 0 0 6pt; }
 h3 { font-size: 10.5pt; margin: 10pt 0 3pt; border-bottom: 1px solid #bbb; }
 table { border-collapse: collapse; width: 100%; } td, th { padding: 2pt 4pt; text-align: left; }
 td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
 .meta { color: #555; font-size: 9pt; } .warn { color: #9a3b00; font-weight: bold; } .ok { color: #0a6b2d; }
 .none { color: #777; font-style: italic; }
</style></head><body>
<h1>Cost review</h1>
<div class="meta">{{ d.start }} to {{ d.end }} (UTC), against {{ d.previous_start }} to {{ d.start }};
 zone {{ d.timezone }}. Exact figures from the Costline ledger.</div>
{% for t in [d.org] + d.teams %}
<section class="review" data-team="{{ t.key }}">
 <h2>{{ "Organisation" if loop.first else "Team" }} {{ t.key }}</h2>
 <table>
  <tr><th>Spent this period</th><td class="n" data-field="spent_usd">{{ t.spent_usd }}</td>
      <th>Previous period</th><td class="n" data-field="previous_usd">{{ t.previous_usd }}</td>
      <th>Change</th><td class="n" data-field="change_pct">{{ t.change_pct ~ " %" if t.change_pct is not none else "new" }}</td></tr>
  <tr><th>Month to date</th><td class="n" data-field="month_to_date_usd">{{ t.month_to_date_usd }}</td>
      <th>Monthly budget</th><td class="n" data-field="monthly_budget_usd">{{ t.monthly_budget_usd or "none" }}</td>
      <th>Used</th><td class="n {{ 'warn' if t.budget_used_pct and t.budget_used_pct|float >= 80 else 'ok' }}" data-field="budget_used_pct">{{ t.budget_used_pct ~ " %" if t.budget_used_pct is not none else "-" }}</td></tr>
  <tr><th>Month-end forecast</th><td class="n" data-field="month_forecast_usd">{{ t.month_forecast_usd }}</td>
      <th>Suggested budget</th><td class="n" data-field="suggested_budget_usd">{{ t.suggested_budget_usd or "-" }}</td>
      <th>Requests</th><td class="n" data-field="requests">{{ t.requests }}</td></tr>
  <tr><th>Unpriced calls</th><td class="n" data-field="unpriced_requests">{{ t.unpriced_requests }}</td>
      <th>Calls without usage</th><td class="n" data-field="usage_missing_requests">{{ t.usage_missing_requests }}</td>
      <th>Untracked spend</th><td class="n" data-field="untracked_usd">{{ t.untracked_usd }}</td></tr>
 </table>
 <h3>Anomalies (a day over {{ factor }}× its {{ baseline }}-day mean)</h3>
 {% if t.anomalies %}<table>{% for a in t.anomalies %}
  <tr class="anomaly" data-day="{{ a.day }}"><td>{{ a.day }}</td><td class="n" data-field="spent_usd">{{ a.spent_usd }}</td>
   <td class="meta">baseline {{ a.baseline_usd }}/day</td></tr>{% endfor %}</table>
 {% else %}<p class="none">none</p>{% endif %}
 <h3>Top models</h3>
 {% if t.models %}<table><tr><th>model</th><th>operation</th><th class="n">cost</th><th class="n">tokens</th><th>cheaper in the org</th><th class="n">would save</th></tr>
 {% for m in t.models %}<tr class="model" data-model="{{ m.model }}"><td>{{ m.model }}</td><td>{{ m.operation }}</td>
  <td class="n" data-field="cost_usd">{{ m.cost_usd }}</td><td class="n" data-field="tokens">{{ m.tokens }}</td>
  <td data-field="cheaper_model">{{ m.cheaper_model or "" }}</td><td class="n" data-field="saving_usd">{{ m.saving_usd or "" }}</td></tr>
 {% endfor %}</table>{% else %}<p class="none">no calls</p>{% endif %}
</section>
{% endfor %}
</body></html>
"""

_ENV = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)


def render_html(review: Review) -> bytes:
    from costline.processor.reports.review.build import ANOMALY_FACTOR, BASELINE_DAYS

    return _ENV.from_string(_TEMPLATE).render(d=review_document(review), factor=ANOMALY_FACTOR,
                                              baseline=BASELINE_DAYS).encode()
