"""Configs that used to be accepted silently or crash: duplicate keys, bytes that are not UTF-8, money that is not a
finite, bounded number. Each through `costline check-config` (a subprocess, as an operator runs it) and through the
running server's `POST /api/v1/reload` (400 naming the problem, the running config kept)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.processor.served import CONFIG, Served, serve

DUPLICATE_BUDGET = """\
orgs:
  - name: acme
    budget: {monthly_usd: 3000}
    teams:
      - name: search
    budget: {monthly_usd: 10}
"""
DUPLICATE_TOP_LEVEL = "timezone: UTC\norgs: []\ntimezone: Europe/Paris\n"
NOT_UTF8 = "timezone: UTC\norgs:\n  - name: acme\n    teams:\n      - name: café\n".encode("latin-1")
HUGE_BUDGET = "orgs:\n  - name: acme\n    budget: {monthly_usd: 1e400}\n"
HUGE_DAILY = "projects:\n  - {name: p, budget: {daily_usd: '99999999999999999999'}}\n"
HUGE_PRICE = ("prices:\n  - {provider: openai, model: gpt-4o, input_per_mtok: 2, output_per_mtok: 8,"
              " cache_read_per_mtok: 1e400}\n")

CASES: list[tuple[str, bytes, tuple[str, ...]]] = [
    # name, file content, what the one error line must say
    ("duplicate-budget", DUPLICATE_BUDGET.encode(), ("duplicate key 'budget'", "line 6", "line 3")),
    ("duplicate-top-level", DUPLICATE_TOP_LEVEL.encode(), ("duplicate key 'timezone'", "line 3", "line 1")),
    ("not-utf8", NOT_UTF8, ("not UTF-8", "line 5", "0xe9")),
    ("huge-budget", HUGE_BUDGET.encode(), ("orgs[0].budget.monthly_usd", "less than or equal to 1000000000000")),
    ("huge-daily", HUGE_DAILY.encode(), ("projects[0].budget.daily_usd", "less than or equal to 1000000000000")),
    ("huge-price", HUGE_PRICE.encode(), ("prices[0].cache_read_per_mtok", "less than or equal to 100000")),
]


def check_config(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "costline.cli", "check-config", str(path)], capture_output=True,
                          text=True, timeout=60, env=dict(os.environ))


@pytest.mark.parametrize(("name", "content", "expected"), CASES, ids=[c[0] for c in CASES])
def test_check_config_names_the_problem(tmp_path: Path, name: str, content: bytes, expected: tuple[str, ...]) -> None:
    path = tmp_path / f"{name}.yaml"
    path.write_bytes(content)
    done = check_config(path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].count(str(path)) == 1, lines[0]  # named once, not "FILE: FILE: ..."
    for fragment in expected:
        assert fragment in lines[0], (fragment, lines[0])


def _reload(served: Served) -> tuple[int, dict]:
    request = urllib.request.Request(f"{served.api_url}/api/v1/reload", b"", method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _strict_json(body: bytes) -> object:
    def refuse(constant: str) -> object:
        raise AssertionError(f"{constant} is not JSON")

    return json.loads(body, parse_constant=refuse)


def test_reload_refuses_each_with_400_and_keeps_the_running_config(tmp_path: Path, serving: list[Served]) -> None:
    served = serve(tmp_path, f"sqlite:///{tmp_path / 'ledger.db'}")
    serving.append(served)
    config = tmp_path / "costline.yaml"
    assert config.read_text() == CONFIG
    before = _strict_json(urllib.request.urlopen(f"{served.api_url}/api/v1/budgets", timeout=10).read())  # noqa: S310
    for name, content, expected in CASES:
        config.write_bytes(content)
        code, body = _reload(served)
        assert code == 400, (name, code, body)
        for fragment in expected:
            assert fragment in body["error"], (name, fragment, body)
        # Still the old budgets, and still JSON (no Infinity).
        after = _strict_json(urllib.request.urlopen(f"{served.api_url}/api/v1/budgets", timeout=10).read())  # noqa: S310
        assert after == before, name
    config.write_text(CONFIG)
    assert _reload(served)[0] == 200
