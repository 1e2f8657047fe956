"""A month as a FOCUS 1.2 cost and usage dataset (FinOps Open Cost and Usage Specification), for FinOps platforms.

Two kinds of row, both CSV in one file:

* **usage**: one per day × provider × model × service tier × processing × owner, from the ledger: the provider's
  cost (billed = effective = contracted = list: the ledger keeps the one price each call was billed at, list or
  negotiated), tokens as the quantity, the owner dimensions in `Tags` (JSON), the org as billing account and
  `org/team` as sub-account; every billable unit in an `x_` column of its own (FOCUS has one consumed quantity per
  row: the tokens; the parts of them by modality and lifetime, and the tool calls billed per call, are custom
  columns), with the calls without usage and the cost others reported beside Costline's;
* **chargeback**: one per line of the statement (`ChargeCategory` `Adjustment`, provider cost columns 0 so that
  provider totals stay the provider's), its billed amount in `x_ChargebackAmount`; a correction of a closed
  month has `ChargeClass` `Correction`.

The column mapping is documented in docs/chargeback.md ("FOCUS export"); the suite checks the output with the
FinOps Foundation's `focus-validator`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from costline.processor.formats import csv_cell, csv_text, decimal_text
from costline.processor.model import BILLABLE_UNITS, OWNER_FIELDS
from costline.processor.ownership import UNATTRIBUTED
from costline.processor.reports.chargeback.statement import TOKEN_COLUMNS, UNPRICED_TOKEN_COLUMNS, Statement

USAGE_GROUPS = ("day", "provider", "model", "service_tier", "processing", *OWNER_FIELDS)
"""How the ledger is read for the usage rows."""
ISSUER = "Costline"
"""Provider, publisher and invoice issuer of the chargeback rows: the platform charging the teams."""
TOKENS = "Tokens"
ZERO = Decimal(0)

_UNIT_COLUMNS = tuple(("x_" + "".join(w[:1].upper() + w[1:] for w in unit.attribute.split("_")), unit)
                      for unit in BILLABLE_UNITS[5:])
"""(column, unit) of the units beyond the five token types, named after the call's field: `x_CacheWrite1hTokens`,
`x_InputAudioTokens`, ..., `x_WebSearches`, `x_CodeExecutions`."""

COLUMNS = (
    "BillingAccountId", "BillingAccountName", "SubAccountId", "SubAccountName", "BillingCurrency",
    "BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd",
    "ChargeCategory", "ChargeClass", "ChargeFrequency", "ChargeDescription", "InvoiceId", "CommitmentDiscountStatus",
    "ListCost", "ContractedCost", "BilledCost", "EffectiveCost",
    "PricingQuantity", "PricingUnit", "ConsumedQuantity", "ConsumedUnit",
    "ProviderName", "PublisherName", "InvoiceIssuerName", "ServiceName", "ServiceCategory", "ServiceSubcategory",
    "Tags",
    "x_Model", "x_Requests", "x_InputTokens", "x_OutputTokens", "x_CacheReadTokens", "x_CacheWriteTokens",
    "x_UnpricedRequests", "x_UnpricedTokens",
    "x_ServiceTier", "x_Processing", *(column for column, _ in _UNIT_COLUMNS),
    "x_UsageMissingRequests", "x_ReportedCostRequests", "x_ReportedCost", "x_CostDisagreements",
    "x_ChargebackTeam", "x_ChargebackModel", "x_ChargebackMarkupPct", "x_ChargebackComponent", "x_ChargebackLine",
    "x_ChargebackAmount", "x_ChargebackExact",
)


def _instant(moment: datetime) -> str:
    """FOCUS date-times: ISO 8601 in UTC with a `Z`."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def focus_rows(statement: Statement, usage: Iterable[Mapping[str, Any]], *, untagged: bool = True
               ) -> list[dict[str, Any]]:
    """The dataset's rows: `usage` is the ledger grouped by `USAGE_GROUPS` over the statement's month (in its
    zone). Usage of teams the statement does not list (when it is one team's) is left out, and so is the untagged
    usage unless `untagged` (it is everyone's: spread over the teams)."""
    tz = ZoneInfo(statement.timezone)
    period = {"BillingCurrency": "USD", "BillingPeriodStart": _instant(statement.start),
              "BillingPeriodEnd": _instant(statement.end)}
    teams = {t.key: t for t in statement.teams}
    # Every row is a charge of the month's statement: an issued invoice once the month is closed, a provisional
    # one before (FOCUS asks for the id in both cases).
    invoice = f"chargeback-{statement.period}"
    out: list[dict[str, Any]] = []
    for row in sorted(usage, key=lambda r: tuple(str(r[g]) for g in USAGE_GROUPS)):
        key = f"{row['org']}/{row['team']}"
        team = teams.get(key)
        if team is None and not (row["team"] == UNATTRIBUTED and untagged):
            continue
        day = datetime.strptime(row["day"], "%Y-%m-%d").replace(tzinfo=tz)
        tokens = sum(int(row[c]) for c in TOKEN_COLUMNS)
        cost = Decimal(row["cost_usd"])
        out.append({
            **_account(row["org"], row["team"]), **period,
            "ChargePeriodStart": _instant(day), "ChargePeriodEnd": _instant(day + timedelta(days=1)),
            "ChargeCategory": "Usage", "ChargeClass": None, "ChargeFrequency": "Usage-Based",
            "ChargeDescription": f"{row['model']} tokens from {row['provider']}", "InvoiceId": invoice,
            "ListCost": cost, "ContractedCost": cost, "BilledCost": cost, "EffectiveCost": cost,
            "PricingQuantity": Decimal(tokens), "PricingUnit": TOKENS, "ConsumedQuantity": Decimal(tokens),
            "ConsumedUnit": TOKENS,
            "ProviderName": row["provider"], "PublisherName": row["provider"], "InvoiceIssuerName": row["provider"],
            "ServiceName": row["provider"], "ServiceCategory": "AI and Machine Learning",
            "ServiceSubcategory": "Generative AI",
            "Tags": json.dumps({c: row[c] for c in OWNER_FIELDS if row[c]}, sort_keys=True, separators=(",", ":")),
            "x_Model": row["model"], "x_Requests": row["requests"], "x_InputTokens": row["input_tokens"],
            "x_OutputTokens": row["output_tokens"], "x_CacheReadTokens": row["cache_read_tokens"],
            "x_CacheWriteTokens": row["cache_write_tokens"], "x_UnpricedRequests": row["unpriced_requests"],
            "x_UnpricedTokens": sum(int(row[c]) for c in UNPRICED_TOKEN_COLUMNS),
            "x_ServiceTier": row["service_tier"] or None, "x_Processing": row["processing"] or None,
            **{column: row[unit.slot.column] for column, unit in _UNIT_COLUMNS},
            "x_UsageMissingRequests": row["usage_missing_requests"],
            "x_ReportedCostRequests": row["reported_cost_requests"],
            "x_ReportedCost": Decimal(row["reported_cost_usd"]), "x_CostDisagreements": row["cost_disagreements"],
            "x_ChargebackTeam": team.key if team else UNATTRIBUTED,
            "x_ChargebackModel": team.model if team else None,
            "x_ChargebackMarkupPct": team.markup_pct if team else None,
        })
    for team in statement.teams:
        for line in team.lines:
            out.append({
                **_account(team.org, team.team), **period,
                "ChargePeriodStart": _instant(statement.start), "ChargePeriodEnd": _instant(statement.end),
                "ChargeCategory": "Adjustment",
                "ChargeClass": "Correction" if line.component == "correction" else None,
                "ChargeFrequency": "Usage-Based" if line.component in ("token_cost", "markup", "value_based",
                                                                       "untracked", "correction") else "Recurring",
                "ChargeDescription": f"chargeback {line.component.replace('_', ' ')}"
                                     + (f" {line.name}" if line.name else "") + f": {line.detail}",
                "InvoiceId": invoice,
                "ListCost": ZERO, "ContractedCost": ZERO, "BilledCost": ZERO, "EffectiveCost": ZERO,
                "ProviderName": ISSUER, "PublisherName": ISSUER, "InvoiceIssuerName": ISSUER,
                "ServiceName": "LLM chargeback", "ServiceCategory": "AI and Machine Learning",
                "ServiceSubcategory": "Generative AI",
                "Tags": json.dumps({"org": team.org, "team": team.team}, sort_keys=True, separators=(",", ":")),
                "x_ChargebackTeam": team.key, "x_ChargebackModel": team.model,
                "x_ChargebackMarkupPct": team.markup_pct, "x_ChargebackComponent": line.component,
                "x_ChargebackLine": line.name or None, "x_ChargebackAmount": line.amount,
                "x_ChargebackExact": line.exact,
            })
    return out


def _account(org: str, team: str) -> dict[str, str]:
    return {"BillingAccountId": org, "BillingAccountName": org, "SubAccountId": f"{org}/{team}",
            "SubAccountName": team}


def render_focus(statement: Statement, usage: Iterable[Mapping[str, Any]], *, untagged: bool = True) -> bytes:
    """The dataset as CSV: numbers as plain decimals (never an exponent), text through the project's CSV rule."""
    rows = focus_rows(statement, usage, untagged=untagged)
    return csv_text(COLUMNS, ([row.get(c) for c in COLUMNS] for row in rows), _cell).encode()


def _cell(value: Any) -> str:
    if isinstance(value, Decimal):
        # FOCUS's Decimal type: a column reads as decimal only if its values look like it, so always a point.
        text = decimal_text(value) if value else "0"
        return text if "." in text else text + ".0"
    return csv_cell(value)
