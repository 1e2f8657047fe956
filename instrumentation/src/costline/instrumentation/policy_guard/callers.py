"""The guard's cache of callers: one entry per API key and owner combination (baggage over resource attributes),
holding the policy the processor last sent for it. Written by the refresher and by a call meeting a new caller
(under the guard's lock); read by the call path without it."""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from typing import Any

from costline import attributes as A
from costline.instrumentation.policy_guard.document import Policy

MAX_CALLERS = 256
"""Callers (key and owner combinations) cached; the least recently used one goes first beyond this."""
MAX_MODELS_PER_CALLER = 32
"""Models whose rates a caller asks for; calls to further models are not estimated between refreshes."""
STALE_AFTER_REFRESHES = 4
"""A policy not refreshed for this many intervals (the processor is down) counts as unknown."""
MAX_KEYS = 64
"""API keys whose own policy (the key with the resource's owner) stays cached whatever other callers come: a caller
seen for the first time is judged by it, so a flood of new owner combinations cannot push it out and fail open."""

_OWNER_KEYS = (A.COSTLINE_ORG, A.COSTLINE_TEAM, A.COSTLINE_USER, A.COSTLINE_PROJECT, A.COSTLINE_CUSTOMER,
               A.COSTLINE_FEATURE)
_QUERY_NAMES = ("org", "team", "user", "project", "customer", "feature")
"""The policy endpoint's query parameter for each of `_OWNER_KEYS`."""


class Caller:
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


class Callers:
    """The cache, keyed by (fingerprint, org, team, user, project, customer, feature): the owner keys a budget can
    be set for."""

    def __init__(self, resource_owner: Mapping[str, Any] | None, refresh_s: float, lock: threading.Lock) -> None:
        self.resource = tuple(str(resource_owner.get(k) or "") if resource_owner else "" for k in _OWNER_KEYS)
        environment = (resource_owner.get(A.DEPLOYMENT_ENVIRONMENT) or resource_owner.get(A.DEPLOYMENT_ENVIRONMENT_OLD)
                       if resource_owner else None)
        self.environment = str(environment or "")
        """The resource's environment, as the processor reads it off the spans: the same for every caller of the
        process (a call cannot name another), so it is sent with each query but is no part of the cache key."""
        self.entries: dict[tuple[str, ...], Caller] = {}
        self._stale_s = STALE_AFTER_REFRESHES * refresh_s
        self._lock = lock

    def key(self, attrs: Mapping[str, Any]) -> tuple[str, ...]:
        """The caller of a call with these span attributes: its key's fingerprint and owner keys, the resource's
        where the call carries none."""
        resource, get = self.resource, attrs.get
        return (get(A.COSTLINE_API_KEY_FINGERPRINT) or "", get(A.COSTLINE_ORG) or resource[0],
                get(A.COSTLINE_TEAM) or resource[1], get(A.COSTLINE_USER) or resource[2],
                get(A.COSTLINE_PROJECT) or resource[3], get(A.COSTLINE_CUSTOMER) or resource[4],
                get(A.COSTLINE_FEATURE) or resource[5])

    def of_key(self, fingerprint: str) -> tuple[str, ...]:
        """The key's own caller: the key with the resource's owner."""
        return (fingerprint, *self.resource)

    def snapshot(self) -> list[Caller]:
        with self._lock:
            return list(self.entries.values())

    def policy_of(self, caller: Caller, now: float) -> Policy | None:
        """The caller's policy; while it has none (a caller seen for the first time), its key's own."""
        policy = caller.policy
        if policy is not None and now - caller.fetched_at <= self._stale_s:
            return policy
        if not caller.pinned:
            base = self.entries.get(self.of_key(caller.fingerprint))
            if base is not None and base.policy is not None and now - base.fetched_at <= self._stale_s:
                return base.policy
        return None

    def admit(self, key: tuple[str, ...], now: float) -> Caller:
        """The entry of `key`, made (with its key's own entry) if it is new."""
        base_key = self.of_key(key[0])
        with self._lock:
            caller = self.entries.get(key)
            if caller is None:
                if key != base_key and base_key not in self.entries:
                    self._insert(base_key, now)  # the key's own policy: what judges its new owner combinations
                caller = self._insert(key, now)
        return caller

    def _insert(self, key: tuple[str, ...], now: float) -> Caller:
        """A new cache entry (under the lock). Past `MAX_CALLERS` the least recently used caller goes, but not a
        key's own entry while another can go."""
        callers = self.entries
        pinned = key[1:] == self.resource and sum(c.pinned for c in callers.values()) < MAX_KEYS
        if len(callers) >= MAX_CALLERS:
            candidates = [k for k, c in callers.items() if not c.pinned] or list(callers)
            del callers[min(candidates, key=lambda k: callers[k].used_at)]
        query = {name: value for name, value in zip(_QUERY_NAMES, key[1:], strict=True) if value}
        if self.environment:
            query["environment"] = self.environment  # environment budgets bind this process's calls too
        if key[0]:
            query["key"] = key[0]
        caller = callers[key] = Caller(query, key[0], now, pinned)
        return caller
