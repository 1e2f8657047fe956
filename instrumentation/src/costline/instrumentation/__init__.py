"""Costline instrumentation: every openai and anthropic API call becomes one owned, priceable span.

Usage
-----

Zero code: install ``costline-instrumentation`` next to ``opentelemetry-distro`` and run the unmodified app::

    OTEL_SERVICE_NAME=search-api \\
    OTEL_RESOURCE_ATTRIBUTES=costline.org=acme,costline.team=search \\
    OTEL_EXPORTER_OTLP_ENDPOINT=http://costline-processor:4317 \\
    opentelemetry-instrument python app.py

The plugin is registered under the ``opentelemetry_instrumentor`` entry point ``costline`` (not ``openai``, a name
three other packages already use), so ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=costline`` turns it off.

In code::

    from costline.instrumentation import CostlineInstrumentor

    CostlineInstrumentor().instrument(tracer_provider=provider)
    ...
    CostlineInstrumentor().uninstrument()  # restores every patched method

A library the application has not imported yet is patched when it is imported (a post-import hook), not imported by
the instrumentor: an app that only uses openai does not pay for loading anthropic (seconds of start-up and its
models' memory) because both SDKs are installed.

Ownership, most specific first: ``costline.owner(...)`` (context manager and decorator; also puts the keys into W3C
baggage for downstream services), incoming W3C baggage, then resource attributes::

    from costline import owner

    with owner(team="search", project="ranking", feature="rerank"):
        client.chat.completions.create(model="gpt-4o", messages=[...])

What each span carries is specified in ``docs/attributes.md``: operation, provider, request and response model,
response id, input/output/cache-read/cache-write/reasoning tokens, the other billable units the SDK reports (audio,
image tokens in and out; anthropic's 1-hour cache writes; server-side web searches and code executions), time to
first chunk on streams, service tier (billed, and for openai the one asked for), server address, retries
(``http.request.resend_count``), ``error.type`` and status on failure, the owner keys and
``costline.api_key.fingerprint`` (first 16 hex chars of SHA-256 of the API key; the key never leaves the process).
No prompt, completion or other content is ever recorded; other GenAI instrumentations in the process have their
content capture defaulted to off (``COSTLINE_SUPPRESS_FOREIGN_CONTENT``).

Covered: openai ``chat.completions.create`` (and ``parse``, ``stream``), ``responses.create`` (and ``stream``),
``embeddings.create``, legacy ``completions.create``, ``audio.transcriptions``/``translations.create`` and
``images.generate``/``edit`` (operation ``generate_content``; their token usage where the model reports it) — sync
and async, streaming or not, ``OpenAI``, ``AzureOpenAI`` (provider ``azure.ai.openai``) and OpenAI-compatible
servers by ``base_url`` (provider from the host: OpenRouter, Groq, Together, DeepSeek, Mistral, Ollama, vLLM; else
``openai`` with ``server.address`` kept). anthropic ``messages.create`` (incl. ``stream=True``) and
``messages.stream(...)``, sync and async, on ``Anthropic`` and on the platform clients ``AnthropicBedrock``
(provider ``aws.bedrock``) and ``AnthropicVertex`` (``gcp.vertex_ai``). The anthropic SDK's own span (on by default)
is enriched instead of duplicated; with ``open_telemetry=False`` Costline makes the span itself.

Streams pass chunks through as they arrive and end the span exactly once (exhausted, closed, ``with`` block left,
dropped, or raised). An openai stream that did not ask for usage is sent ``stream_options.include_usage`` and the
extra usage-only chunk is hidden from the application (``COSTLINE_OPENAI_STREAM_USAGE=false`` disables this).

A call whose span the application's trace sampler drops (``OTEL_TRACES_SAMPLER=traceidratio``, ...) is still
billed: Costline records it on a billing path of its own, exported with the application's OTLP settings and marked
``costline.sampled_out`` so the processor bills it without forwarding it downstream (``costline.instrumentation.
sampling``; ``COSTLINE_SAMPLING_SAFE=false`` turns it off, ``COSTLINE_BILLING_ENDPOINT`` sends it elsewhere).

Errors raised by the SDK reach the caller unchanged (the same exception object). Errors inside Costline never do:
they are logged at debug level on the ``costline.instrumentation`` logger and counted
(``costline.instrumentation.guard.internal_errors()``).

Governance without a proxy (``docs/governance.md``): ``COSTLINE_GUARD=block`` (or ``instrument(guard="block")``)
refuses a call before its request leaves the process when the caller's ``models:`` rules refuse the model
(``costline.ModelNotAllowed``) or its effective remaining budget is spent (``costline.BudgetExceeded``); both are
``costline.PolicyError``, whose ``rule`` names the rule or budget. Nothing is sent (sync, async, streams: a refused
stream never opens a connection) and the span records the refusal (``costline.guard.action=blocked``).
``COSTLINE_GUARD=warn`` lets the call through, logs once per refresh window and marks the span ``warned``. The
guard learns policy and remaining budgets from the processor (``COSTLINE_GUARD_URL``, ``COSTLINE_GUARD_TOKEN`` with
the ``guard`` role), refreshed in the background every ``COSTLINE_GUARD_REFRESH`` seconds: the call path never
waits on the network. When the processor cannot be asked the guard fails open (``COSTLINE_GUARD_FAIL=closed``
refuses with ``costline.GuardUnavailable``) and says so once in the log. In code::

    CostlineInstrumentor().instrument(guard="block", guard_url="http://costline:9464", guard_token=token)

Environment variables: see ``costline.instrumentation.environment_variables``.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import weakref
from collections.abc import Collection
from typing import Any

from opentelemetry import trace
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor
from wrapt import register_post_import_hook

from costline.attributes import INSTRUMENTATION_SCOPE
from costline.instrumentation.environment_variables import (
    COSTLINE_INSTRUMENT_LIBRARIES,
    COSTLINE_STAMP_FOREIGN_SPANS,
    COSTLINE_SUPPRESS_FOREIGN_CONTENT,
    FOREIGN_CONTENT_SWITCHES,
)
from costline.instrumentation.guard import internal_errors, swallow
from costline.instrumentation.package import _instruments
from costline.instrumentation.policy_guard import guard_from
from costline.instrumentation.sampling import BillingPath
from costline.instrumentation.sampling import enabled as sampling_safe
from costline.instrumentation.span_processor import CostlineSpanProcessor
from costline.instrumentation.version import __version__

__all__ = ["CostlineInstrumentor", "CostlineSpanProcessor", "internal_errors"]

_LIBRARIES = tuple(spec.split()[0] for spec in _instruments)
"""The instrumented libraries' import names, read off their requirements (`"openai >= 3.0"` -> `openai`)."""

