"""The README's five-minute tour, run as written: its shell blocks are read from README.md and run in an activated
`.venv` (`costline` and `opentelemetry-instrument` found on PATH), against a fake provider. Only the listen
addresses are changed, to free ports, so the test cannot collide with anything on the machine."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from costline.testing.fake_provider import FakeProviderServer
from costline.testing.local import free_port, stop_process
from tests.polling import poll

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
README = (ROOT / "README.md").read_text("utf-8")
TOUR = README[README.index("## A five-minute tour"):README.index("**5. Point Prometheus")]
APP = """\
import openai
from opentelemetry import metrics

# Any metric the app (or another instrumentation) records makes the distribution export metrics at exit.
metrics.get_meter("tour-app").create_counter("tour.requests").add(1)
openai.OpenAI().chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
print("app done")
"""


def _blocks() -> list[list[str]]:
    """Each `sh` block of the tour as commands: continuation lines joined, comments dropped."""
    blocks = []
    for body in re.findall(r"```sh\n(.*?)```", TOUR, re.DOTALL):
        joined = body.replace("\\\n", " ")
        blocks.append([re.split(r"\s#\s", line)[0].strip() for line in joined.splitlines() if line.strip()])
    return blocks


def _step(word: str) -> list[str]:
    return next(block for block in _blocks() if any(word in command for command in block))


@pytest.fixture(scope="module")
def tour(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tour")
    (tmp / "demo").symlink_to(ROOT / "demo")  # the tour's relative paths, from a scratch working directory
    (tmp / "app.py").write_text(APP)
    ports = {"4317": free_port(), "4318": free_port(), "9464": free_port()}
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    env.pop("VIRTUAL_ENV", None)

    def localised(command: str) -> str:
        for default, port in ports.items():
            command = command.replace(f"localhost:{default}", f"localhost:{port}")
        return command

    check, serve = _step("costline serve")
    checked = subprocess.run(shlex.split(check), cwd=tmp, env=env, capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0 and "ok" in checked.stdout, checked.stdout + checked.stderr
    listen = ["--otlp-grpc", f"127.0.0.1:{ports['4317']}", "--otlp-http", f"127.0.0.1:{ports['4318']}",
              "--http", f"127.0.0.1:{ports['9464']}"]
    processor = subprocess.Popen(shlex.split(serve) + listen, cwd=tmp, env=env, stdout=subprocess.DEVNULL,
                                 stderr=open(tmp / "serve.log", "w"))  # noqa: SIM115
    try:
        ready = ["curl", "-sf", f"localhost:{ports['9464']}/readyz"]
        poll(lambda: subprocess.run(ready, capture_output=True).returncode == 0, 60, (tmp / "serve.log").read_text,
             interval=0.2, process=processor)
        with FakeProviderServer() as provider:
            app_env = {**env, "OPENAI_API_KEY": "sk-tour-key", "OPENAI_BASE_URL": provider.openai_base_url,
                       "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "openai,openai_v2,anthropic"}
            (instrumented,) = _step("opentelemetry-instrument")
            app = subprocess.run(localised(instrumented), shell=True, cwd=tmp, env=app_env, capture_output=True,
                                 text=True, timeout=120)
        yield tmp, env, localised, app
    finally:
        stop_process(processor)


def test_the_instrumented_app_runs_without_export_errors(tour):
    _, _, _, app = tour
    assert app.returncode == 0 and "app done" in app.stdout, app.stderr
    assert "Failed to export" not in app.stderr, app.stderr


def test_the_look_commands_answer(tour):
    tmp, env, localised, _ = tour
    metrics, budgets, usage = _step("api/v1/budgets")

    def run_usage() -> subprocess.CompletedProcess:
        out = subprocess.run(shlex.split(usage), cwd=tmp, env=env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return out

    # The app's span reaches the ledger a moment after the app exits.
    poll(lambda: "gpt-4o-mini" in run_usage().stdout, 30, lambda: run_usage().stdout, interval=0.3)
    out = run_usage()
    assert "search" in out.stdout and "gpt-4o-mini" in out.stdout, out.stdout
    scraped = subprocess.run(localised(metrics), shell=True, cwd=tmp, env=env, capture_output=True, text=True)
    assert scraped.stdout.startswith("costline_cost_usd_total{"), scraped.stdout
    answered = subprocess.run(localised(budgets) + " -w '\\n%{http_code}'", shell=True, cwd=tmp, env=env,
                              capture_output=True, text=True)
    body, status = answered.stdout.rsplit("\n", 1)
    assert status == "200", answered.stdout
    assert json.loads(body)
