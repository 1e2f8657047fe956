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

Each GenAI span ending in this process adds its tokens at the rates the processor sent to the local spend of every
budget its caller counts against (Costline's own calls add theirs as they end, `CostlineSpanProcessor` adds the
other GenAI spans'); when local spend passes half of a budget's remaining figure the guard asks again at once (at
most once a second per budget). A burst overshoots by about the calls in flight; processes sharing a key do not see
each other's spend until the ledger does (docs/governance.md works out the worst case).

One concern a module:

| module | concern |
|---|---|
| `document.py` | the policy document parsed and checked: rules (matched as the processor's `policy.ModelPolicy`), budgets, `Rate` (the guard's only price arithmetic) |
| `client.py` | `PolicyClient`: the HTTP request to the endpoint (stdlib) and how a failure is described |
| `callers.py` | `Callers`: the cache of callers, bounded, the keys' own entries pinned |
| `spend.py` | `LocalSpend`: per-budget local spend, rates and tokens waiting for them, the early refresh |
| `refresher.py` | `Refresher`: the background thread and installing an answer |
| `judge.py` | `Guard` (the call path's check, the warning, the spend a call adds) and applying its verdict to a call |
| `settings.py` | `guard_from`: the options and environment variables that make a started guard |
"""

from costline.instrumentation.policy_guard.judge import (
           BLOCK,
           FAIL_CLOSED,
           FAIL_OPEN,
           MODES,
           OFF,
           WARN,
           Guard,
           judge,
           judge_unstarted,
)
from costline.instrumentation.policy_guard.settings import guard_from

__all__ = ["BLOCK", "FAIL_CLOSED", "FAIL_OPEN", "MODES", "OFF", "WARN", "Guard", "guard_from", "judge",
           "judge_unstarted"]
