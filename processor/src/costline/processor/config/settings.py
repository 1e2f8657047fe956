"""How `costline serve` is configured at run time: listen addresses, the ledger URL, limits, the token.

These are operational settings (where to listen, which database), not the business configuration (orgs, budgets,
prices) that lives in `costline.yaml` and `config.py`. Every setting has a command-line flag and a `COSTLINE_*`
environment variable; the flag wins, then the variable, then the default. Keeping the resolution here, apart from
argparse, lets tests and the benchmark build `Settings` directly.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_CONFIG = "costline.yaml"
DEFAULT_DB = "sqlite:///costline.db"
DEFAULT_OTLP_HTTP = "127.0.0.1:4318"
DEFAULT_OTLP_GRPC = "127.0.0.1:4317"
DEFAULT_HTTP = "127.0.0.1:9464"
DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
"""16 MiB, compressed or not: a 1000-span batch of LLM spans is well under 1 MiB; the OTel Collector allows 20 MiB."""
DEFAULT_MAX_CONNECTIONS = 512
"""Per HTTP listener: a thread each, mostly idle kept-alive exporters and scrapers; one more is answered 503."""
DEFAULT_FORWARD_QUEUE_SPANS = 100_000
DEFAULT_RETRY_AFTER_S = 5
DEFAULT_LEDGER_TIMEOUT_S = 5.0
"""Longest wait on the ledger (a lock held by another session, a connection) before an export is answered 503:
short enough that an exporter (10 s default timeout) gets a retryable answer rather than its own timeout."""

DISABLED = ("", "off", "none", "disabled")
"""Values that turn a listener off (`--otlp-grpc off`), e.g. when a Collector in front only speaks one protocol."""

ENV = {
    "config": "COSTLINE_CONFIG",
    "db": "COSTLINE_DB",
    "otlp_http": "COSTLINE_OTLP_HTTP",
    "otlp_grpc": "COSTLINE_OTLP_GRPC",
    "http": "COSTLINE_HTTP",
    "token": "COSTLINE_TOKEN",
    "token_file": "COSTLINE_TOKEN_FILE",
    "max_body_bytes": "COSTLINE_MAX_BODY_BYTES",
    "max_connections": "COSTLINE_MAX_CONNECTIONS",
    "forward_otlp": "COSTLINE_FORWARD_OTLP",
    "forward_queue_spans": "COSTLINE_FORWARD_QUEUE_SPANS",
    "ledger_timeout": "COSTLINE_LEDGER_TIMEOUT",
    "reconcile_every": "COSTLINE_RECONCILE_EVERY",
    "export_dir": "COSTLINE_EXPORT_DIR",
    "export_every": "COSTLINE_EXPORT_EVERY",
    "review_every": "COSTLINE_REVIEW_EVERY",
    "review_webhook": "COSTLINE_REVIEW_WEBHOOK",
}
"""Setting name -> environment variable. `docs/processor.md` lists the same table."""


DEFAULT_EXPORT_EVERY_S = 3600.0
"""How often `serve --export-dir` re-exports the days that can still change."""


class SettingsError(ValueError):
    """A setting has a value that cannot be used; the message names the flag/variable and the rule."""


@dataclass(frozen=True, slots=True)
class Address:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_address(value: str, name: str) -> Address | None:
    """`host:port`, `[v6]:port` or `:port` (all interfaces); None when the listener is disabled."""
    text = value.strip()
    if text.lower() in DISABLED:
        return None
    host, sep, port_text = text.rpartition(":")
    if not sep:
        raise SettingsError(f"{name}={value!r}: expected HOST:PORT (or 'off')")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        port = int(port_text)
    except ValueError:
        raise SettingsError(f"{name}={value!r}: port must be an integer") from None
    if not 0 <= port <= 65535:
        raise SettingsError(f"{name}={value!r}: port must be between 0 and 65535")
    return Address(host or "0.0.0.0", port)


@dataclass(frozen=True, slots=True)
class Settings:
    config_path: Path | None = None
    """None: run without a config (everything unattributed except what spans carry, list prices only)."""
    db_url: str = DEFAULT_DB
    otlp_http: Address | None = field(default_factory=lambda: parse_address(DEFAULT_OTLP_HTTP, "otlp_http"))
    otlp_grpc: Address | None = field(default_factory=lambda: parse_address(DEFAULT_OTLP_GRPC, "otlp_grpc"))
    http: Address | None = field(default_factory=lambda: parse_address(DEFAULT_HTTP, "http"))
    token: str | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    forward_otlp: str | None = None
    forward_queue_spans: int = DEFAULT_FORWARD_QUEUE_SPANS
    retry_after_s: int = DEFAULT_RETRY_AFTER_S
    ledger_timeout_s: float = DEFAULT_LEDGER_TIMEOUT_S
    reconcile_every_s: float | None = None
    """Reconcile the configured providers in the background this often; None: never."""
    export_dir: Path | None = None
    """Keep the daily Parquet exports (`costline export`) current in this directory; None: no exports."""
    export_every_s: float = DEFAULT_EXPORT_EVERY_S
    review_every_s: float | None = None
    """Build the cost review for the last interval and deliver it to `review_webhook` this often; None: never."""
    review_webhook: str | None = None


def resolve(flags: Mapping[str, object | None], env: Mapping[str, str] | None = None) -> Settings:
    """Settings from parsed flags (None = not given), then `COSTLINE_*` variables, then defaults."""
    env = os.environ if env is None else env

    def pick(name: str, default: str | None) -> tuple[str | None, str]:
        flag = flags.get(name)
        if flag is not None:
            return str(flag), "--" + name.replace("_", "-")
        if ENV[name] in env:
            return env[ENV[name]], ENV[name]
        return default, ENV[name]

    config_value, config_source = pick("config", None)
    if config_value is None:
        # The default file is optional: the processor runs with no config at all. A file the user named must exist.
        config_path = Path(DEFAULT_CONFIG) if Path(DEFAULT_CONFIG).is_file() else None
    elif config_value.strip() == "":
        config_path = None
    else:
        config_path = Path(config_value)
        if not config_path.is_file():
            raise SettingsError(f"{config_source}={config_value!r}: no such file")

    db_url, _ = pick("db", DEFAULT_DB)
    addresses = {}
    for name, default in (("otlp_http", DEFAULT_OTLP_HTTP), ("otlp_grpc", DEFAULT_OTLP_GRPC), ("http", DEFAULT_HTTP)):
        value, source = pick(name, default)
        addresses[name] = parse_address(value or "", source)

    token = env.get(ENV["token"]) or None
    token_file, token_source = pick("token_file", None)
    if token_file:
        try:
            token = Path(token_file).read_text().strip() or None
        except OSError as err:
            raise SettingsError(f"{token_source}={token_file!r}: cannot read ({err.strerror})") from None
        if token is None:
            raise SettingsError(f"{token_source}={token_file!r}: the file is empty")

    max_body_bytes = _positive_int(*pick("max_body_bytes", str(DEFAULT_MAX_BODY_BYTES)))
    max_connections = _positive_int(*pick("max_connections", str(DEFAULT_MAX_CONNECTIONS)))
    forward_queue_spans = _positive_int(*pick("forward_queue_spans", str(DEFAULT_FORWARD_QUEUE_SPANS)))
    forward_otlp, _ = pick("forward_otlp", None)
    ledger_timeout_s = _positive_seconds(*pick("ledger_timeout", str(DEFAULT_LEDGER_TIMEOUT_S)))
    reconcile_every, reconcile_source = pick("reconcile_every", None)
    reconcile_every_s = parse_interval(reconcile_every, reconcile_source) if reconcile_every else None
    export_dir, _ = pick("export_dir", None)
    export_every, export_source = pick("export_every", None)
    if export_every and not export_dir:
        raise SettingsError(f"{export_source}={export_every!r}: needs --export-dir (where to write the exports)")
    export_every_s = parse_interval(export_every, export_source) if export_every else DEFAULT_EXPORT_EVERY_S
    review_every, review_source = pick("review_every", None)
    review_webhook, webhook_source = pick("review_webhook", None)
    if bool(review_every) != bool(review_webhook):
        given, missing = (review_source, "--review-webhook") if review_every else (webhook_source, "--review-every")
        raise SettingsError(f"{given}: needs {missing} too (how often, and where the review goes)")
    if review_webhook and not review_webhook.startswith(("http://", "https://")):
        raise SettingsError(f"{webhook_source}={review_webhook!r}: must be an http:// or https:// URL")
    review_every_s = parse_interval(review_every, review_source) if review_every else None

    return Settings(
        config_path=config_path,
        db_url=db_url or DEFAULT_DB,
        otlp_http=addresses["otlp_http"],
        otlp_grpc=addresses["otlp_grpc"],
        http=addresses["http"],
        token=token,
        max_body_bytes=max_body_bytes,
        max_connections=max_connections,
        forward_otlp=forward_otlp or None,
        forward_queue_spans=forward_queue_spans,
        ledger_timeout_s=ledger_timeout_s,
        reconcile_every_s=reconcile_every_s,
        export_dir=Path(export_dir) if export_dir else None,
        export_every_s=export_every_s,
        review_every_s=review_every_s,
        review_webhook=review_webhook or None,
    )


_INTERVAL_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MIN_RECONCILE_INTERVAL_S = 60
"""The providers' reports lag minutes behind; asking more often than this only spends their rate limits."""


def parse_interval(value: str, source: str) -> float:
    """`90s`, `30m`, `6h`, `1d`: at least a minute."""
    text = value.strip().lower()
    unit = _INTERVAL_UNITS.get(text[-1:]) if text else None
    try:
        seconds = float(text[:-1]) * unit if unit else float("nan")
    except ValueError:
        seconds = float("nan")
    if not seconds >= MIN_RECONCILE_INTERVAL_S or seconds == float("inf"):
        raise SettingsError(f"{source}={value!r}: must be a duration such as 30m, 6h or 1d, at least 1m")
    return seconds


def _positive_int(value: str | None, source: str) -> int:
    try:
        number = int(str(value).replace("_", ""))
    except ValueError:
        raise SettingsError(f"{source}={value!r}: must be an integer") from None
    if number <= 0:
        raise SettingsError(f"{source}={value!r}: must be positive")
    return number


def _positive_seconds(value: str | None, source: str) -> float:
    try:
        seconds = float(str(value))
    except ValueError:
        raise SettingsError(f"{source}={value!r}: must be a number of seconds") from None
    if not 0 < seconds <= 3600:  # also refuses nan and inf
        raise SettingsError(f"{source}={value!r}: must be more than 0 and at most 3600 seconds")
    return seconds
