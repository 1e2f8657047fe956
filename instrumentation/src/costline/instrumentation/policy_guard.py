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

Local spend is counted per budget, not per caller: the processor names every budget a caller counts against (key,
user, team, org, project) and the guard keeps each one's spend in a `_Scope` of its own, shared by every caller the
budget binds, so a new `costline.owner(user=...)` per call still spends its key's and team's budget. Each GenAI span
ending in this process adds its tokens at the rates the processor sent (Costline's own calls add theirs as they end,
`CostlineSpanProcessor` adds the other GenAI spans'); rates are kept for the whole process, and a model without
rates yet is fetched at once while its calls' tokens wait to be priced. A processor figure is taken to include only
the local spend older than `hold_s` (the exporter's batch delay plus the processor's budget read), so a refresh never
forgets spend the ledger has not seen; when local spend passes half of a budget's remaining figure the guard asks
again at once (at most once a second per budget). A burst overshoots by about the calls in flight; processes
sharing a key do not see each other's spend until the ledger does (docs/governance.md works out the worst case).

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
from collections import deque
from collections.abc import Callable, Mapping
from fnmatch import fnmatchcase
from typing import Any
from urllib.parse import urlencode

from costline import attributes as A
from costline._errors import BudgetExceeded, GuardUnavailable, ModelNotAllowed, PolicyError
from costline.instrumentation.call_span import owner_attributes
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
MAX_KEYS = 64
"""API keys whose own policy (the key with the resource's owner) stays cached whatever other callers come: a caller
seen for the first time is judged by it, so a flood of new owner combinations cannot push it out and fail open."""
MAX_SCOPES = 4096
"""Budgets whose local spend is kept; beyond this the one refreshed longest ago goes."""
MAX_RATES = 1024
"""Models whose rates are kept for the whole process."""
EARLY_REFRESH_S = 1.0
"""A budget half spent by local calls is asked about again at once, but at most this often."""
PROCESSOR_LAG_S = 2.0
"""How long after a span is exported the processor's budget figure includes it (the ledger commit, the budgets'
read at most once a second): part of `hold_s`."""
DEFAULT_HOLD_S = 5.0 + PROCESSOR_LAG_S
"""The exporter's default batch delay (`OTEL_BSP_SCHEDULE_DELAY`, 5 s) plus `PROCESSOR_LAG_S`."""
_MARK_EVERY_S = 0.25
"""How often a budget notes its running local total (`_Scope.marks`), to know what it was `hold_s` ago."""

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

    __slots__ = ("rules", "budgets", "scopes", "rates", "refresh_s", "_verdicts")

    def __init__(self, document: Any) -> None:
        if not isinstance(document, dict):
            raise GarbageResponse("not a JSON object")
        self.rules = tuple(_Rule(r) for r in _list(document.get("models"), "models"))
        budgets = document.get("budgets")
        if budgets is None:  # a processor that names only the tightest budget
            budget = document.get("budget")
            budgets = [] if budget is None else [budget]
        self.budgets = tuple(_budget(b) for b in _list(budgets, "budgets"))
        """(name, remaining USD) of every budget the caller counts against, as the processor sent them."""
        self.scopes: tuple[_Scope, ...] = ()
        """The guard's `_Scope` of each budget, attached when the policy is installed."""
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


def _budget(document: Any) -> tuple[str, float]:
    if not isinstance(document, dict):
        raise GarbageResponse("a budget is not an object")
    return _text(document.get("bound_by"), "bound_by"), _number(document.get("remaining_usd"), "remaining_usd")


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


class _Scope:
    """Local spend against one budget (`key acme/search/alice/laptop daily`), shared by every caller it binds.
    Written under the guard's lock; read by the call path without it."""

    __slots__ = ("name", "remaining_usd", "fetched_at", "total_usd", "seen_usd", "marks", "pending", "early_at", "via")

    def __init__(self, name: str, hold_s: float) -> None:
        self.name = name
        self.remaining_usd = math.inf
        """The processor's figure, as last fetched."""
        self.fetched_at = -math.inf
        self.total_usd = 0.0
        """Every cost this process has added to this budget: only grows."""
        self.seen_usd = 0.0
        """The part of `total_usd` the processor's figure is taken to include (what had been spent `hold_s` before
        the figure was asked for)."""
        self.marks: deque[tuple[float, float]] = deque(maxlen=int(hold_s / _MARK_EVERY_S) + 8)
        """(time, `total_usd` then), at most one per `_MARK_EVERY_S`, reaching `hold_s` back: what the total was
        then."""
        self.pending: dict[tuple[str, str], list[int]] = {}
        """(provider, model) -> [input, output] tokens of calls ended before the model's rates were known."""
        self.early_at = -math.inf
        self.via: _Caller | None = None
        """The caller whose refresh last brought this budget's figure: the one to refresh early."""

    def add(self, cost: float, now: float) -> None:
        self.total_usd += cost
        marks = self.marks
        if not marks or now - marks[-1][0] >= _MARK_EVERY_S:
            marks.append((now, self.total_usd))

    def total_at(self, when: float) -> float:
        """A lower bound of `total_usd` at `when`: the last mark at or before it (else what is known seen)."""
        found = self.seen_usd
        for at, total in self.marks:
            if at > when:
                break
            found = total
        return found


class _Caller:
    """Cache entry of one caller. Written by the refresher; read by the call path."""

    __slots__ = ("query", "fingerprint", "policy", "fetched_at", "used_at", "models", "warned", "due_at", "pinned")

    def __init__(self, query: dict[str, str], fingerprint: str, now: float, pinned: bool) -> None:
        self.query = query
        self.fingerprint = fingerprint
        self.policy: Policy | None = None
        self.fetched_at = -math.inf
        self.used_at = now
        self.models: set[tuple[str, str]] = set()
        """(provider, model) pairs called, whose rates the next refresh asks for."""
        self.warned: set[str] = set()
        """Warnings logged in the current refresh window (warn mode logs each once per window)."""
        self.due_at = now
        self.pinned = pinned
        """The key's own entry (key with the resource's owner): never evicted for another caller."""


Fetch = Callable[[dict[str, str]], Any]
"""Asks the policy endpoint with these query parameters; returns the decoded JSON document or raises."""


class Guard:
    def __init__(self, mode: str, *, fail: str = FAIL_OPEN, url: str | None = None, token: str | None = None,
                 refresh_s: float = DEFAULT_REFRESH_S, timeout_s: float = DEFAULT_TIMEOUT_S,
                 hold_s: float = DEFAULT_HOLD_S, resource_owner: Mapping[str, Any] | None = None,
                 fetch: Fetch | None = None, clock: Callable[[], float] = time.monotonic) -> None:
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
        self._hold_s = hold_s
        self._fetch = fetch or self._http_fetch
        self._url = (url or "").rstrip("/") + "/api/v1/policy"
        self._token = token
        self._clock = clock
        self._resource = tuple(str(resource_owner.get(k) or "") if resource_owner else "" for k in _OWNER_KEYS)
        self._callers: dict[tuple[str, ...], _Caller] = {}
        self._scopes: dict[str, _Scope] = {}
        self._rates: dict[tuple[str, str], tuple[float, float]] = {}
        """(provider, model) -> USD per input and output token, from every answer: prices are the same for all."""
        self._unpriced: set[_Scope] = set()
        """Budgets holding tokens of models whose rates have not come yet."""
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
            if (provider, model) not in self._rates and caller.due_at > now:
                caller.due_at = now  # a model without rates: ask for them now, before its first answer is back
                self._wake.set()
        policy = self._policy_of(caller, now)
        if policy is None:
            return self._unknown(), caller
        if isinstance(model, str) and model:
            refused = policy.model_refusal(provider, model)
            if refused is not None:
                return ModelNotAllowed(f"costline guard: {provider}/{model} is not allowed ({refused})", refused), caller
        for scope in policy.scopes:
            left = scope.remaining_usd - (scope.total_usd - scope.seen_usd)
            if left <= 0:
                return BudgetExceeded(
                    f"costline guard: budget {scope.name} is spent (remaining ${left:.6f} including this process's "
                    "calls the processor has not counted yet)", scope.name), caller
        return None, caller

    def _policy_of(self, caller: _Caller, now: float) -> Policy | None:
        """The caller's policy; while it has none (a caller seen for the first time), its key's own."""
        policy = caller.policy
        if policy is not None and now - caller.fetched_at <= STALE_AFTER_REFRESHES * self._refresh_s:
            return policy
        if not caller.pinned:
            base = self._callers.get((caller.fingerprint, *self._resource))
            if base is not None and base.policy is not None and \
                    now - base.fetched_at <= STALE_AFTER_REFRESHES * self._refresh_s:
                return base.policy
        return None

    def _unknown(self) -> PolicyError | None:
        if self.fail_closed:
            reason = self._failing or "no policy from the processor yet"
            return GuardUnavailable(f"costline guard: the policy of this caller is unknown ({reason}); "
                                    "COSTLINE_GUARD_FAIL=closed refuses the call", reason)
        return None

    def _admit(self, key: tuple[str, ...], now: float) -> _Caller:
        base_key = (key[0], *self._resource)
        with self._lock:
            caller = self._callers.get(key)
            if caller is None:
                if key != base_key and base_key not in self._callers:
                    self._insert(base_key, now)  # the key's own policy: what judges its new owner combinations
                caller = self._insert(key, now)
        self._wake.set()
        return caller

    def _insert(self, key: tuple[str, ...], now: float) -> _Caller:
        """A new cache entry (under the lock). Past `MAX_CALLERS` the least recently used caller goes, but not a
        key's own entry while another can go."""
        callers = self._callers
        pinned = key[1:] == self._resource and sum(c.pinned for c in callers.values()) < MAX_KEYS
        if len(callers) >= MAX_CALLERS:
            candidates = [k for k, c in callers.items() if not c.pinned] or list(callers)
            del callers[min(candidates, key=lambda k: callers[k].used_at)]
        query = {name: value for name, value in zip(_QUERY_NAMES, key[1:], strict=True) if value}
        if key[0]:
            query["key"] = key[0]
        caller = callers[key] = _Caller(query, key[0], now, pinned)
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
        """Add a finished GenAI span's estimated cost (from its attributes) to the budgets its caller counts
        against. Never raises. For spans other code made; Costline's own calls use `record_call`."""
        try:
            key = self._key(attrs)
            caller = self._callers.get(key) or self._callers.get((key[0], *self._resource))
            if caller is not None:
                self._add(caller, attrs, attrs)
        except Exception:
            swallow("estimating a call's cost for the guard")

    def record_call(self, caller: _Caller, request: Mapping[str, Any], response: Mapping[str, Any]) -> None:
        """Add a finished call of Costline's own to the budgets of `caller` (what `check_caller` returned when it
        started), from its start and end attributes: no second look-up of the caller on the call path. Never
        raises."""
        try:
            self._add(caller, request, response)
        except Exception:
            swallow("estimating a call's cost for the guard")

    def _add(self, caller: _Caller, request: Mapping[str, Any], response: Mapping[str, Any]) -> None:
        output_tokens = response.get(A.GEN_AI_USAGE_OUTPUT_TOKENS)
        if output_tokens is None:
            return  # no usage: a failed or refused call
        now = self._clock()
        policy = self._policy_of(caller, now)
        if policy is None or not policy.scopes:
            return  # no budget applies, or nothing known of the caller yet
        input_tokens = response.get(A.GEN_AI_USAGE_INPUT_TOKENS) or 0
        model = (request.get(A.GEN_AI_PROVIDER_NAME) or "", request.get(A.GEN_AI_REQUEST_MODEL) or "")
        rates = self._rates.get(model)
        with self._lock:
            if rates is None:  # priced when the rates come (asked for when the call started)
                for scope in policy.scopes:
                    if model in scope.pending or len(scope.pending) < MAX_MODELS_PER_CALLER:
                        held = scope.pending.setdefault(model, [0, 0])
                        held[0] += input_tokens
                        held[1] += output_tokens
                        self._unpriced.add(scope)
                return
            # Cache reads at the input rate: an overestimate, which errs on the side of the budget.
            cost = input_tokens * rates[0] + output_tokens * rates[1]
            early = False
            for scope in policy.scopes:
                scope.add(cost, now)
                early |= self._early(scope, now)
        if early:
            self._wake.set()

    def _early(self, scope: _Scope, now: float) -> bool:
        """Once local spend passes half of what the processor said was left, ask it again at once (rate-limited):
        other processes' spend and the exact figure arrive sooner. Under the lock."""
        if (scope.total_usd - scope.seen_usd) * 2 < scope.remaining_usd or now - scope.early_at < EARLY_REFRESH_S:
            return False
        via = scope.via
        if via is None or via.due_at <= now:
            return False
        scope.early_at = now
        via.due_at = now
        return True

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
                self._wake.clear()  # before the pass: a wake-up during it makes the next pass start at once
                try:
                    wait = self._refresh_due()
                except Exception:
                    swallow("refreshing the guard's policies")
                    wait = self._refresh_s
                self._wake.wait(wait)

    def _refresh_due(self) -> float:
        """Refresh every caller whose time has come; returns seconds until the next one is due."""
        now = self._clock()
        with self._lock:
            callers = list(self._callers.values())
        for caller in sorted(callers, key=lambda c: c.due_at):  # a model's missing rates first, new callers next
            if self._stopped.is_set():
                break
            if caller.due_at <= now:
                self._refresh(caller)
        now = self._clock()
        with self._lock:
            pending = [c.due_at for c in self._callers.values()]
        return max(0.01, min(pending, default=now + self._refresh_s) - now)

    def _refresh(self, caller: _Caller) -> None:
        started = self._clock()
        query = dict(caller.query)
        if caller.models:
            # sorted() copies the set in one step: the call path may add to it meanwhile.
            query["models"] = ",".join(f"{provider}/{model}" for provider, model in sorted(caller.models))
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
            self._learn_rates(policy.rates)
            # The figure includes what the ledger had when asked: spans that ended here within `hold_s` before
            # may not have reached it yet, so their cost stays counted locally (erring on the side of the budget).
            seen_before = started - self._hold_s
            policy.scopes = tuple(self._scope_of(name, remaining, started, seen_before, caller)
                                  for name, remaining in policy.budgets)
            caller.policy = policy
            caller.fetched_at = started
            caller.warned.clear()
            caller.due_at = started + min(self._refresh_s, policy.refresh_s or self._refresh_s)
        self.refreshes += 1
        if self._failing is not None:
            log.warning("costline guard: the policy endpoint answers again")
            self._failing = None

    def _scope_of(self, name: str, remaining: float, fetched_at: float, seen_before: float,
                  via: _Caller) -> _Scope:
        """The budget's `_Scope`, with the processor's new figure (under the lock)."""
        scope = self._scopes.get(name)
        if scope is None:
            if len(self._scopes) >= MAX_SCOPES:
                del self._scopes[min(self._scopes, key=lambda n: self._scopes[n].fetched_at)]
            scope = self._scopes[name] = _Scope(name, self._hold_s)
        scope.remaining_usd = remaining
        scope.fetched_at = fetched_at
        scope.seen_usd = max(scope.seen_usd, scope.total_at(seen_before))
        if via.pinned or scope.via is None or not scope.via.pinned:
            scope.via = via  # a key's own entry is never evicted: the surest one to refresh early
        return scope

    def _learn_rates(self, rates: Mapping[tuple[str, str], tuple[float, float]]) -> None:
        """Keep the answer's rates and price the tokens that waited for them (under the lock)."""
        for model, rate in rates.items():
            if model in self._rates or len(self._rates) < MAX_RATES:
                self._rates[model] = rate
        if not self._unpriced:
            return
        now = self._clock()
        for scope in list(self._unpriced):
            for model in [m for m in scope.pending if m in self._rates]:
                input_tokens, output_tokens = scope.pending.pop(model)
                rate = self._rates[model]
                scope.add(input_tokens * rate[0] + output_tokens * rate[1], now)
            if not scope.pending:
                self._unpriced.discard(scope)

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


def judge_unstarted(guard: Guard, call: Any) -> str | None:
    """Apply the guard to a call whose span the SDK will make once the request is on its way (`call` is its
    `choke_point.SdkSpan`): in block mode a refusal is recorded on a span of Costline's and raised (nothing is
    sent); in warn mode the refusal is logged once and its rule returned, for `CostlineSpanProcessor` to mark the
    SDK's span with as it starts."""
    try:
        attrs = {**call.attrs, A.GEN_AI_REQUEST_MODEL: call.model, **owner_attributes()}
    except Exception:
        swallow("reading a call for the guard")
        return None
    refusal = guard.check(attrs)
    if refusal is None:
        return None
    if not guard.block:
        guard.warn_once(attrs, refusal)
        return str(getattr(refusal, "rule", ""))
    try:
        call.call_span().refuse(refusal, blocked=True)
    except Exception:
        swallow("recording a refused call")
    raise refusal


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
