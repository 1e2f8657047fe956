"""The statement as printable HTML: one A4 page per team (Jinja2, autoescaped: team, model and feature names come
from spans).

Each page: the period, the team's lines and total, its top models and features by cost, the trend against the
previous month's total, and the tokens still waiting for a price. Figures carry `data-*` attributes naming what
they are, so that a test (or a script) can read them back from the rendered page.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

import jinja2

from costline.processor.formats import cents_text, decimal_text
from costline.processor.reports.chargeback.statement import Statement

TOP = 5
"""Models and features listed per team."""


@dataclass(frozen=True, slots=True)
class TeamDetail:
    """What the page shows beside the statement's lines, read from the ledger for one team."""

    models: Sequence[tuple[str, Decimal, int, bool]] = ()
    """(model, exact cost, tokens, some calls unpriced), highest cost first. A model whose calls are all unpriced
    is shown as unpriced, never as 0.00."""
    features: Sequence[tuple[str, Decimal, int, bool]] = ()
    previous_total: Decimal | None = None
    """The team's total in the previous month's statement; None when it had none."""


_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Chargeback {{ s.period }}</title>
<style>
 @page { size: A4; margin: 16mm 14mm; }
 body { font: 10.5pt/1.4 "DejaVu Sans", Arial, sans-serif; color: #1d2430; margin: 0; }
 @media screen { body { max-width: 182mm; margin: 10mm auto; } .page { margin-bottom: 18mm; } }
 .page { break-after: page; page-break-after: always; padding: 0; }
 .page:last-child { break-after: auto; page-break-after: auto; }
 header { border-bottom: 2px solid #1d2430; margin-bottom: 10pt; padding-bottom: 6pt; }
 header h1 { font-size: 17pt; margin: 0; }
 header .meta { color: #555; font-size: 9pt; }
 .closed { color: #0a6b2d; font-weight: bold; }
 .open { color: #9a5b00; font-weight: bold; }
 h2 { font-size: 11.5pt; margin: 14pt 0 4pt; border-bottom: 1px solid #bbb; }
 table { width: 100%; border-collapse: collapse; }
 th, td { text-align: left; padding: 2.5pt 4pt; vertical-align: top; }
 th { font-size: 8.5pt; text-transform: uppercase; color: #555; border-bottom: 1px solid #999; }
 td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
 td.detail { color: #555; font-size: 9pt; }
 tr.total td { border-top: 2px solid #1d2430; font-weight: bold; font-size: 12pt; }
 .cols { display: flex; gap: 14pt; } .cols > div { flex: 1; }
 .trend, .waiting { margin-top: 6pt; }
 .up { color: #a11; } .down { color: #0a6b2d; }
 footer { margin-top: 16pt; color: #777; font-size: 8pt; }
</style></head><body>
{% for t in s.teams %}
{% set d = details.get(t.key, empty) %}
<section class="page" data-team="{{ t.key }}">
 <header>
  <h1>LLM chargeback: {{ t.key }}</h1>
  <div class="meta">Period <b data-field="period">{{ s.period }}</b> ({{ s.start.date() }} to {{ s.end.date() }},
   {{ s.timezone }}) &middot; USD &middot;
   {% if s.closed_at %}<span class="closed">closed {{ s.closed_at.isoformat() }}</span>
   {% else %}<span class="open">open: figures may still change</span>{% endif %}
   &middot; {{ t.model }}{% if t.model == "cost-plus" %}, markup {{ plain(t.markup_pct) }} % ({{ t.markup_source }}){% endif %}</div>
 </header>
 <h2>Charges</h2>
 <table class="lines">
  <thead><tr><th>Line</th><th>How</th><th class="num">USD</th></tr></thead>
  <tbody>
  {% for line in t.lines %}
   <tr data-component="{{ line.component }}" data-name="{{ line.name }}">
    <td>{{ line.component.replace("_", " ") }}{% if line.name %} <b>{{ line.name }}</b>{% endif %}</td>
    <td class="detail">{{ line.detail }}</td>
    <td class="num" data-amount="{{ line.amount }}">{{ money(line.amount) }}</td></tr>
  {% endfor %}
   <tr class="total"><td>Total</td><td></td><td class="num" data-total="{{ t.total }}">{{ money(t.total) }}</td></tr>
  </tbody>
 </table>
 <div class="trend" data-field="trend">
 {% if d.previous_total is none %}No charges in {{ s.period.previous() }}.
 {% else %}{{ s.period.previous() }}: <span data-previous="{{ d.previous_total }}">{{ money(d.previous_total) }}</span>
  &rarr; {{ s.period }}: {{ money(t.total) }}
  {% set change = t.total - d.previous_total %}
  (<span class="{{ 'up' if change > 0 else 'down' }}" data-change="{{ change }}">{{ "%+.2f"|format(change) }}
  {%- if d.previous_total %}, {{ "%+.1f"|format(change * 100 / d.previous_total) }} %{% endif %}</span>)
 {% endif %}</div>
 <div class="cols">
  <div><h2>Top models</h2>
   <table><thead><tr><th>Model</th><th class="num">Tokens</th><th class="num">Cost</th></tr></thead><tbody>
   {% for name, cost, tokens, unpriced in d.models %}<tr data-model="{{ name }}"><td>{{ name }}</td>
    <td class="num">{{ "{:,}".format(tokens) }}</td><td class="num" data-cost="{{ cost_text(cost, unpriced) }}">{{ cost_text(cost, unpriced) }}</td></tr>
   {% else %}<tr><td colspan="3">none</td></tr>{% endfor %}</tbody></table></div>
  <div><h2>Top features</h2>
   <table><thead><tr><th>Feature</th><th class="num">Tokens</th><th class="num">Cost</th></tr></thead><tbody>
   {% for name, cost, tokens, unpriced in d.features %}<tr data-feature="{{ name }}"><td>{{ name or "(none)" }}</td>
    <td class="num">{{ "{:,}".format(tokens) }}</td><td class="num" data-cost="{{ cost_text(cost, unpriced) }}">{{ cost_text(cost, unpriced) }}</td></tr>
   {% else %}<tr><td colspan="3">none</td></tr>{% endfor %}</tbody></table></div>
 </div>
 <div class="waiting" data-field="unpriced" data-tokens="{{ t.usage.unpriced_tokens }}"
  data-requests="{{ t.usage.unpriced_requests }}">
 {% if t.usage.unpriced_requests %}<b>Waiting for a price:</b> {{ "{:,}".format(t.usage.unpriced_tokens) }} tokens of
  {{ "{:,}".format(t.usage.unpriced_requests) }} call{{ "s" if t.usage.unpriced_requests != 1 }} are not in the token cost yet (billed once priced).
 {% else %}Every call is priced.{% endif %}</div>
 {% if t.usage.usage_missing_requests %}<div class="waiting" data-field="usage_missing"
  data-requests="{{ t.usage.usage_missing_requests }}"><b>Without usage:</b>
  {{ "{:,}".format(t.usage.usage_missing_requests) }} call{{ "s" if t.usage.usage_missing_requests != 1 }} arrived
  without token counts: their cost is unknown and not charged (the instrumentation must report usage).</div>{% endif %}
 {% if t.usage.reported_cost_requests %}<div class="waiting" data-field="reported_cost"
  data-requests="{{ t.usage.reported_cost_requests }}" data-reported="{{ t.usage.reported_cost }}"
  data-priced="{{ t.usage.priced_cost_of_reported }}" data-disagreements="{{ t.usage.cost_disagreements }}">
  <b>Cost reported by others:</b> {{ plain(t.usage.reported_cost) }} USD for
  {{ "{:,}".format(t.usage.reported_cost_requests) }} call{{ "s" if t.usage.reported_cost_requests != 1 }};
  Costline's price of the same calls {{ plain(t.usage.priced_cost_of_reported) }} USD (charged above);
  {{ "{:,}".format(t.usage.cost_disagreements) }} differ by more than 1 %.</div>{% endif %}
 <footer>{{ "{:,}".format(t.usage.tokens) }} tokens in {{ "{:,}".format(t.usage.requests) }} requests.
  Statement total over all teams: {{ money(s.total) }}. Made by Costline from its ledger; amounts rounded to the
  cent once, totals add up exactly.</footer>
</section>
{% endfor %}
</body></html>
"""

_ENV = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
_PAGE = _ENV.from_string(_TEMPLATE)


def cost_text(cost: Decimal, unpriced: bool) -> str:
    """A top model's or feature's cost: `unpriced` when none of its calls has a price, `+ unpriced` after the priced
    part when only some have (an unpriced call's cost is unknown, not 0.00)."""
    if not unpriced:
        return cents_text(cost)
    return f"{cents_text(cost)} + unpriced" if cost else "unpriced"


def render_html(statement: Statement, details: Mapping[str, TeamDetail]) -> bytes:
    """One page per team of `statement`; `details` by `org/team` (a team without one shows empty tables)."""
    return _PAGE.render(s=statement, details=details, empty=TeamDetail(), plain=decimal_text, money=cents_text,
                        cost_text=cost_text).encode()
