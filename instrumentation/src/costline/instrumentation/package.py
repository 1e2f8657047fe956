_instruments_openai = "openai >= 3.0"
_instruments_anthropic = "anthropic >= 2.0"

_instruments = (_instruments_openai, _instruments_anthropic)
"""Either library is enough: each is patched only when it is installed (see `CostlineInstrumentor`)."""

_supports_metrics = False
