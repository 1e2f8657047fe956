from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
GENERATED = REPO / "dashboards" / "generated"
PROMTOOL_TESTS = Path(__file__).parent / "promtool"


def _binary(*names: str, make_target: str = "prometheus", package: str = "prometheus") -> str:
    # Fail, not skip: `make venv` installs Debian's packages, so a missing binary is a broken setup.
    for name in names:
        path = shutil.which(name)
        if path is not None:
            return path
    pytest.fail(f"`{names[0]}` not found on PATH: run `make {make_target}` (Debian package `{package}`)")


@pytest.fixture(scope="session")
def promtool() -> str:
    return _binary("promtool")


@pytest.fixture(scope="session")
def prometheus_binary() -> str:
    return _binary("prometheus")


@pytest.fixture(scope="session")
def amtool() -> str:
    return _binary("amtool", make_target="alertmanager", package="prometheus-alertmanager")


@pytest.fixture(scope="session")
def alertmanager_binary() -> str:
    # Upstream and the prom/alertmanager image call it `alertmanager`; Debian installs `prometheus-alertmanager`.
    return _binary("alertmanager", "prometheus-alertmanager", make_target="alertmanager",
                   package="prometheus-alertmanager")
