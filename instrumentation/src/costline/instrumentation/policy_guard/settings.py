"""The guard `instrument()` asks for: options and `COSTLINE_GUARD*` variables read, checked and turned into a started
`Guard` (or none)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from costline.instrumentation.policy_guard.judge import (
    DEFAULT_REFRESH_S,
    DEFAULT_TIMEOUT_S,
    FAIL_OPEN,
    OFF,
    PROCESSOR_LAG_S,
    Guard,
)
from costline.instrumentation.policy_guard.refresher import log


def _hold_s(env: Mapping[str, str]) -> float:
    """How long the processor may take to count a call that ended here: the span exporter's batch delay
    (`OTEL_BSP_SCHEDULE_DELAY`, milliseconds, as the SDK reads it) plus `PROCESSOR_LAG_S`."""
    try:
        delay_s = float(env.get("OTEL_BSP_SCHEDULE_DELAY", "5000")) / 1000
    except ValueError:
        delay_s = 5.0
    return (delay_s if math.isfinite(delay_s) and delay_s >= 0 else 5.0) + PROCESSOR_LAG_S


def guard_from(options: Mapping[str, Any], env: Mapping[str, str], tracer_provider: Any) -> Guard | None:
    """The guard `instrument(**options)` asks for (`guard=`, `guard_fail=`, `guard_url=`, `guard_token=`, each
    winning over its `COSTLINE_GUARD*` variable), started; None when it is off. A setting it cannot use is logged
    and leaves the guard off: a typo must not stop the application."""
    from costline.instrumentation import environment_variables as E

    def pick(option: str, name: str, default: str | None = None) -> str | None:
        value = options.get(option)
        return str(value) if value is not None else env.get(name, default)

    mode = (pick("guard", E.COSTLINE_GUARD, OFF) or OFF).strip().lower()
    if mode == OFF:
        return None
    try:
        refresh_s = float(pick("guard_refresh", E.COSTLINE_GUARD_REFRESH, str(DEFAULT_REFRESH_S)) or 0)
        timeout_s = float(pick("guard_timeout", E.COSTLINE_GUARD_TIMEOUT, str(DEFAULT_TIMEOUT_S)) or 0)
        if not (0 < refresh_s <= 86400 and 0 < timeout_s <= 60):
            raise ValueError("COSTLINE_GUARD_REFRESH must be in (0, 86400] and COSTLINE_GUARD_TIMEOUT in (0, 60] "
                             "seconds")
        resource = getattr(tracer_provider, "resource", None)
        if resource is None:
            from opentelemetry.sdk.resources import Resource

            resource = Resource.create()
        guard = Guard(mode, fail=(pick("guard_fail", E.COSTLINE_GUARD_FAIL, FAIL_OPEN) or "").strip().lower(),
                      url=pick("guard_url", E.COSTLINE_GUARD_URL), token=pick("guard_token", E.COSTLINE_GUARD_TOKEN),
                      refresh_s=refresh_s, timeout_s=timeout_s, hold_s=_hold_s(env),
                      resource_owner=resource.attributes)
    except ValueError as err:
        log.error("costline guard not started: %s", err)
        return None
    from costline.fingerprint import fingerprint

    keys = [env.get(name) for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY")]
    return guard.start([fingerprint(k) for k in keys if k])
