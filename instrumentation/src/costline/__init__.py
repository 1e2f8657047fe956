"""Costline: who spent what on LLMs.

`from costline import owner, outcome` is cheap: it imports only the OpenTelemetry API's context and baggage modules
(`outcome` imports the trace API on its first call).
The instrumentation (`costline.instrumentation`) and the processor (`costline.processor`, a separate distribution)
live under this namespace.
"""

from pkgutil import extend_path

# `costline.processor` and `costline.dashboards` ship in their own distributions; with editable installs each
# lives in a different directory on sys.path, so this package's path is extended to find them.
__path__ = extend_path(__path__, __name__)

from costline._errors import BudgetExceeded, GuardUnavailable, ModelNotAllowed, PolicyError  # noqa: E402
from costline.attribution import owner  # noqa: E402
from costline.outcome import outcome  # noqa: E402

__all__ = ["BudgetExceeded", "GuardUnavailable", "ModelNotAllowed", "PolicyError", "outcome", "owner"]
