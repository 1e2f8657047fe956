"""What every section of the config validates alike, spelled once: the strict model base, the name rule, a text
field that must match a pattern, and the largest amount of money a config may name. `core.py` and `chargeback.py` both build on these."""

from __future__ import annotations

import re
from decimal import Decimal

from pydantic import AfterValidator, BaseModel, ConfigDict

NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,62}"
"""An owner, token, shared cost or outcome name (unanchored, so that `team` and `org/team` can be built from it).
The instrumentation's `costline.outcome()` checks the same rule on its side (`costline/outcome.py`)."""
NAME = re.compile(rf"^{NAME_PATTERN}$")
NAME_RULE = "1-63 letters, digits, '_', '.', '-', starting with a letter or digit"
"""`NAME` in words, for the error messages that name the rule."""

MAX_USD = Decimal(10**12)
"""Largest budget, fee, shared cost or per-outcome rate: far above any real one, finite (a typo such as `1e40` is
refused), and exact as a JSON number (a double)."""


class Strict(BaseModel):
    """A config section: unknown keys are errors (a misspelt key is never silently ignored), values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def matching(pattern: re.Pattern[str], rule: str) -> AfterValidator:
    """A text field that must match `pattern`, else an error saying `rule` (`Annotated[str, matching(...)]`): the
    error names the key and the rule, like every config error."""

    def check(value: str) -> str:
        if not pattern.match(value):
            raise ValueError(rule)
        return value

    return AfterValidator(check)
