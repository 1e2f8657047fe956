"""The customer dimension (`costline.owner(customer=...)`): from the span to the ledger, `costline usage --group-by
customer` (CSV and JSON), and an optional metric label, off by default."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from prometheus_client import CollectorRegistry

from costline.cli import main
from costline.processor.config.core import parse_config
from costline.processor.ingest.pipeline import Pipeline
from costline.processor.ledger import Ledger
from costline.processor.service import assemble_pipeline
from tests.processor.conftest import make_call

NOW = datetime(2026, 11, 20, 15, tzinfo=timezone.utc)


def ingest(db_url: str, config: dict, first: int = 1) -> Pipeline:
    pipeline = assemble_pipeline(parse_config(config), Ledger(db_url), clock=lambda: NOW)
    pipeline.ingest_calls([make_call(first, model="gpt-4o", input_tokens=1_000_000, output=0, customer="initech"),
                           make_call(first + 1, model="gpt-4o", input_tokens=2_000_000, output=0, customer="globex"),
                           make_call(first + 2, model="gpt-4o", input_tokens=4_000_000, output=0)])
    return pipeline


def labelled(pipeline: Pipeline) -> list[dict[str, str]]:
    registry = CollectorRegistry()
    registry.register(pipeline.collector)
    return [s.labels for m in registry.collect() if m.name == "costline_cost_usd" for s in m.samples]


def test_usage_grouped_by_customer_in_csv_and_json(db_url, capsysbinary):
    ingest(db_url, {}).close()
    assert main(["usage", "--db", db_url, "--group-by", "customer", "--format", "csv"]) == 0
    lines = capsysbinary.readouterr().out.decode().splitlines()
    assert lines[0].startswith("customer,requests,")
    cost = {line.split(",")[0]: line.split(",")[-1] for line in lines[1:]}
    assert cost == {"": "10.000000000000", "globex": "5.000000000000", "initech": "2.500000000000"}

    assert main(["usage", "--db", db_url, "--group-by", "team,customer", "--format", "json"]) == 0
    rows = json.loads(capsysbinary.readouterr().out)["rows"]
    assert [(r["customer"], r["cost_usd"]) for r in rows] == [
        ("", "10.000000000000"), ("globex", "5.000000000000"), ("initech", "2.500000000000")]


def test_the_customer_label_is_off_by_default_and_on_when_asked(db_url):
    pipeline = ingest(db_url, {})
    assert all("customer" not in labels for labels in labelled(pipeline))
    pipeline.close()

    pipeline = ingest(db_url, {"metrics": {"customer_label": True}}, first=10)
    assert sorted(labels["customer"] for labels in labelled(pipeline)) == ["", "globex", "initech"]
    pipeline.close()


def test_every_owner_dimension_reaches_the_ledger_group_by_labels_and_forwarding():
    # One owner schema: a dimension added to `model.OWNER_DIMENSIONS` shows up everywhere without a second list.
    from costline.processor.config.core import METRIC_LABELS, MetricsConfig
    from costline.processor.ledger.schema import usage_hourly
    from costline.processor.model import GROUP_BY, OPTIONAL_OWNER_LABELS, OWNER_DIMENSIONS, OWNER_FIELDS, Owner

    names = tuple(d.name for d in OWNER_DIMENSIONS)
    assert Owner._fields == OWNER_FIELDS == names
    assert set(names) <= set(usage_hourly.c.keys())  # the ledger's owner columns
    assert set(names) <= set(GROUP_BY) and set(names) <= set(METRIC_LABELS)
    defaults = MetricsConfig()
    assert {name: getattr(defaults, f"{name}_label") for name in OPTIONAL_OWNER_LABELS} == OPTIONAL_OWNER_LABELS
    assert OPTIONAL_OWNER_LABELS["customer"] is False  # off by default, like user
