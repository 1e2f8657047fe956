"""Real processes for the query tests: a Prometheus with a temporary config and data directory, and `costline
serve`, each on a free loopback port, stopped (by their own pid) when the test is done."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import yaml

from costline.testing.local import free_port, http_get
from tests.polling import poll


def wait_until(check, what: str, process: subprocess.Popen, log: Path, timeout: float = 30.0) -> None:
    """`check` true, while `process` (whose log tells why it is not) runs; a refused connection is "not yet"."""
    poll(check, timeout, lambda: f"{what}:\n{log.read_text(errors='replace')[-4000:]}", interval=0.2,
         ignoring=(OSError,), process=process)


@dataclass
class Processor:
    process: subprocess.Popen
    http_url: str  # /metrics, /readyz, /api/v1/*
    otlp_http_url: str  # OTLP/HTTP traces endpoint
    metrics_address: str


def start_processor(workdir: Path, config_text: str) -> Processor:
    config = workdir / "costline.yaml"
    config.write_text(config_text, "utf-8")
    http_port, otlp_port = free_port(), free_port()
    log = workdir / "processor.log"
    command = [
        sys.executable, "-m", "costline.cli", "serve",
        "--config", str(config),
        "--db", f"sqlite:///{workdir / 'costline.db'}",
        "--otlp-http", f"127.0.0.1:{otlp_port}",
        "--otlp-grpc", "off",
        "--http", f"127.0.0.1:{http_port}",
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT, cwd=workdir)
    http_url = f"http://127.0.0.1:{http_port}"
    wait_until(lambda: http_get(f"{http_url}/readyz") is not None, "costline serve", process, log)
    return Processor(process, http_url, f"http://127.0.0.1:{otlp_port}/v1/traces", f"127.0.0.1:{http_port}")


@dataclass
class Prometheus:
    process: subprocess.Popen
    url: str

    def api(self, path: str, **params: str) -> object:
        query = urllib.parse.urlencode(params)
        try:
            body = http_get(f"{self.url}/api/v1/{path}?{query}", timeout=10)
        except urllib.error.HTTPError as err:  # 400 on a parse error: its body names the problem
            body = err.read()
        payload = json.loads(body)
        if payload["status"] != "success":
            raise AssertionError(f"{path} {params}: {payload.get('errorType')}: {payload.get('error')}")
        return payload["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict]:
        params = {"query": expr} if at is None else {"query": expr, "time": f"{at:.3f}"}
        return self.api("query", **params)["result"]  # type: ignore[index]

    def query_range(self, expr: str, start: float, end: float, step: str = "1s") -> list[dict]:
        data = self.api("query_range", query=expr, start=f"{start:.3f}", end=f"{end:.3f}", step=step)
        return data["result"]  # type: ignore[index]


def start_prometheus(binary: str, workdir: Path, target: str, rule_files: list[Path], interval: str,
                     alertmanager: str | None = None) -> Prometheus:
    config: dict[str, object] = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": [str(p) for p in rule_files],
        "scrape_configs": [{"job_name": "costline", "static_configs": [{"targets": [target]}]}],
    }
    if alertmanager is not None:
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]}
    config_path = workdir / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(config), "utf-8")
    port = free_port()
    log = workdir / "prometheus.log"
    command = [
        binary,
        f"--config.file={config_path}",
        f"--storage.tsdb.path={workdir / 'prometheus-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
    ]
    process = subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT, cwd=workdir)
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: http_get(f"{url}/-/ready") is not None, "prometheus", process, log)
    return Prometheus(process, url)


@dataclass
class Alertmanager:
    process: subprocess.Popen
    address: str  # host:port, as Prometheus' alerting config wants it

    @property
    def url(self) -> str:
        return f"http://{self.address}"


def start_alertmanager(binary: str, workdir: Path, config_text: str) -> Alertmanager:
    config = workdir / "alertmanager.yml"
    config.write_text(config_text, "utf-8")
    port = free_port()
    log = workdir / "alertmanager.log"
    command = [
        binary,
        f"--config.file={config}",
        f"--storage.path={workdir / 'alertmanager-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",  # no gossip port: one instance, and no clash with another test's
        "--log.level=warn",
    ]
    process = subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT, cwd=workdir)
    address = f"127.0.0.1:{port}"
    wait_until(lambda: http_get(f"http://{address}/-/ready") is not None, "alertmanager", process, log)
    return Alertmanager(process, address)
