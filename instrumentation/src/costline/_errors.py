"""What the guard raises when it refuses an LLM call before the request leaves the process.

    import costline

    try:
        client.chat.completions.create(model="o3", messages=[...])
    except costline.PolicyError as refused:
        ...  # no request was sent; `refused.rule` names the budget or the model rule

This module must stay cheap to import: it is imported by `import costline`.
"""

from __future__ import annotations


class PolicyError(Exception):
    """The guard refused the call (`COSTLINE_GUARD=block`). Nothing was sent to the provider."""

    def __init__(self, message: str, rule: str) -> None:
        super().__init__(message)
        self.rule = rule
        """The budget (`key acme/search/alice/laptop daily`) or model rule (`team acme/marketing openai allow`)
        that refused the call; for `GuardUnavailable`, why the policy is unknown."""


class BudgetExceeded(PolicyError):
    """A hard budget the caller counts against (key, user, team, org, project, customer, feature or the model's; in
    USD or tokens, of any period) is spent. A spent soft budget is only warned about: `soft` is True then, and the
    guard never raises it."""

    soft = False


class ModelNotAllowed(PolicyError):
    """A `models:` rule at or above the caller refuses this model."""


class GuardUnavailable(PolicyError):
    """`COSTLINE_GUARD_FAIL=closed` and the guard has no policy for this caller (the processor is unreachable or
    answered garbage)."""
