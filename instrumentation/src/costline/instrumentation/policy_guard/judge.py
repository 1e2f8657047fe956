"""`Guard`: the call path's verdict on a call, from the cached policy and local spend only (a dict lookup and a few
string matches; never the network), and what a call adds to the local spend as it ends. Its pieces: the callers'
cache (`callers`), the local spend estimate (`spend`), the policy client (`client`) and the refresher thread
(`refresher`)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from costline import attributes as A
from costline._errors import BudgetExceeded, GuardUnavailable, ModelNotAllowed, PolicyError
from costline.instrumentation.call_span import owner_attributes
from costline.instrumentation.guard import swallow
from costline.instrumentation.policy_guard.callers import MAX_MODELS_PER_CALLER, Caller, Callers
from costline.instrumentation.policy_guard.client import PolicyClient
from costline.instrumentation.policy_guard.refresher import Fetch, Refresher, log
from costline.instrumentation.policy_guard.spend import LocalSpend

OFF, WARN, BLOCK = "off", "warn", "block"
MODES = (OFF, WARN, BLOCK)
FAIL_OPEN, FAIL_CLOSED = "open", "closed"
DEFAULT_REFRESH_S = 15.0
DEFAULT_TIMEOUT_S = 2.0
PROCESSOR_LAG_S = 2.0
"""How long after a span is exported the processor's budget figure includes it (the ledger commit, the budgets'
read at most once a second): part of `hold_s`."""
DEFAULT_HOLD_S = 5.0 + PROCESSOR_LAG_S
"""The exporter's default batch delay (`OTEL_BSP_SCHEDULE_DELAY`, 5 s) plus `PROCESSOR_LAG_S`."""


