"""Reading the providers' reports: live against a local server speaking the documented JSON (pagination, empty
buckets, retries, faults), and from files saved from them (JSON pages, CSV)."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest

from costline.processor.reports.reconcile.providers import fetch, read_files
from costline.processor.reports.reconcile.report import ReportError
from tests.processor.reports.reconcile.admin_server import (
    ANTHROPIC_KEY,
    OPENAI_KEY,
    AdminReportServer,
    Served,
    anthropic_usage_buckets,
    openai_usage_buckets,
)

START, END = date(2026, 11, 1), date(2026, 12, 1)
NO_WAIT = {"sleep": lambda _s: None, "attempts": 3}

OPENAI_CALLS = [
    Served(date(2026, 11, 3), "gpt-4o-mini-2024-07-18", "key_A", "proj_1", 900, 100, 0, 50, Decimal("0.000195")),
    Served(date(2026, 11, 3), "gpt-4o-mini-2024-07-18", "key_A", "proj_1", 900, 100, 0, 50, Decimal("0.000195")),
    Served(date(2026, 11, 20), "gpt-4o-2024-08-06", "key_B", "proj_2", 1000, 0, 0, 10, Decimal("0.0026")),
]
ANTHROPIC_CALLS = [
    Served(date(2026, 11, 4), "claude-haiku-4-5", "apikey_01A", "wrkspc_01X", 1450, 1000, 200, 80,
           Decimal("0.0025")),
    Served(date(2026, 11, 29), "claude-haiku-4-5", "apikey_01B", None, 100, 0, 0, 10, Decimal("0.00015")),
]


def test_openai_live_follows_pages_and_keeps_empty_buckets_out():
    with AdminReportServer(OPENAI_CALLS, START, END, provider="openai") as server:
        report = fetch("openai", START, END, OPENAI_KEY, api_base=server.url, **NO_WAIT)
    usage_pages = [q for p, q, _ in server.log if p.endswith("/usage/completions")]
    assert len(usage_pages) == 1  # 30 daily buckets fit the page limit of 31
    query = usage_pages[0]
    assert query["bucket_width"] == ["1d"] and query["group_by"] == ["project_id", "api_key_id", "model"]
    assert query["start_time"] == ["1793491200"] and query["end_time"] == ["1796083200"]
    assert [(r.day, r.model, r.identities, r.uncached_input, r.cache_read, r.output, r.requests)
            for r in report.usage] == [
        (date(2026, 11, 3), "gpt-4o-mini-2024-07-18", (("api_key_id", "key_A"), ("project_id", "proj_1")),
         1800, 200, 100, 2),
        (date(2026, 11, 20), "gpt-4o-2024-08-06", (("api_key_id", "key_B"), ("project_id", "proj_2")),
         1000, 0, 10, 1)]
    assert [(b.day, b.scope_id, b.amount_usd) for b in report.billed] == [
        (date(2026, 11, 3), "proj_1", Decimal("0.00039")), (date(2026, 11, 20), "proj_2", Decimal("0.0026"))]


def test_cost_reports_are_asked_per_project_or_workspace_in_each_providers_spelling():
    asked = {}
    for provider, calls, key, path in (("openai", OPENAI_CALLS, OPENAI_KEY, "/v1/organization/costs"),
                                       ("anthropic", ANTHROPIC_CALLS, ANTHROPIC_KEY, "/v1/organizations/cost_report")):
        with AdminReportServer(calls, START, END, provider=provider) as server:
            fetch(provider, START, END, key, api_base=server.url, **NO_WAIT)
        [asked[provider]] = [q for p, q, _ in server.log if p == path]
    assert asked["openai"] == {"start_time": ["1793491200"], "end_time": ["1796083200"], "bucket_width": ["1d"],
                               "group_by": ["project_id"], "limit": ["31"]}
    assert asked["anthropic"] == {"starting_at": ["2026-11-01T00:00:00Z"], "ending_at": ["2026-12-01T00:00:00Z"],
                                  "bucket_width": ["1d"], "group_by[]": ["workspace_id"], "limit": ["31"]}


def test_pagination_follows_next_page_until_has_more_is_false():
    with AdminReportServer(ANTHROPIC_CALLS, START, END, provider="anthropic") as server:
        from costline.processor.reports.reconcile.providers import anthropic

        anthropic.PAGE_LIMIT, saved = 7, anthropic.PAGE_LIMIT  # 30 buckets -> pages of 7, 7, 7, 7, 2
        try:
            report = fetch("anthropic", START, END, ANTHROPIC_KEY, api_base=server.url, **NO_WAIT)
        finally:
            anthropic.PAGE_LIMIT = saved
    pages = [q for p, q, _ in server.log if p.endswith("/usage_report/messages")]
    assert len(pages) == 5 and "page" not in pages[0] and all("page" in q for q in pages[1:])
    assert pages[0]["group_by[]"] == ["api_key_id", "workspace_id", "model"]
    assert pages[0]["starting_at"] == ["2026-11-01T00:00:00Z"] and pages[0]["ending_at"] == ["2026-12-01T00:00:00Z"]
    headers = server.log[0][2]
    assert headers["anthropic-version"] == "2023-06-01"
    assert [(r.day, r.identities, r.uncached_input, r.cache_read, r.cache_write, r.output, r.requests)
            for r in report.usage] == [
        (date(2026, 11, 4), (("api_key_id", "apikey_01A"), ("workspace_id", "wrkspc_01X")), 1450, 1000, 200, 80,
         None),
        (date(2026, 11, 29), (("api_key_id", "apikey_01B"),), 100, 0, 0, 10, None)]
    # The cost report's amounts are cents as decimal strings ("0.2500" is $0.0025): read exactly, then to USD.
    assert [(b.day, b.scope_id, b.amount_usd) for b in report.billed] == [
        (date(2026, 11, 4), "wrkspc_01X", Decimal("0.0025")), (date(2026, 11, 29), "", Decimal("0.00015"))]


def test_429_then_success_is_retried():
    with AdminReportServer(OPENAI_CALLS, START, END, provider="openai") as server:
        server.fail_first = [429, 502]
        report = fetch("openai", START, END, OPENAI_KEY, api_base=server.url, **NO_WAIT)
    assert len(report.usage) == 2
    assert len([p for p, _, _ in server.log if p.endswith("/usage/completions")]) == 3


def test_5xx_forever_gives_up_with_a_clear_error_and_no_key_in_it():
    with AdminReportServer(OPENAI_CALLS, START, END, provider="openai") as server:
        server.always = 503
        with pytest.raises(ReportError) as err:
            fetch("openai", START, END, OPENAI_KEY, api_base=server.url, **NO_WAIT)
    assert "/v1/organization/usage/completions page 1: gave up after 3 attempts: HTTP 503: overloaded" in str(err.value)
    assert OPENAI_KEY not in str(err.value)


def test_wrong_admin_key_is_a_clear_error_at_once():
    with AdminReportServer(ANTHROPIC_CALLS, START, END, provider="anthropic") as server:
        with pytest.raises(ReportError, match=r"HTTP 401: invalid x-api-key \(is the admin key right\?\)"):
            fetch("anthropic", START, END, "sk-ant-admin01-wrong", api_base=server.url, **NO_WAIT)
    assert len(server.log) == 1


def test_truncated_page_is_an_error_naming_the_page():
    from costline.processor.reports.reconcile.providers import openai

    with AdminReportServer(OPENAI_CALLS, START, END, provider="openai") as server:
        openai.PAGE_LIMIT, saved = 10, openai.PAGE_LIMIT
        server.truncate_page = 2
        try:
            with pytest.raises(ReportError, match=r"usage/completions page 2: not valid JSON .*\(truncated\?\)"):
                fetch("openai", START, END, OPENAI_KEY, api_base=server.url, **NO_WAIT)
        finally:
            openai.PAGE_LIMIT = saved


def test_has_more_without_next_page_is_an_incomplete_report(tmp_path):
    page = {"object": "page", "data": openai_usage_buckets(OPENAI_CALLS, START, END), "has_more": True,
            "next_page": None}
    path = tmp_path / "usage.json"
    path.write_text(json.dumps(page))
    with pytest.raises(ReportError, match="has_more is true: the report continues on a page not saved"):
        read_files("openai", START, END, [path])


# -- files ------------------------------------------------------------------------------------------------------------

def test_saved_json_pages_as_an_array(tmp_path):
    buckets = anthropic_usage_buckets(ANTHROPIC_CALLS, START, END)
    pages = [{"data": buckets[:15], "has_more": True, "next_page": "page_x"},
             {"data": buckets[15:], "has_more": False, "next_page": None}]
    path = tmp_path / "usage.json"
    path.write_text(json.dumps(pages))
    report = read_files("anthropic", START, END, [path])
    assert [r.day for r in report.usage] == [date(2026, 11, 4), date(2026, 11, 29)]
    assert report.billed is None


def test_days_outside_the_period_are_left_out(tmp_path):
    path = tmp_path / "usage.json"
    path.write_text(json.dumps({"object": "page", "data": openai_usage_buckets(OPENAI_CALLS, START, END),
                                "has_more": False, "next_page": None}))
    report = read_files("openai", date(2026, 11, 10), date(2026, 11, 25), [path])
    assert [r.day for r in report.usage] == [date(2026, 11, 20)]


def test_openai_csv_export(tmp_path):
    usage = tmp_path / "usage.csv"
    usage.write_text("start_time,end_time,project_id,api_key_id,model,input_tokens,input_cached_tokens,"
                     "output_tokens,num_model_requests\n"
                     "1793664000,1793750400,proj_1,key_A,gpt-4o-mini-2024-07-18,2000,200,100,2\n"
                     "2026-11-20,2026-11-21,proj_2,,gpt-4o-2024-08-06,1000,,10,1\n")
    costs = tmp_path / "costs.csv"
    costs.write_text("start_time,project_id,line_item,amount_value,amount_currency\n"
                     "2026-11-03,proj_1,,0.000390000000000001,usd\n")
    report = read_files("openai", START, END, [usage, costs])
    assert [(r.day, r.identities, r.uncached_input, r.cache_read) for r in report.usage] == [
        (date(2026, 11, 3), (("api_key_id", "key_A"), ("project_id", "proj_1")), 1800, 200),
        (date(2026, 11, 20), (("project_id", "proj_2"),), 1000, 0)]
    assert report.billed[0].amount_usd == Decimal("0.000390000000000001")  # exact, no float on the way


def test_anthropic_csv_export(tmp_path):
    usage = tmp_path / "usage.csv"
    usage.write_text("starting_at,api_key_id,workspace_id,model,uncached_input_tokens,cache_read_input_tokens,"
                     "cache_creation_5m_input_tokens,cache_creation_1h_input_tokens,output_tokens\n"
                     "2026-11-04T00:00:00Z,apikey_01A,wrkspc_01X,claude-haiku-4-5,1450,1000,150,50,80\n")
    report = read_files("anthropic", START, END, [usage])
    row = report.usage[0]
    assert (row.uncached_input, row.cache_read, row.cache_write, row.output) == (1450, 1000, 200, 80)


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda r: r.pop("output_tokens"), r"data\[3\]\.results\[0\]\.output_tokens: required field is missing"),
    (lambda r: r.update(input_tokens="2000"), r"data\[3\]\.results\[0\]\.input_tokens: must be an integer, got a "
                                              r"string '2000'"),
    (lambda r: r.update(input_tokens=2000.5), r"input_tokens: must be an integer, got a number"),
    (lambda r: r.update(model=None), r"data\[3\]\.results\[0\]\.model: is null; fetch the report grouped by model"),
    (lambda r: r.update(input_cached_tokens=5000), r"input_cached_tokens \(5000\) exceeds input_tokens"),
    (lambda r: r.update(object="organization.costs.result", amount={"value": 1, "currency": "eur"}),
     r"amount\.currency: only USD is reconciled, got 'eur'"),
])
def test_bad_openai_result_is_an_error_naming_the_field(tmp_path, mutate, message):
    buckets = openai_usage_buckets(OPENAI_CALLS, START, END)
    mutate(buckets[2]["results"][0])
    buckets.insert(3, buckets.pop(2))  # the bad bucket at data[3]; order does not matter to the reader
    path = tmp_path / "usage.json"
    path.write_text(json.dumps({"object": "page", "data": buckets, "has_more": False, "next_page": None}))
    with pytest.raises(ReportError, match=message):
        read_files("openai", START, END, [path])


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda r: r.pop("cache_creation"), r"cache_creation: required field is missing"),
    (lambda r: r["cache_creation"].update(ephemeral_1h_input_tokens=None), r"ephemeral_1h_input_tokens: must be "
                                                                           r"an integer, got null"),
    (lambda r: r.update(output_tokens=-1), r"output_tokens: must not be negative"),
])
def test_bad_anthropic_result_is_an_error_naming_the_field(tmp_path, mutate, message):
    buckets = anthropic_usage_buckets(ANTHROPIC_CALLS, START, END)
    mutate(buckets[3]["results"][0])
    path = tmp_path / "usage.json"
    path.write_text(json.dumps({"data": buckets, "has_more": False, "next_page": None}))
    with pytest.raises(ReportError, match=message):
        read_files("anthropic", START, END, [path])


def test_anthropic_cost_amount_must_be_a_decimal_string(tmp_path):
    path = tmp_path / "cost.json"
    usage = tmp_path / "usage.json"
    usage.write_text(json.dumps({"data": anthropic_usage_buckets(ANTHROPIC_CALLS, START, END), "has_more": False,
                                 "next_page": None}))
    path.write_text(json.dumps({"data": [{"starting_at": "2026-11-04T00:00:00Z", "ending_at": "2026-11-05T00:00:00Z",
                                          "results": [{"amount": 1.5, "currency": "USD"}]}],
                                "has_more": False, "next_page": None}))
    with pytest.raises(ReportError, match=r"results\[0\]\.amount: must be a decimal string"):
        read_files("anthropic", START, END, [usage, path])


def test_csv_with_a_missing_column_or_a_short_line(tmp_path):
    path = tmp_path / "usage.csv"
    path.write_text("start_time,model,input_tokens,output_tokens\n2026-11-03,gpt-4o,1,1\n")
    with pytest.raises(ReportError, match="missing column\\(s\\) num_model_requests"):
        read_files("openai", START, END, [path])
    path.write_text("start_time,model,input_tokens,output_tokens,num_model_requests\n2026-11-03,gpt-4o,1\n")
    with pytest.raises(ReportError, match="usage.csv line 2: too few cells for the header \\(truncated\\?\\)"):
        read_files("openai", START, END, [path])


def test_bucket_not_at_midnight_means_wrong_bucket_width(tmp_path):
    buckets = openai_usage_buckets(OPENAI_CALLS, START, END)
    buckets[2]["start_time"] += 3600
    path = tmp_path / "usage.json"
    path.write_text(json.dumps({"object": "page", "data": buckets, "has_more": False, "next_page": None}))
    with pytest.raises(ReportError, match=r"data\[2\]\.start_time: \d+ is not a UTC midnight; fetch with "
                                          r"bucket_width=1d"):
        read_files("openai", START, END, [path])
