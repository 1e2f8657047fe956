"""Every recorded span fixture bills each API call of its workload exactly once, with exactly the units the
workload's provider reported (`recorded.py`), in the order exported and in reverse (a parent exported before its
children, or after). Costs are checked by hand per source in `test_<source>.py`."""

from __future__ import annotations

import pytest

from tests.processor.sources.recorded import bill, billed_units, every_fixture, expected_rows, load

FIXTURES = every_fixture()


@pytest.mark.parametrize("path", FIXTURES, ids=[f"{p.parent.name}/{p.stem}" for p in FIXTURES])
@pytest.mark.parametrize("reverse", [False, True], ids=["as-exported", "reversed"])
def test_a_recorded_workload_is_billed_once_per_call(path, reverse, tmp_path, request):
    fixture = load(path)
    if known := fixture.meta.get("known_failure"):  # strict: once it is billed right, the note must go
        request.applymarker(pytest.mark.xfail(reason=known, strict=True))
    order = list(range(len(fixture.requests)))
    billed, ledger = bill(fixture, f"sqlite:///{tmp_path}/ledger.db", order=order[::-1] if reverse else order)
    ledger.close()
    assert billed_units(billed) == expected_rows(fixture)


def test_every_fixture_names_what_recorded_it():
    for path in FIXTURES:
        meta = load(path).meta
        assert meta["source"] == path.parent.name, path
        assert meta["version"] and meta["package"], path
