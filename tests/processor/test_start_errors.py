"""Mistakes a new user makes in the first hour, as they make them (subprocess, real sockets, real SQLite files):
each is one line naming the problem and a non-zero exit, never a retry loop or a traceback."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

COSTLINE = [sys.executable, "-m", "costline.cli"]
GRPC_CORE_LOG = re.compile(r"^[EWI]\d{4} \d")
"""gRPC's C core logs its own bind failure (`E1206 16:15:46.409 ... Address already in use`) beside ours."""


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    # The timeout is the old behaviour's failure: `serve` retrying a URL that can never work.
    return subprocess.run([*COSTLINE, *args], capture_output=True, text=True, cwd=cwd, timeout=30,
                          env=dict(os.environ))


def serve(tmp_path: Path, *flags: str) -> subprocess.CompletedProcess:
    defaults = {"--db": f"sqlite:///{tmp_path / 'l.db'}", "--config": "", "--otlp-http": "127.0.0.1:0",
                "--otlp-grpc": "off", "--http": "127.0.0.1:0"}
    given = dict(zip(flags[::2], flags[1::2], strict=True))
    return run("serve", *[item for pair in {**defaults, **given}.items() for item in pair], cwd=tmp_path)


def one_line(result: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if not GRPC_CORE_LOG.match(line)]
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize(("url", "says"), [
    ("ledger.db", "is not a database URL; use sqlite:///"),
    ("sqlite://costline.db", "sqlite:///costline.db is costline.db in the working directory"),
    ("mysql://app:secret@localhost/costline", "unsupported database 'mysql'"),
    ("postgresql+psycopg2://app@localhost/costline", "driver 'postgresql+psycopg2' is not available"),
    ("sqlite:///no/such/dir/l.db", "the directory no/such/dir does not exist"),
])
def test_serve_exits_1_naming_a_url_that_names_no_ledger(tmp_path: Path, url: str, says: str) -> None:
    result = serve(tmp_path, "--db", url)
    line = one_line(result)
    assert result.returncode == 1 and line.startswith("costline serve: cannot start: ") and says in line, line
    assert "secret" not in result.stderr


def test_serve_names_a_bad_config_key_without_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text("timezone: UTC\nbugdets: {}\n")
    result = serve(tmp_path, "--config", str(tmp_path / "c.yaml"))
    line = one_line(result)
    assert result.returncode == 1 and f"{tmp_path / 'c.yaml'}: bugdets: unknown key" in line, line


@pytest.mark.parametrize(("flag", "listener"), [("--http", "metrics and the API"), ("--otlp-http", "OTLP/HTTP"),
                                                ("--otlp-grpc", "OTLP/gRPC")])
def test_serve_says_which_listener_cannot_bind(tmp_path: Path, flag: str, listener: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        result = serve(tmp_path, flag, address)
    line = one_line(result)
    assert result.returncode == 1, result.stderr
    assert f"cannot listen on {address} for {listener} ({flag})" in line, line


@pytest.mark.parametrize("command", [["usage"], ["reprice", "--since", "2026-11-01"], ["chargeback"],
                                     ["close-period", "2026-10"],
                                     ["reconcile", "--provider", "openai", "--from", "2026-11-01", "--to",
                                      "2026-11-30", "--file", "usage.json"]])
def test_commands_that_read_the_ledger_refuse_a_missing_file(tmp_path: Path, command: list[str]) -> None:
    (tmp_path / "c.yaml").write_text("timezone: UTC\nchargeback: {}\n")
    result = run(*command, "--config", str(tmp_path / "c.yaml"), "--db", "sqlite:///ledgr.db", cwd=tmp_path)
    line = one_line(result)
    assert result.returncode == 1 and line.startswith(f"costline {command[0]}: no ledger at 'sqlite:///ledgr.db'")
    assert not (tmp_path / "ledgr.db").exists()  # nothing created where the typo points
