"""The guard: refuse an LLM call before it leaves the process when its model or its budget says no.

`COSTLINE_GUARD=warn|block` (or `CostlineInstrumentor().instrument(guard="block")`) turns it on. For each caller —
the API key's fingerprint and the owner keys the call carries (baggage over resource attributes) — the guard holds
what the processor's `GET /api/v1/policy` answered: the caller's `models:` rules, its effective remaining budget
(the most restrictive over key, user, team, org and project) and the rates of the models it called.

The call path only reads that cache (a dict lookup and a few string matches): a background thread refreshes each
caller every `COSTLINE_GUARD_REFRESH` seconds and fetches new callers as soon as they appear, so the call path never
waits on the network. A caller seen for the first time is judged by its key's policy without the call's own owner
keys while its exact policy loads, else as unknown (`COSTLINE_GUARD_FAIL`). `instrument()` waits once, bounded by
`COSTLINE_GUARD_TIMEOUT`, for the keys in `OPENAI_API_KEY` / `ANTHROPIC_API_KEY`, so an app's first call is judged.

Between refreshes the guard subtracts the spend it sees ending in this process (tokens of each finished GenAI span
at the rates the processor sent: Costline's own calls add theirs as they end, `CostlineSpanProcessor` adds the
other GenAI spans') from the remaining budget: a burst overshoots by at most what
this process spends in one refresh interval plus the exporter's delay. Processes sharing a key do not see each
other's spend until the ledger does (docs/governance.md works out the worst case).

The rules are evaluated as the processor's `policy.ModelPolicy` does: case-insensitive shell globs, a `deny` match
or a miss on an `allow` list at any level refuses, and the rule is named `<level> <provider> deny <glob>` or
`<level> <provider> allow`.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from fnmatch import fnmatchcase
from typing import Any
from urllib.parse import urlencode

from costline import attributes as A
from costline._errors import BudgetExceeded, GuardUnavailable, ModelNotAllowed, PolicyError
from costline.instrumentation.guard import swallow

log = logging.getLogger("costline.instrumentation.policy_guard")

OFF, WARN, BLOCK = "off", "warn", "block"
MODES = (OFF, WARN, BLOCK)
FAIL_OPEN, FAIL_CLOSED = "open", "closed"
DEFAULT_REFRESH_S = 15.0
DEFAULT_TIMEOUT_S = 2.0
MAX_CALLERS = 256
"""Callers (key and owner combinations) cached; the least recently used one goes first beyond this."""
MAX_MODELS_PER_CALLER = 32
"""Models whose rates a caller asks for; calls to further models are not estimated between refreshes."""
STALE_AFTER_REFRESHES = 4
"""A policy not refreshed for this many intervals (the processor is down) counts as unknown."""

_OWNER_KEYS = (A.COSTLINE_ORG, A.COSTLINE_TEAM, A.COSTLINE_USER, A.COSTLINE_PROJECT)
_QUERY_NAMES = ("org", "team", "user", "project")
_PER_MTOK = 1e-6


class GarbageResponse(ValueError):
    """The policy endpoint answered something that is not a policy document."""


class _Rule:
    __slots__ = ("provider", "level", "allow", "deny")

    def __init__(self, document: Any) -> None:
        if not isinstance(document, dict):
            raise GarbageResponse("a rule is not an object")
        self.provider = _text(document.get("provider"), "provider")
        self.level = _text(document.get("level"), "level")
        allow = document.get("allow")
        self.allow = None if allow is None else tuple(_text(p, "allow").lower() for p in _list(allow, "allow"))
        self.deny = tuple(_text(p, "deny").lower() for p in _list(document.get("deny") or [], "deny"))

    def refuses(self, provider: str, model: str) -> str | None:
        if self.provider != provider and self.provider != "*":
            return None
        for pattern in self.deny:
            if fnmatchcase(model, pattern):
                return f"{self.level} {self.provider} deny {pattern}"
        if self.allow is not None and not any(fnmatchcase(model, p) for p in self.allow):
            return f"{self.level} {self.provider} allow"
        return None


class Policy:
    """One caller's policy as the processor sent it."""

    __slots__ = ("rules", "remaining_usd", "bound_by", "rates", "refresh_s", "_verdicts")

    def __init__(self, document: Any) -> None:
        if not isinstance(document, dict):
            raise GarbageResponse("not a JSON object")
        self.rules = tuple(_Rule(r) for r in _list(document.get("models"), "models"))
        budget = document.get("budget")
        if budget is None:
            self.remaining_usd: float | None = None
            self.bound_by = ""
        elif isinstance(budget, dict):
            self.remaining_usd = _number(budget.get("remaining_usd"), "remaining_usd")
            self.bound_by = _text(budget.get("bound_by"), "bound_by")
        else:
            raise GarbageResponse("budget is not an object")
        rates = document.get("rates") or {}
        if not isinstance(rates, dict):
            raise GarbageResponse("rates is not an object")
        self.rates = {tuple(_text(name, "rates").partition("/")[::2]): (_number(r.get("input_per_mtok"), "input_per_mtok") * _PER_MTOK,
                                             _number(r.get("output_per_mtok"), "output_per_mtok") * _PER_MTOK)
                      for name, r in rates.items() if isinstance(r, dict)}
        refresh = document.get("refresh_s")
        self.refresh_s = _number(refresh, "refresh_s") if refresh is not None else None
        self._verdicts: dict[tuple[str, str], str | None] = {}
        """(provider, model) -> refusing rule or None: the rules are fixed for this policy's life, and a process
        calls a handful of models, so each is matched once (bounded all the same)."""

    def model_refusal(self, provider: str, model: str) -> str | None:
        key = (provider, model)
        try:
            return self._verdicts[key]
        except KeyError:
            pass
        lowered = model.lower()
        verdict = None
        for rule in self.rules:
            verdict = rule.refuses(provider, lowered)
            if verdict is not None:
                break
        if len(self._verdicts) < 1024:
            self._verdicts[key] = verdict
        return verdict


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise GarbageResponse(f"{name} is not a string")
    return value


