"""`costline serve` as a real subprocess on free ports, for the edge and fault suites; the issue's config."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from costline.testing.local import free_port, http_get
from tests.polling import poll

CONFIG = """\
timezone: UTC
orgs:
  - name: acme
    budget: {monthly_usd: 3000}
    teams:
      - name: engineering
        budget: {monthly_usd: 2000}
        users:
          - name: alice
            budget: {monthly_usd: 100}
            keys:
              - {name: alice-laptop, fingerprint: b3180bc5c5db03d7, budget: {monthly_usd: 50, daily_usd: 5}}
      - name: marketing
        budget: {monthly_usd: 500}
projects:
  - {name: campaigns, budget: {monthly_usd: 200}}
prices:
  - {provider: openai, model: gpt-4o, input_per_mtok: 2.00, cache_read_per_mtok: 1.00, output_per_mtok: 8.00}
"""
"""The example config of the processor's docs, verbatim: gpt-4o at a negotiated $2/$8 per MTok makes expected costs exact."""


@dataclass
class Served:
    process: subprocess.Popen
    otlp_url: str
    api_url: str
    log: Path
    grpc_address: str | None = None

    def usage(self, group_by: str = "team") -> list[dict]:
        return json.loads(http_get(f"{self.api_url}/api/v1/usage?group_by={group_by}&format=json"))["rows"]

    def budgets(self) -> dict:
        return json.loads(http_get(f"{self.api_url}/api/v1/budgets"))

    def metrics(self) -> str:
        return http_get(f"{self.api_url}/metrics").decode()


def serve(workdir: Path, db_url: str, *, extra_env: dict[str, str] | None = None, grpc: bool = False) -> Served:
    """Start `costline serve` on free ports and wait until /readyz says the ledger is open. The config is
    `workdir/costline.yaml` when the test wrote one, else `CONFIG`. OTLP/gRPC only when `grpc` is asked for."""
    config = workdir / "costline.yaml"
    if not config.exists():
        config.write_text(CONFIG)
    otlp_port, http_port = free_port(), free_port()
    grpc_address = f"127.0.0.1:{free_port()}" if grpc else None
    log = workdir / f"serve-{otlp_port}.log"
    env = {**os.environ, "COSTLINE_OTLP_GRPC": grpc_address or "off", **(extra_env or {})}
    process = subprocess.Popen(
        [sys.executable, "-m", "costline.cli", "serve", "--config", str(config), "--db", db_url,
         "--otlp-http", f"127.0.0.1:{otlp_port}", "--http", f"127.0.0.1:{http_port}"],
        stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=workdir, env=env,
    )
    api = f"http://127.0.0.1:{http_port}"
    try:
        poll(lambda: http_get(f"{api}/readyz", timeout=1) is not None, 30,
             lambda: f"costline serve not ready:\n{log.read_text()}", interval=0.1, ignoring=(OSError,),
             process=process)
    except AssertionError:
        process.kill()
        raise
    return Served(process, f"http://127.0.0.1:{otlp_port}/v1/traces", api, log, grpc_address)


def stop(served: Served, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
    if served.process.poll() is None:
        served.process.send_signal(sig)
    return served.process.wait(timeout)


@pytest.fixture
def serving(tmp_path: Path) -> Iterator[list[Served]]:
    """A list the test appends its `serve(...)` processes to; every one still running is killed at the end."""
    started: list[Served] = []
    yield started
    for served in started:
        if served.process.poll() is None:
            served.process.kill()
            served.process.wait(10)
