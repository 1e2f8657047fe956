"""`resource_attributes` and a smoke run of `benchmarks/normalize.py` (so the benchmark cannot rot)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from costline.processor.ingest.normalize import normalize_span, resource_attributes

from .spans import any_value, make_span

BENCHMARK = Path(__file__).parents[4] / "benchmarks" / "normalize.py"


def test_resource_attributes_scalars_only() -> None:
    resource = Resource(attributes=[KeyValue(key=k, value=any_value(v)) for k, v in {
        "service.name": "svc", "deployment.environment": "staging", "costline.team": "t", "costline.user": "",
        "costline.org": ["not", "a", "name"], "process.pid": 42, "x.ratio": 0.5, "x.flag": True}.items()])
    attrs = resource_attributes(resource)
    assert attrs["service.name"] == "svc" and attrs["process.pid"] == 42 and attrs["x.flag"] is True
    assert attrs["costline.org"] is None
    call = normalize_span(make_span({"gen_ai.operation.name": "chat", "gen_ai.request.model": "m",
                                     "costline.user": "span-user"}), attrs, "costline.instrumentation")
    assert call is not None
    assert call.owner == {"costline.team": "t", "costline.user": "span-user"}
    assert (call.environment, call.service_name) == ("staging", "svc")


def test_owner_dicts_are_not_shared_between_calls() -> None:
    attrs = resource_attributes(Resource(attributes=[KeyValue(key="costline.team", value=any_value("t"))]))
    span = make_span({"gen_ai.operation.name": "chat", "gen_ai.request.model": "m"})
    first = normalize_span(span, attrs, "costline.instrumentation")
    second = normalize_span(span, attrs, "costline.instrumentation")
    assert first is not None and second is not None
    first.owner["costline.user"] = "u"  # dedupe fills owners in place
    assert second.owner == {"costline.team": "t"}


def test_benchmark_runs() -> None:
    spec = importlib.util.spec_from_file_location("normalize_benchmark", BENCHMARK)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    for workload in bench.WORKLOADS:
        bodies = bench.build_bodies(workload, 1)
        assert bench.decode_walk(bodies) == bench.normalize(bodies) == bench.SPANS_PER_REQUEST
