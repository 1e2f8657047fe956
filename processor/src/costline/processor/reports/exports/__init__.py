"""Daily exports a warehouse loads without glue (`costline export`, `costline serve --export-dir`).

Two datasets, each Parquet, hive-partitioned by the day in the config's time zone (`<dir>/<dataset>/date=YYYY-MM-DD/
part-0.parquet`): `usage`, the ledger's hourly rows as stored (`tables.USAGE_SCHEMA`), and `focus`, the FOCUS 1.2
usage charges of the day (`reports/chargeback/focus.py`'s rows). Money is Parquet DECIMAL(38, 12): the ledger's exact
pico-dollars, never a float. A day is written whole to a hidden file beside its partition, then renamed over it:
a reader sees the previous export of the day or the new one, never a part (docs/exports.md).
"""

from costline.processor.reports.exports.daily import (
    DATASETS,
    ExportError,
    ExportResult,
    day_bounds,
    export_day,
    export_days,
    stale_days,
)

__all__ = ["DATASETS", "ExportError", "ExportResult", "day_bounds", "export_day", "export_days", "stale_days"]
