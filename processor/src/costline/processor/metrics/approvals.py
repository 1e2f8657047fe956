"""Approvals as metrics (docs/governance.md, Approvals): requests waiting for a decision, approvals in effect, and
every request, decision and expiry counted — read from the administration's rows in memory (kept current by its
`Refresher`), never from the database in a scrape. `CostlineApprovalRequested` alerts on a waiting request, and the
generated Alertmanager config routes it by its `approver` label to the approver's receiver."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from costline.processor.clock import Clock

_OWNER = ("org", "team", "user")


def _owner(scope: str) -> list[str]:
    parts = scope.split("/")
    return [*parts, *[""] * (3 - len(parts))]


class ApprovalCollector(Collector):
    def __init__(self, administration: Callable[[], Any], clock: Clock) -> None:
        self._administration = administration
        self._clock = clock

    def describe(self) -> Iterator:
        return iter(())

    def collect(self) -> Iterator:
        pending = GaugeMetricFamily("costline_approval_requests_pending",
                                    "Requests for a model allowed on approval, waiting for the approver's decision.",
                                    labels=[*_OWNER, "provider", "model", "approver"])
        active = GaugeMetricFamily("costline_approvals_active",
                                   "Approvals in effect: calls to the model are allowed until the expiry (unix s).",
                                   labels=[*_OWNER, "provider", "model"])
        changes = CounterMetricFamily("costline_approval_changes",
                                      "Approval requests, decisions and expiries (the audit log's rows).",
                                      labels=["action"])
        administration = self._administration()
        if administration is not None:
            now: datetime = self._clock()
            merged = administration.merged()
            for oid, state in sorted(merged.latest.items()):
                if not oid.startswith("approval:"):
                    continue
                labels = [*_owner(state["scope"]), state["provider"], state["model"]]
                if state.get("status") == "requested":
                    pending.add_metric([*labels, state.get("approver", "")], 1)
                elif state.get("status") == "approved":
                    expires = datetime.fromisoformat(state["expires"])
                    if expires > now:
                        active.add_metric(labels, expires.timestamp())
            counted = Counter(row["action"] for row in administration.rows() if row["object"].startswith("approval:"))
            for action in ("request", "approve", "deny", "expire"):
                changes.add_metric([action], counted.get(action, 0))
        yield pending
        yield active
        yield changes
