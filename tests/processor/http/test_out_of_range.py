"""Dates past what a datetime can hold (`to=9999-12-31`, `period=9999-12`) are a 400 naming the parameter on a real
service, and one line on stderr with exit code 2 from the CLI, never a 500 or a traceback."""

from __future__ import annotations

import json
import urllib.error
from pathlib import Path

import pytest

from costline.cli import main
from costline.processor.config.settings import Address, Settings
from costline.processor.service import Service
from tests.processor.served import http_get

CONFIG = Path(__file__).parents[1].joinpath("reports", "chargeback", "issue.yaml").read_text()
"""A config with a `chargeback:` section, so a period gets as far as the statement."""


@pytest.fixture
def service(tmp_path: Path):
    (tmp_path / "costline.yaml").write_text("timezone: Pacific/Kiritimati\n" + CONFIG)
    settings = Settings(config_path=tmp_path / "costline.yaml", db_url=f"sqlite:///{tmp_path / 'l.db'}",
                        otlp_http=None, otlp_grpc=None, http=Address("127.0.0.1", 0))
    service = Service(settings).start()
    yield service
    service.stop(1)


@pytest.mark.parametrize(("query", "name"), [
    ("usage?to=9999-12-31", "to"),
    ("usage?from=9999-12-31", "from"),
    ("usage?to=9998-12-31T23:00:00-05:00", "to"),  # 9999-01-01 in UTC
    ("usage?from=0001-01-01T00:00:00%2B05:00", "from"),  # before year 1 in UTC
    ("chargeback?period=9999-12", "period"),
])
def test_out_of_range_dates_are_a_400_naming_the_parameter(service, query, name):
    with pytest.raises(urllib.error.HTTPError) as err:
        http_get(f"{service.admin.url}/api/v1/{query}")
    assert err.value.code == 400
    assert json.loads(err.value.read())["error"].startswith(f"{name}")


def test_the_last_representable_dates_still_answer(service):
    rows = json.loads(http_get(f"{service.admin.url}/api/v1/usage?from=2026-01-01&to=9998-12-31"))["rows"]
    assert rows == []
    assert http_get(f"{service.admin.url}/api/v1/chargeback?period=9998-12&format=csv")


@pytest.mark.parametrize("args", [
    ["close-period", "9999-12"],
    ["chargeback", "--period", "9999-12"],
    ["usage", "--to", "9999-12-31"],
    ["reprice", "--since", "9999-12-31T23:00:00-01:00"],
])
def test_the_cli_prints_one_line_and_exits_2(tmp_path, capsys, args):
    (tmp_path / "costline.yaml").write_text(CONFIG)
    code = main([*args, "--config", str(tmp_path / "costline.yaml"), "--db", f"sqlite:///{tmp_path / 'l.db'}"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.splitlines()) == 1 and "9999-12" in err, err
    assert "Traceback" not in err