def _list(value: Any, name: str) -> list:
    if not isinstance(value, list):
        raise GarbageResponse(f"{name} is not a list")
    return value


def _number(value: Any, name: str) -> float:
    """A number of the policy document. Money comes as an exact decimal string (`"12.500000000000"`, the processor
    API's rule for amounts of USD); a JSON number is accepted too. The guard compares in floats: it estimates."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise GarbageResponse(f"{name} is not a finite number") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise GarbageResponse(f"{name} is not a finite number")
    return float(value)


class _Caller:
    """Cache entry of one caller. Written by the refresher and by `record`; read by the call path."""

    __slots__ = ("query", "policy", "fetched_at", "spent_usd", "used_at", "models", "warned", "due_at")

    def __init__(self, query: dict[str, str], now: float) -> None:
        self.query = query
        self.policy: Policy | None = None
        self.fetched_at = -math.inf
        self.spent_usd = 0.0
        """Spend estimated from the calls that ended here since the processor's figure was taken."""
        self.used_at = now
        self.models: set[tuple[str, str]] = set()
        """(provider, model) pairs called, whose rates the next refresh asks for."""
        self.warned: set[str] = set()
        """Warnings logged in the current refresh window (warn mode logs each once per window)."""
        self.due_at = now


Fetch = Callable[[dict[str, str]], Any]
"""Asks the policy endpoint with these query parameters; returns the decoded JSON document or raises."""


