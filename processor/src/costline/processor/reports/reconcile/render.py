"""A reconciliation as a table for people, CSV for spreadsheets, or JSON for programs. USD as exact decimals."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

from costline.processor.formats import csv_text, json_default
from costline.processor.reports.reconcile.compare import OwnerRef, Result, Row, Unpriced
from costline.processor.reports.reconcile.report import TOKEN_TYPES
from costline.processor.units import pico_to_usd

FORMATS = ("table", "csv", "json")


def row_dict(r: Row) -> dict[str, Any]:
    out: dict[str, Any] = {"provider": r.provider, "day": r.day.isoformat(), "model": r.model,
                           "owner_kind": r.owner.kind, "owner": r.owner.name, "org": r.owner.org,
                           "team": r.owner.team, "identity": r.identity}
    for side, tokens in (("provider", r.provider_tokens), ("ledger", r.ledger_tokens)):
        for name, value in zip(TOKEN_TYPES, tokens, strict=True):
            out[f"{side}_{name}_tokens"] = value
    out.update(provider_requests=r.provider_requests, ledger_requests=r.ledger_requests,
               provider_cost_usd=pico_to_usd(r.provider_cost_pico), ledger_cost_usd=pico_to_usd(r.ledger_cost_pico),
               drift_usd=pico_to_usd(r.drift_pico), untracked_usd=pico_to_usd(r.untracked_pico))
    return out


def unpriced_dict(u: Unpriced) -> dict[str, Any]:
    return {"day": u.day.isoformat(), "model": u.model, "identity": u.identity, "requests": u.requests,
            **{f"{name}_tokens": value for name, value in zip(TOKEN_TYPES, u.tokens, strict=True)}}


def unpriced_note(result: Result) -> str:
    """One line saying which models could not be priced (empty when every one could)."""
    models = sorted({u.model for u in result.unpriced})
    if not models:
        return ""
    return (f"unpriced: {len(result.unpriced)} row(s) of {', '.join(repr(m) for m in models)} not in the price "
            "table, not compared and not stored; add the model under `prices:` in the config and run again")


def totals(result: Result) -> dict[str, Any]:
    out = {"provider_cost_usd": pico_to_usd(result.total_pico("provider_cost_pico")),
           "ledger_cost_usd": pico_to_usd(result.total_pico("ledger_cost_pico")),
           "drift_usd": pico_to_usd(result.total_pico("drift_pico")),
           "untracked_usd": pico_to_usd(result.total_pico("untracked_pico")),
           "drift_share": result.drift_share.quantize(Decimal("0.000001"))}
    if result.billed is not None:
        billed = sum((b.billed_usd for b in result.billed), Decimal(0))
        out["billed_usd"] = billed
        out["billed_minus_priced_usd"] = billed - pico_to_usd(sum(b.priced_pico for b in result.billed))
    return out


def render(result: Result, fmt: str) -> str:
    if fmt == "json":
        doc = {"provider": result.provider, "from": result.start.isoformat(),
               "to": (result.end - timedelta(days=1)).isoformat(),  # the last day, included, as --to takes it
               "sources": result.sources, "rows": [row_dict(r) for r in result.rows], "totals": totals(result),
               "unpriced": [unpriced_dict(u) for u in result.unpriced]}
        if result.billed is not None:
            doc["billed"] = [{"day": b.day.isoformat(), "scope_kind": b.scope_kind, "scope_id": b.scope_id,
                              "billed_usd": b.billed_usd, "priced_usd": pico_to_usd(b.priced_pico),
                              "difference_usd": b.billed_usd - pico_to_usd(b.priced_pico)} for b in result.billed]
        return json.dumps(doc, indent=2, default=json_default) + "\n"
    if fmt == "csv":
        rows = [row_dict(r) for r in result.rows]
        columns = list(rows[0]) if rows else list(row_dict(Row(result.provider, result.start, "", OwnerRef("", ""), "")))
        return csv_text(columns, ([row[c] for c in columns] for row in rows))
    return _table(result)


def _table(result: Result) -> str:
    last = result.end - timedelta(days=1)  # `end` is the day after the last; the header shows days as --to takes them
    lines = [f"{result.provider} {result.start}..{last} (UTC days, both included) from "
             f"{', '.join(result.sources)}",
             f"  {'day':<10}  {'owner':<32}  {'model':<26}  {'provider $':>12}  {'ledger $':>12}  {'drift $':>12}  "
             f"{'untracked $':>12}"]
    for r in result.rows:
        owner = f"{r.owner.kind} {r.owner.name}" if r.owner.kind != "untracked" else f"untracked {r.identity}"
        lines.append(f"  {r.day.isoformat():<10}  {owner[:32]:<32}  {r.model[:26]:<26}  "
                     f"{pico_to_usd(r.provider_cost_pico):>12.6f}  {pico_to_usd(r.ledger_cost_pico):>12.6f}  "
                     f"{pico_to_usd(r.drift_pico):>12.6f}  {pico_to_usd(r.untracked_pico):>12.6f}")
    t = totals(result)
    lines.append(f"  {'total':<72}  {t['provider_cost_usd']:>12.6f}  {t['ledger_cost_usd']:>12.6f}  "
                 f"{t['drift_usd']:>12.6f}  {t['untracked_usd']:>12.6f}")
    lines.append(f"  drift share of tracked spend: {t['drift_share'] * 100:.4f}%")
    if result.billed is not None:
        lines.append(f"  cost report: billed ${t['billed_usd']:.6f}, usage priced at Costline's rates differs by "
                     f"${t['billed_minus_priced_usd']:.6f}")
    for u in result.unpriced:
        lines.append(f"  {u.day.isoformat():<10}  {'unpriced ' + u.identity:<32.32}  {u.model[:26]:<26}  "
                     f"{sum(u.tokens):,} tokens, no price: not compared, not stored")
    if result.unpriced:
        lines.append(f"  {unpriced_note(result)}")
    return "\n".join(lines) + "\n"