# One span processor per tracer provider, however often instrument() runs: SDK providers cannot remove a
# processor, so uninstrument() disables it instead and a later instrument() enables it again.
_processors: weakref.WeakKeyDictionary[Any, CostlineSpanProcessor] = weakref.WeakKeyDictionary()


def _selected_libraries() -> list[str]:
    wanted = os.environ.get(COSTLINE_INSTRUMENT_LIBRARIES)
    names = [n.strip() for n in wanted.split(",") if n.strip()] if wanted else list(_LIBRARIES)
    return [n for n in names if n in _LIBRARIES and importlib.util.find_spec(n) is not None]


def _suppress_foreign_content() -> None:
    """Default other instrumentations' content capture to off, leaving any explicit setting alone."""
    if os.environ.get(COSTLINE_SUPPRESS_FOREIGN_CONTENT, "true").strip().lower() == "false":
        return
    for name, value in FOREIGN_CONTENT_SWITCHES:
        os.environ.setdefault(name, value)


class _OnImport:
    """Patches library `name` now if it is imported, else as soon as it is; `stop()` undoes it, or cancels it when
    the import has not happened (wrapt cannot unregister a post-import hook: a cancelled one does nothing)."""

    def __init__(self, name: str, patcher: Any) -> None:
        self.patcher, self.patched, self.cancelled = patcher, False, False
        if name in sys.modules:
            self._patch(sys.modules[name])
        else:
            register_post_import_hook(self._patch, name)

    def _patch(self, module: Any) -> None:  # noqa: ARG002 - the hook's argument; the patcher finds what it needs
        if self.cancelled or self.patched:
            return
        try:
            self.patcher.instrument()
        except Exception:  # in a hook, this would fail the application's own import
            swallow("patching a library as it was imported")
            return
        self.patched = True

    def stop(self) -> None:
        self.cancelled = True
        if self.patched:
            self.patcher.uninstrument()
            self.patched = False


class CostlineInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Patches the installed LLM client libraries and installs `CostlineSpanProcessor`."""

    def instrumentation_dependencies(self) -> Collection[str]:
        # Either library is enough. BaseInstrumentor would refuse to run unless *all* listed requirements are
        # met, so only the installed ones are reported (versions are still checked for those).
        return [spec for name, spec in zip(_LIBRARIES, _instruments, strict=True)
                if importlib.util.find_spec(name) is not None] or list(_instruments[:1])

    def _instrument(self, **kwargs: Any) -> None:
        tracer_provider = kwargs.get("tracer_provider") or trace.get_tracer_provider()
        tracer = trace.get_tracer(INSTRUMENTATION_SCOPE, __version__, tracer_provider=tracer_provider)
        _suppress_foreign_content()
        self._guard = guard_from(kwargs, os.environ, tracer_provider)
        self._billing = (BillingPath(tracer_provider, kwargs.get("billing_exporter"))
                         if sampling_safe(kwargs, os.environ) else None)
        watching = self._install_span_processor(tracer_provider, self._guard, self._billing is not None)
        # A call whose span the SDK makes is known to be dropped only through the span processor's watch.
        sdk_billing = self._billing if watching else None

        self._patchers: list[_OnImport] = []
        for name in _selected_libraries():
            if name == "openai":
                from costline.instrumentation.openai import OpenAIPatcher as Patcher
            else:
                from costline.instrumentation.anthropic import AnthropicPatcher as Patcher  # type: ignore[assignment]
            patcher = Patcher(tracer, tracer_provider, self._guard, self._billing)
            patcher.sdk_billing = sdk_billing
            self._patchers.append(_OnImport(name, patcher))

    def _uninstrument(self, **kwargs: Any) -> None:
        for patcher in getattr(self, "_patchers", []):
            patcher.stop()
        self._patchers = []
        if getattr(self, "_guard", None) is not None:
            self._guard.stop()
            self._guard = None
        if getattr(self, "_billing", None) is not None:
            self._billing.shutdown()  # exports what it holds
            self._billing = None
        for processor in _processors.values():
            processor.enabled = False
            processor.guard = None

    @staticmethod
    def _install_span_processor(tracer_provider: Any, guard: Any, watch_sdk_spans: bool) -> bool:
        """Install (or re-enable) the provider's `CostlineSpanProcessor`; whether one is installed."""
        stamp = os.environ.get(COSTLINE_STAMP_FOREIGN_SPANS, "true").strip().lower() != "false"
        # A ProxyTracerProvider has no processors: stamping then happens only on Costline's own spans.
        if not (stamp or guard is not None or watch_sdk_spans) or not hasattr(tracer_provider, "add_span_processor"):
            return False
        processor = _processors.get(tracer_provider)
        if processor is None:
            processor = CostlineSpanProcessor(stamp)
            tracer_provider.add_span_processor(processor)
            _processors[tracer_provider] = processor
        processor.enabled = stamp
        processor.guard = guard
        return True