class Guard:
    def __init__(self, mode: str, *, fail: str = FAIL_OPEN, url: str | None = None, token: str | None = None,
                 refresh_s: float = DEFAULT_REFRESH_S, timeout_s: float = DEFAULT_TIMEOUT_S,
                 resource_owner: Mapping[str, Any] | None = None, fetch: Fetch | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if mode not in (WARN, BLOCK):
            raise ValueError(f"guard mode {mode!r}: use off, warn or block")
        if fail not in (FAIL_OPEN, FAIL_CLOSED):
            raise ValueError(f"guard fail {fail!r}: use open or closed")
        if fetch is None and not url:
            raise ValueError("the guard needs the processor's URL (COSTLINE_GUARD_URL)")
        self.block = mode == BLOCK
        self.fail_closed = fail == FAIL_CLOSED
        self._refresh_s = refresh_s
        self._timeout_s = timeout_s
        self._fetch = fetch or self._http_fetch
        self._url = (url or "").rstrip("/") + "/api/v1/policy"
        self._token = token
        self._clock = clock
        self._resource = tuple(str(resource_owner.get(k) or "") if resource_owner else "" for k in _OWNER_KEYS)
        self._callers: dict[tuple[str, ...], _Caller] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing: str | None = None
        """Why the last refresh failed (logged once per outage), or None."""
        self.refreshes = 0
        """Policy requests answered with a usable document (tests poll it)."""
        self.failures = 0

    # --- the call path ---------------------------------------------------------------------------------------------
    def _key(self, attrs: Mapping[str, Any]) -> tuple[str, ...]:
        resource, get = self._resource, attrs.get
        return (get(A.COSTLINE_API_KEY_FINGERPRINT) or "", get(A.COSTLINE_ORG) or resource[0],
                get(A.COSTLINE_TEAM) or resource[1], get(A.COSTLINE_USER) or resource[2],
                get(A.COSTLINE_PROJECT) or resource[3])

    def check(self, attrs: Mapping[str, Any]) -> PolicyError | None:
        """The refusal for a call with these span attributes (provider, request model, fingerprint, owner keys),
        or None to let it go. Never touches the network; never raises."""
        return self.check_caller(attrs)[0]

    def check_caller(self, attrs: Mapping[str, Any]) -> tuple[PolicyError | None, _Caller | None]:
        """`check`, and the cache entry the call is counted under (for `record_call` when it ends)."""
        try:
            return self._check(attrs)
        except Exception:
            swallow("checking a call against the guard's policy")
            return None, None

    def _check(self, attrs: Mapping[str, Any]) -> tuple[PolicyError | None, _Caller]:
        now = self._clock()
        key = self._key(attrs)
        caller = self._callers.get(key)
        if caller is None:
            caller = self._admit(key, now)
        caller.used_at = now
        provider = attrs.get(A.GEN_AI_PROVIDER_NAME) or ""
        model = attrs.get(A.GEN_AI_REQUEST_MODEL)
        if model and (provider, model) not in caller.models and len(caller.models) < MAX_MODELS_PER_CALLER:
            caller.models.add((provider, model))
        policy, spent = self._policy_of(caller, now)
        if policy is None and key[1:] != self._resource:
            # A new owner combination while its exact policy loads: the key's own policy is the best there is.
            base = self._callers.get((key[0], *self._resource))
            if base is not None:
                policy, spent = self._policy_of(base, now)
        if policy is None:
            return self._unknown(key), caller
        if isinstance(model, str) and model:
            refused = policy.model_refusal(provider, model)
            if refused is not None:
                return ModelNotAllowed(f"costline guard: {provider}/{model} is not allowed ({refused})", refused), caller
        if policy.remaining_usd is not None and policy.remaining_usd - spent <= 0:
            return BudgetExceeded(
                f"costline guard: budget {policy.bound_by} is spent (remaining ${policy.remaining_usd - spent:.6f} "
                "including this process's calls since the last refresh)", policy.bound_by), caller
        return None, caller

    def _policy_of(self, caller: _Caller, now: float) -> tuple[Policy | None, float]:
        policy = caller.policy
        if policy is None or now - caller.fetched_at > STALE_AFTER_REFRESHES * self._refresh_s:
            return None, 0.0
        return policy, caller.spent_usd

    def _unknown(self, key: tuple[str, ...]) -> PolicyError | None:
        if self.fail_closed:
            reason = self._failing or "no policy from the processor yet"
            return GuardUnavailable(f"costline guard: the policy of this caller is unknown ({reason}); "
                                    "COSTLINE_GUARD_FAIL=closed refuses the call", reason)
        return None

    def _admit(self, key: tuple[str, ...], now: float) -> _Caller:
        query = {name: value for name, value in zip(_QUERY_NAMES, key[1:], strict=True) if value}
        if key[0]:
            query["key"] = key[0]
        with self._lock:
            caller = self._callers.get(key)
            if caller is None:
                if len(self._callers) >= MAX_CALLERS:
                    oldest = min(self._callers, key=lambda k: self._callers[k].used_at)
                    del self._callers[oldest]
                caller = self._callers[key] = _Caller(query, now)
        self._wake.set()
        return caller

    def warn_once(self, attrs: Mapping[str, Any], refusal: PolicyError) -> None:
        """Log a refusal that warn mode lets through, once per caller, rule and refresh window."""
        try:
            caller = self._callers.get(self._key(attrs))
            if caller is not None:
                if refusal.rule in caller.warned:
                    return
                caller.warned.add(refusal.rule)
            log.warning("%s; COSTLINE_GUARD=warn lets the call through", refusal)
        except Exception:
            swallow("logging a guard warning")

    # --- what calls cost, between refreshes ------------------------------------------------------------------------
    def record(self, attrs: Mapping[str, Any]) -> None:
        """Add a finished GenAI span's estimated cost (from its attributes) to its caller's local spend. Never
        raises. For spans other code made; Costline's own calls use `record_call`."""
        try:
            caller = self._callers.get(self._key(attrs))
            if caller is not None:
                self._add(caller, attrs, attrs)
        except Exception:
            swallow("estimating a call's cost for the guard")

    def record_call(self, caller: _Caller, request: Mapping[str, Any], response: Mapping[str, Any]) -> None:
        """Add a finished call of Costline's own to `caller` (what `check_caller` returned when it started), from
        its start and end attributes: no second look-up of the caller on the call path. Never raises."""
        try:
            self._add(caller, request, response)
        except Exception:
            swallow("estimating a call's cost for the guard")

    def _add(self, caller: _Caller, request: Mapping[str, Any], response: Mapping[str, Any]) -> None:
        policy = caller.policy
        output_tokens = response.get(A.GEN_AI_USAGE_OUTPUT_TOKENS)
        if policy is None or output_tokens is None:
            return  # no usage (a failed or refused call), or nothing known to price it with
        rates = policy.rates.get((request.get(A.GEN_AI_PROVIDER_NAME), request.get(A.GEN_AI_REQUEST_MODEL)))
        if rates is None:
            return
        # Cache reads at the input rate: an overestimate, which errs on the side of the budget.
        cost = (response.get(A.GEN_AI_USAGE_INPUT_TOKENS) or 0) * rates[0] + output_tokens * rates[1]
        with self._lock:
            caller.spent_usd += cost

    # --- the refresher ---------------------------------------------------------------------------------------------
    def start(self, prefetch: list[str] = ()) -> Guard:  # type: ignore[assignment]
        """Fetch the policies of `prefetch` (fingerprints; "" for no key) with the resource's owner now, bounded by
        the timeout, then refresh in the background."""
        now = self._clock()
        for fingerprint in prefetch:
            self._refresh(self._admit((fingerprint, *self._resource), now))
        self._thread = threading.Thread(target=self._run, name="costline-guard", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(self._timeout_s + 1)

    def _run(self) -> None:
        from opentelemetry.instrumentation.utils import suppress_instrumentation

        with suppress_instrumentation():  # the guard's own HTTP requests are not the app's telemetry
            while not self._stopped.is_set():
                try:
                    wait = self._refresh_due()
                except Exception:
                    swallow("refreshing the guard's policies")
                    wait = self._refresh_s
                self._wake.wait(wait)
                self._wake.clear()

    def _refresh_due(self) -> float:
        """Refresh every caller whose time has come; returns seconds until the next one is due."""
        now = self._clock()
        with self._lock:
            callers = list(self._callers.values())
        for caller in callers:
            if self._stopped.is_set():
                break
            if caller.due_at <= now:
                self._refresh(caller)
        now = self._clock()
        with self._lock:
            pending = [c.due_at for c in self._callers.values()]
        return max(0.05, min(pending, default=now + self._refresh_s) - now)

    def _refresh(self, caller: _Caller) -> None:
        started = self._clock()
        spent_before = caller.spent_usd
        query = dict(caller.query)
        if caller.models:
            query["models"] = ",".join(sorted(f"{provider}/{model}" for provider, model in caller.models))
        try:
            policy = Policy(self._fetch(query))
        except Exception as err:  # unreachable, timeout, HTTP error, garbage: all mean "policy unknown"
            self.failures += 1
            caller.due_at = started + self._refresh_s
            reason = _describe(err)
            if self._failing is None:
                log.warning("costline guard: the policy endpoint %s failed (%s); failing %s until it answers",
                            self._url, reason, "closed" if self.fail_closed else "open")
            self._failing = reason
            return
        with self._lock:
            caller.policy = policy
            caller.fetched_at = started
            # The processor's figure includes what its ledger had when asked; spend recorded here since then
            # (calls ending while the request was in flight) stays counted.
            caller.spent_usd -= spent_before
            caller.warned.clear()
            caller.due_at = started + min(self._refresh_s, policy.refresh_s or self._refresh_s)
        self.refreshes += 1
        if self._failing is not None:
            log.warning("costline guard: the policy endpoint answers again")
            self._failing = None

    def refresh_now(self) -> None:
        """Refresh every caller now, in this thread (tests, and callers that want a fresh view at a known point)."""
        with self._lock:
            callers = list(self._callers.values())
        for caller in callers:
            self._refresh(caller)

    def _http_fetch(self, query: dict[str, str]) -> Any:
        headers = {"Accept": "application/json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        request = urllib.request.Request(f"{self._url}?{urlencode(query)}", headers=headers)
        with urllib.request.urlopen(request, timeout=self._timeout_s) as response:  # noqa: S310 - configured URL
            body = response.read(1024 * 1024 + 1)
        if len(body) > 1024 * 1024:
            raise GarbageResponse("answer larger than 1 MiB")
        try:
            return json.loads(body)
        except ValueError:
            raise GarbageResponse("not JSON") from None


def _describe(err: BaseException) -> str:
    if isinstance(err, urllib.error.HTTPError):
        return f"HTTP {err.code}"
    if isinstance(err, urllib.error.URLError):
        return str(err.reason)
    return f"{type(err).__name__}: {err}"


def judge(guard: Guard, call: Any) -> None:
    """Apply the guard to a call about to be sent (`call` is its `CallSpan`): in block mode a refusal ends the span
    as refused and is raised (nothing is sent); in warn mode the span is marked and the refusal logged once."""
    refusal, caller = guard.check_caller(call.attrs)
    if caller is not None:
        call.guard = (guard, caller)  # its end adds its cost to this caller's local spend
    if refusal is None:
        return
    call.refuse(refusal, blocked=guard.block)
    if guard.block:
        raise refusal
    guard.warn_once(call.attrs, refusal)


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
                      refresh_s=refresh_s, timeout_s=timeout_s, resource_owner=resource.attributes)
    except ValueError as err:
        log.error("costline guard not started: %s", err)
        return None
    from costline.fingerprint import fingerprint

    keys = [env.get(name) for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY")]
    return guard.start([fingerprint(k) for k in keys if k])
