"""`costline admin export`: the merged state (the YAML baseline with the API's changes) as a config file that
`costline check-config` accepts and a fresh processor resolves the same owners from."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import yaml

from costline.processor.config.core import CostlineConfig


def _plain(value: Any) -> Any:
    """Decimals as YAML numbers where a float reads back to the same value, else as exact text; instants as ISO."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Decimal):
        if value == value.to_integral_value():
            return int(value)
        return float(value) if Decimal(repr(float(value))) == value else str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


HEADER = ("# Written by `costline admin export`: the YAML baseline with every change made through the admin API.\n"
          "# Commit it as the new baseline (GitOps); docs/governance.md says which wins.\n")


def export_yaml(config: CostlineConfig) -> str:
    document = _plain(config.model_dump(mode="python", exclude_none=True, exclude_defaults=True))
    return HEADER + yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
