"""The application side pulls in only OpenTelemetry pieces and wrapt, and registers under its own entry point."""

from __future__ import annotations

from importlib.metadata import distribution, entry_points

from packaging.requirements import Requirement

ALLOWED = {"opentelemetry-api", "opentelemetry-sdk", "opentelemetry-instrumentation", "wrapt"}


def test_runtime_dependencies_are_only_opentelemetry_and_wrapt():
    requirements = [Requirement(r) for r in distribution("costline-instrumentation").requires or []]
    runtime = {r.name for r in requirements if r.marker is None}
    assert runtime == ALLOWED


def test_entry_point_has_our_own_name():
    eps = [ep for ep in entry_points(group="opentelemetry_instrumentor") if ep.dist.name == "costline-instrumentation"]
    assert [(ep.name, ep.value) for ep in eps] == [("costline", "costline.instrumentation:CostlineInstrumentor")]


def test_instruments_any_extra_lets_either_library_satisfy_the_dependency_check():
    from opentelemetry.instrumentation.dependencies import get_dist_dependency_conflicts

    assert get_dist_dependency_conflicts(distribution("costline-instrumentation")) is None


def test_cli_fingerprint(capsys):
    import hashlib

    from costline.cli import main

    assert main(["fingerprint", "sk-live-abc"]) == 0
    assert capsys.readouterr().out.strip() == hashlib.sha256(b"sk-live-abc").hexdigest()[:16]


def test_cli_fingerprint_from_stdin():
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "costline.cli", "fingerprint"], input="sk-live-abc\n", capture_output=True, text=True,
        check=True,
    ).stdout.strip()
    assert out == "35671a7961475734"  # sha256("sk-live-abc")[:16]
