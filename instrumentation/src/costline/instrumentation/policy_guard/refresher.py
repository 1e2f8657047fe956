"""The guard's one background thread: refreshes each caller's policy every `refresh_s` seconds, new callers and a
model's missing rates at once, so the call path never waits on the network."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from costline.instrumentation.guard import swallow
from costline.instrumentation.policy_guard.callers import Caller, Callers
from costline.instrumentation.policy_guard.client import describe
from costline.instrumentation.policy_guard.document import Policy
from costline.instrumentation.policy_guard.spend import LocalSpend

log = logging.getLogger("costline.instrumentation.policy_guard")
"""The guard's one logger (outages, warn mode, settings it cannot use)."""

Fetch = Callable[[dict[str, str]], Any]
"""Asks the policy endpoint with these query parameters; returns the decoded JSON document or raises."""


class Refresher:
    def __init__(self, callers: Callers, spend: LocalSpend, fetch: Fetch, *, endpoint: str, fail_closed: bool,
                 refresh_s: float, timeout_s: float, hold_s: float, clock: Callable[[], float],
                 lock: threading.Lock) -> None:
        self._callers = callers
        self._spend = spend
        self._fetch = fetch
        self._endpoint = endpoint
        self._fail_closed = fail_closed
        self._refresh_s = refresh_s
        self._timeout_s = timeout_s
        self._hold_s = hold_s
        self._clock = clock
        self._lock = lock
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self.failing: str | None = None
        """Why the last refresh failed (logged once per outage), or None."""
        self.refreshes = 0
        """Policy requests answered with a usable document (tests poll it)."""
        self.failures = 0

    def wake(self) -> None:
        """Start the next pass now (a caller or a model's rates are due)."""
        self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="costline-guard", daemon=True)
        self._thread.start()

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
        for caller in sorted(self._callers.snapshot(), key=lambda c: c.due_at):  # missing rates first, new callers next
            if self._stopped.is_set():
                break
            if caller.due_at <= now:
                self.refresh(caller)
        now = self._clock()
        pending = [c.due_at for c in self._callers.snapshot()]
        return max(0.01, min(pending, default=now + self._refresh_s) - now)

    def refresh(self, caller: Caller) -> None:
        """Ask the processor for `caller`'s policy now, in this thread, and install it."""
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
            reason = describe(err)
            if self.failing is None:
                log.warning("costline guard: the policy endpoint %s failed (%s); failing %s until it answers",
                            self._endpoint, reason, "closed" if self._fail_closed else "open")
            self.failing = reason
            return
        with self._lock:
            self._spend.learn_rates(policy.rates, self._clock())
            # The figure includes what the ledger had when asked: spans that ended here within `hold_s` before
            # may not have reached it yet, so their cost stays counted locally (erring on the side of the budget).
            seen_before = started - self._hold_s
            policy.scopes = tuple(self._spend.scope_of(limit, started, seen_before, caller)
                                  for limit in policy.budgets)
            # A caller's first policy does not start a new warning window: what was logged while it was judged by
            # its key's own policy (its first calls, before this fetch) is not logged again.
            if caller.policy is not None:
                caller.warned.clear()
            caller.policy = policy
            caller.fetched_at = started
            caller.due_at = started + min(self._refresh_s, policy.refresh_s or self._refresh_s)
        self.refreshes += 1
        if self.failing is not None:
            log.warning("costline guard: the policy endpoint answers again")
            self.failing = None
