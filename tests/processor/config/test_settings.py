"""Flags, then COSTLINE_* variables, then defaults; the default config file is optional."""

from __future__ import annotations

import pytest

from costline.processor.config.settings import Address, SettingsError, parse_address, resolve

NONE = {"config": None, "db": None, "otlp_http": None, "otlp_grpc": None, "http": None, "token_file": None,
        "max_body_bytes": None, "forward_otlp": None, "forward_queue_spans": None}


def test_defaults_without_config(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = resolve(NONE, env={})
    assert settings.config_path is None  # runs with no config at all
    assert settings.db_url == "sqlite:///costline.db"
    assert (settings.otlp_http, settings.otlp_grpc, settings.http) == (
        Address("127.0.0.1", 4318), Address("127.0.0.1", 4317), Address("127.0.0.1", 9464))
    assert settings.token is None and settings.forward_otlp is None
    (tmp_path / "costline.yaml").write_text("timezone: UTC\n")
    assert str(resolve(NONE, env={}).config_path) == "costline.yaml"


def test_environment_then_flags(tmp_path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("{}")
    token_file = tmp_path / "token"
    token_file.write_text("from-file\n")
    env = {"COSTLINE_CONFIG": str(config), "COSTLINE_DB": "postgresql+psycopg://x/y", "COSTLINE_OTLP_HTTP": ":5318",
           "COSTLINE_OTLP_GRPC": "off", "COSTLINE_HTTP": "[::1]:9000", "COSTLINE_TOKEN": "t0k",
           "COSTLINE_MAX_BODY_BYTES": "1_000", "COSTLINE_FORWARD_OTLP": "http://collector:4318"}
    settings = resolve(NONE, env=env)
    assert settings.config_path == config and settings.db_url == "postgresql+psycopg://x/y"
    assert settings.otlp_http == Address("0.0.0.0", 5318) and settings.otlp_grpc is None
    assert settings.http == Address("::1", 9000) and str(settings.http) == "[::1]:9000"
    assert settings.token == "t0k" and settings.max_body_bytes == 1000
    assert settings.forward_otlp == "http://collector:4318"
    flags = {**NONE, "db": "sqlite:///flag.db", "otlp_grpc": "127.0.0.1:1", "token_file": str(token_file)}
    settings = resolve(flags, env=env)
    assert settings.db_url == "sqlite:///flag.db" and settings.otlp_grpc == Address("127.0.0.1", 1)
    assert settings.token == "from-file"


def test_errors_name_the_setting(tmp_path) -> None:
    with pytest.raises(SettingsError, match="--config.*no such file"):
        resolve({**NONE, "config": str(tmp_path / "missing.yaml")}, env={})
    with pytest.raises(SettingsError, match="COSTLINE_MAX_BODY_BYTES.*positive"):
        resolve(NONE, env={"COSTLINE_MAX_BODY_BYTES": "0"})
    with pytest.raises(SettingsError, match="COSTLINE_HTTP.*HOST:PORT"):
        resolve(NONE, env={"COSTLINE_HTTP": "9464"})
    with pytest.raises(SettingsError, match="port"):
        parse_address("localhost:99999", "x")


def test_ledger_timeout_flag_then_variable_then_default_and_its_rule() -> None:
    assert resolve(NONE, env={}).ledger_timeout_s == 5.0
    assert resolve(NONE, env={"COSTLINE_LEDGER_TIMEOUT": "1.5"}).ledger_timeout_s == 1.5
    assert resolve({**NONE, "ledger_timeout": 0.25}, env={"COSTLINE_LEDGER_TIMEOUT": "1.5"}).ledger_timeout_s == 0.25
    for value in ("0", "-1", "soon", "nan", "inf", "7200"):
        with pytest.raises(SettingsError, match="COSTLINE_LEDGER_TIMEOUT.*(seconds|number)"):
            resolve(NONE, env={"COSTLINE_LEDGER_TIMEOUT": value})


def test_max_connections_flag_then_variable_then_default_and_its_rule() -> None:
    assert resolve(NONE, env={}).max_connections == 512
    assert resolve(NONE, env={"COSTLINE_MAX_CONNECTIONS": "64"}).max_connections == 64
    assert resolve({**NONE, "max_connections": 8}, env={"COSTLINE_MAX_CONNECTIONS": "64"}).max_connections == 8
    with pytest.raises(SettingsError, match="COSTLINE_MAX_CONNECTIONS.*positive"):
        resolve(NONE, env={"COSTLINE_MAX_CONNECTIONS": "0"})
