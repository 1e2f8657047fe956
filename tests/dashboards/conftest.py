from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
GENERATED = REPO / "dashboards" / "generated"
PROMTOOL_TESTS = Path(__file__).parent / "promtool"


def _binary(name: str) -> str:
    # Fail, not skip: `make venv` installs Debian's prometheus package, so a missing binary is a broken setup.
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"`{name}` not found on PATH: run `make prometheus` (Debian package `prometheus`)")
    return path


@pytest.fixture(scope="session")
def promtool() -> str:
    return _binary("promtool")


@pytest.fixture(scope="session")
def prometheus_binary() -> str:
    return _binary("prometheus")