def _spent(scope: Any, left: float) -> BudgetExceeded:
    remaining = f"{left:.0f} tokens" if scope.tokens else f"${left:.6f}"
    return BudgetExceeded(f"costline guard: budget {scope.name} is spent (remaining {remaining} including this "
                          "process's calls the processor has not counted yet)", scope.name)


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
        self._clock = clock
        endpoint = (url or "").rstrip("/") + "/api/v1/policy"
        lock = threading.Lock()
        self.callers = Callers(resource_owner, refresh_s, lock)
        self.spend = LocalSpend(hold_s, lock)
        self.refresher = Refresher(self.callers, self.spend, fetch or PolicyClient(endpoint, token, timeout_s),
                                   endpoint=endpoint, fail_closed=self.fail_closed, refresh_s=refresh_s,
                                   timeout_s=timeout_s, hold_s=hold_s, clock=clock, lock=lock)

    @property
    def refreshes(self) -> int:
        """Policy requests answered with a usable document (tests poll it)."""
        return self.refresher.refreshes

    @property
    def failures(self) -> int:
        return self.refresher.failures

    # --- the call path ---------------------------------------------------------------------------------------------
    def check(self, attrs: Mapping[str, Any]) -> PolicyError | None:
        """The refusal for a call with these span attributes (provider, request model, fingerprint, owner keys),
        or None to let it go. Never touches the network; never raises."""
        return self.check_caller(attrs)[0]

    def check_caller(self, attrs: Mapping[str, Any]) -> tuple[PolicyError | None, Caller | None]:
        """`check`, and the cache entry the call is counted under (for `record_call` when it ends)."""
        try:
            return self._check(attrs)
        except Exception:
            swallow("checking a call against the guard's policy")
            return None, None

    def _check(self, attrs: Mapping[str, Any]) -> tuple[PolicyError | None, Caller]:
        now = self._clock()
        callers = self.callers
        key = callers.key(attrs)
        caller = callers.entries.get(key)
        if caller is None:
            caller = callers.admit(key, now)
            self.refresher.wake()
        caller.used_at = now
        provider = attrs.get(A.GEN_AI_PROVIDER_NAME) or ""
        model = attrs.get(A.GEN_AI_REQUEST_MODEL)
        if model and (provider, model) not in caller.models and len(caller.models) < MAX_MODELS_PER_CALLER:
            caller.models.add((provider, model))
            if (provider, model) not in self.spend.rates and caller.due_at > now:
                caller.due_at = now  # a model without rates: ask for them now, before its first answer is back
                self.refresher.wake()
        policy = callers.policy_of(caller, now)
        if policy is None:
            return self._unknown(), caller
        if isinstance(model, str) and model:
            refused = policy.model_refusal(provider, model)
            if refused is not None:
                return ModelNotAllowed(f"costline guard: {provider}/{model} is not allowed ({refused})", refused), caller
        soft = None
        for scope in policy.scopes:
            if scope.model is not None and scope.model != model:
                continue
            left = scope.left_usd()
            if left <= 0:
                if scope.soft:  # reported, never blocking: a hard budget later in the list still may
                    soft = soft or scope
                    continue
                return _spent(scope, left), caller
        if soft is not None:
            refusal = _spent(soft, soft.left_usd())
            refusal.soft = True
            return refusal, caller
        return None, caller

    def _unknown(self) -> PolicyError | None:
        if self.fail_closed:
            reason = self.refresher.failing or "no policy from the processor yet"
            return GuardUnavailable(f"costline guard: the policy of this caller is unknown ({reason}); "
                                    "COSTLINE_GUARD_FAIL=closed refuses the call", reason)
        return None

    def warn_once(self, attrs: Mapping[str, Any], refusal: PolicyError) -> None:
        """Log a refusal that warn mode lets through, once per caller, rule and refresh window."""
        try:
            caller = self.callers.entries.get(self.callers.key(attrs))
            if caller is not None:
                if refusal.rule in caller.warned:
                    return
                caller.warned.add(refusal.rule)
            log.warning("%s; %s", refusal, "a soft budget only warns" if getattr(refusal, "soft", False)
                        else "COSTLINE_GUARD=warn lets the call through")
        except Exception:
            swallow("logging a guard warning")

    # --- what calls cost, between refreshes ------------------------------------------------------------------------
    def record(self, attrs: Mapping[str, Any]) -> None:
        """Add a finished GenAI span's estimated cost (from its attributes) to the budgets its caller counts
        against. Never raises. For spans other code made; Costline's own calls use `record_call`."""
        try:
            callers = self.callers
            key = callers.key(attrs)
            caller = callers.entries.get(key) or callers.entries.get(callers.of_key(key[0]))
            if caller is not None:
                self._add(caller, attrs, attrs)
        except Exception:
            swallow("estimating a call's cost for the guard")

    def record_call(self, caller: Caller, request: Mapping[str, Any], response: Mapping[str, Any]) -> None:
        """Add a finished call of Costline's own to the budgets of `caller` (what `check_caller` returned when it
        started), from its start and end attributes: no second look-up of the caller on the call path. Never
        raises."""
        try:
            self._add(caller, request, response)
        except Exception:
            swallow("estimating a call's cost for the guard")

    def _add(self, caller: Caller, request: Mapping[str, Any], response: Mapping[str, Any]) -> None:
        output_tokens = response.get(A.GEN_AI_USAGE_OUTPUT_TOKENS)
        if output_tokens is None:
            return  # no usage: a failed or refused call
        now = self._clock()
        policy = self.callers.policy_of(caller, now)
        if policy is None or not policy.scopes:
            return  # no budget applies, or nothing known of the caller yet
        model = (request.get(A.GEN_AI_PROVIDER_NAME) or "", request.get(A.GEN_AI_REQUEST_MODEL) or "")
        if self.spend.add(policy, model, response.get(A.GEN_AI_USAGE_INPUT_TOKENS) or 0, output_tokens, now):
            self.refresher.wake()

    # --- the refresher ---------------------------------------------------------------------------------------------
    def start(self, prefetch: list[str] = ()) -> Guard:  # type: ignore[assignment]
        """Fetch the policies of `prefetch` (fingerprints; "" for no key) with the resource's owner now, bounded by
        the timeout, then refresh in the background."""
        now = self._clock()
        for fingerprint in prefetch:
            self.refresher.refresh(self.callers.admit(self.callers.of_key(fingerprint), now))
        self.refresher.start()
        return self

    def stop(self) -> None:
        self.refresher.stop()


def judge(guard: Guard, call: Any) -> None:
    """Apply the guard to a call about to be sent (`call` is its `CallSpan`): in block mode a refusal ends the span
    as refused and is raised (nothing is sent); in warn mode the span is marked and the refusal logged once."""
    refusal, caller = guard.check_caller(call.attrs)
    if caller is not None:
        call.guard = (guard, caller)  # its end adds its cost to this caller's local spend
    if refusal is None:
        return
    block = guard.block and not getattr(refusal, "soft", False)  # a soft budget only ever warns
    call.refuse(refusal, blocked=block)
    if block:
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
    if not guard.block or getattr(refusal, "soft", False):
        guard.warn_once(attrs, refusal)
        return str(getattr(refusal, "rule", ""))
    try:
        call.call_span().refuse(refusal, blocked=True)
    except Exception:
        swallow("recording a refused call")
    raise refusal
