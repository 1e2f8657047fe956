"""The guard in the application, with the real openai and anthropic SDKs on httpx2.MockTransport and a local policy
endpoint: refusals before any request is sent (sync, async, streams), warn mode, the local spend estimate between
refreshes (per budget, from the first call, under concurrent threads and a flood of callers), and an endpoint that
hangs or answers garbage (fail open, fail closed)."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import anthropic
import httpx2
import openai
import pytest

import costline
from costline import attributes as A
from costline._errors import BudgetExceeded, PolicyError
from costline.fingerprint import fingerprint
from costline.instrumentation import CostlineInstrumentor
from costline.instrumentation.policy_guard import Guard
from costline.testing.fake_provider import mock_transport_handler
from tests.polling import poll

from .conftest import ANTHROPIC_KEY, OPENAI_KEY, Spans

SPENT = {"models": [{"level": "org acme", "provider": "openai", "allow": None, "deny": ["o3*"]}],
         # Money as the processor sends it: an exact decimal string (a number is accepted too: OPEN_BUDGET).
         "budget": {"remaining_usd": "-0.250000000000", "bound_by": "key acme/search/alice/laptop daily"},
         "rates": {}, "refresh_s": 30}
OPEN_BUDGET = {"models": [{"level": "team acme/marketing", "provider": "*", "allow": ["gpt-4o-mini*",
                                                                                      "claude-*-haiku*"],
                           "deny": []}],
               "budget": {"remaining_usd": 0.01, "bound_by": "team acme/marketing monthly"},
               "rates": {"openai/gpt-4o-mini": {"input_per_mtok": 1000.0, "output_per_mtok": 1000.0}},
               "refresh_s": 30}
MESSAGES = [{"role": "user", "content": "hi"}]


class PolicyEndpoint(ThreadingHTTPServer):
    """`GET /api/v1/policy` answering `document` (bytes are sent as they are; a function is called with the query's
    parameters); `release` holds answers back."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _PolicyHandler)
        self.document: object = SPENT
        self.queries: list[str] = []
        self.release = threading.Event()
        self.release.set()
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _PolicyHandler(BaseHTTPRequestHandler):
    server: PolicyEndpoint

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        self.server.queries.append(self.path)
        self.server.release.wait(10)
        document = self.server.document
        if callable(document):
            document = document({k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()})
        body = document if isinstance(document, bytes) else json.dumps(document).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def endpoint() -> Iterator[PolicyEndpoint]:
    server = PolicyEndpoint()
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()


class Provider:
    """The fake provider behind MockTransport, counting the requests that reached it."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.latency = 0.0
        """Seconds each answer takes (a real API's answer takes far longer than a policy request)."""

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request.url.path)
        if self.latency:
            time.sleep(self.latency)
        return mock_transport_handler(request)

    def openai(self) -> openai.OpenAI:
        return openai.OpenAI(api_key=OPENAI_KEY, base_url="https://api.openai.com/v1", max_retries=0,
                             http_client=httpx2.Client(transport=httpx2.MockTransport(self)))

    def async_openai(self) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(api_key=OPENAI_KEY, max_retries=0,
                                  http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(self)))

    def anthropic(self, **kw) -> anthropic.Anthropic:
        return anthropic.Anthropic(api_key=ANTHROPIC_KEY, max_retries=0,
                                   http_client=httpx2.Client(transport=httpx2.MockTransport(self)), **kw)

    def async_anthropic(self) -> anthropic.AsyncAnthropic:
        return anthropic.AsyncAnthropic(api_key=ANTHROPIC_KEY, max_retries=0,
                                        http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(self)))


@pytest.fixture
def provider() -> Provider:
    return Provider()


@pytest.fixture
def guarded(tracer_provider, endpoint, monkeypatch):
    """Instrument with a guard; the keys in the environment are fetched before `instrument()` returns."""
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
    instrumentors: list[CostlineInstrumentor] = []

    def start(mode: str = "block", **options) -> Spans:
        instrumentor = CostlineInstrumentor()
        instrumentor.instrument(tracer_provider=tracer_provider, guard=mode, guard_url=endpoint.url,
                                guard_refresh="30", **options)
        instrumentors.append(instrumentor)
        spans = Spans(tracer_provider._test_exporter)
        spans.guard = instrumentor._guard
        spans.provider = tracer_provider
        return spans

    yield start
    for instrumentor in instrumentors:
        instrumentor.uninstrument()


def test_a_spent_budget_refuses_every_kind_of_call_and_nothing_is_sent(guarded, provider, endpoint):
    spans = guarded("block")
    assert endpoint.queries and f"key={fingerprint(OPENAI_KEY)}" in endpoint.queries[0]
    client = provider.openai()
    with pytest.raises(costline.BudgetExceeded) as refused:
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert refused.value.rule == "key acme/search/alice/laptop daily"
    assert "key acme/search/alice/laptop daily" in str(refused.value)
    assert isinstance(refused.value, costline.PolicyError)
    with pytest.raises(costline.BudgetExceeded):
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    with pytest.raises(costline.BudgetExceeded):
        with client.chat.completions.stream(model="gpt-4o", messages=MESSAGES):
            pass
    with pytest.raises(costline.BudgetExceeded):
        client.responses.create(model="gpt-4o", input="hi")
    claude = provider.anthropic()
    with pytest.raises(costline.BudgetExceeded):
        claude.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=MESSAGES)
    with pytest.raises(costline.BudgetExceeded):
        with claude.messages.stream(model="claude-haiku-4-5", max_tokens=5, messages=MESSAGES):
            pass
    # The anthropic SDK's own tracing on: Costline makes the span that records the refusal.
    sdk_traced = provider.anthropic(open_telemetry={"tracer_provider": spans.provider})
    with pytest.raises(costline.BudgetExceeded):
        sdk_traced.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=MESSAGES)
    assert provider.requests == []
    recorded = spans.all()
    assert len(recorded) == 7
    for span in recorded:
        assert span.attributes["costline.guard.action"] == "blocked"
        assert span.attributes["costline.guard.rule"] == "key acme/search/alice/laptop daily"
        assert span.attributes["error.type"] == "costline.BudgetExceeded"
        assert "gen_ai.usage.input_tokens" not in span.attributes


def test_the_resources_environment_is_sent_and_its_budget_refuses(endpoint, provider, monkeypatch):
    """An environment budget binds through the resource's `deployment.environment.name`, which the processor reads
    off the spans: the guard sends it with every policy query, so the processor can apply that budget."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    def answer(query: dict[str, str]) -> dict:
        if query.get("environment") != "staging":
            return {**SPENT, "budget": None}
        return {**SPENT, "budget": {"remaining_usd": "-0.1", "bound_by": "environment staging daily"}}

    endpoint.document = answer
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    instrumentor = CostlineInstrumentor()
    instrumentor.instrument(tracer_provider=TracerProvider(resource=Resource.create(
        {"deployment.environment.name": "staging", "costline.team": "search"})), guard="block",
        guard_url=endpoint.url, guard_refresh="30")
    try:
        with pytest.raises(costline.BudgetExceeded) as refused:
            provider.openai().chat.completions.create(model="gpt-4o", messages=MESSAGES)
        assert refused.value.rule == "environment staging daily"
        assert endpoint.queries and all("environment=staging" in query for query in endpoint.queries)
        assert provider.requests == []
    finally:
        instrumentor.uninstrument()


async def test_async_calls_and_streams_are_refused_too(guarded, provider):
    guarded("block")
    client = provider.async_openai()
    with pytest.raises(costline.BudgetExceeded):
        await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    with pytest.raises(costline.BudgetExceeded):
        await client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    with pytest.raises(costline.BudgetExceeded):
        await provider.async_anthropic().messages.create(model="claude-haiku-4-5", max_tokens=5, messages=MESSAGES)
    assert provider.requests == []


def test_a_denied_model_is_refused_naming_the_rule(guarded, provider, endpoint):
    endpoint.document = {**SPENT, "budget": None}
    guarded("block")
    client = provider.openai()
    with pytest.raises(costline.ModelNotAllowed) as refused:
        client.chat.completions.create(model="o3-mini", messages=MESSAGES)
    assert refused.value.rule == "org acme openai deny o3*"
    assert provider.requests == []
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert provider.requests == ["/v1/chat/completions"]


def test_a_model_waiting_for_approval_is_refused_naming_the_rule_as_the_processor_does(guarded, provider, endpoint):
    """The processor lists an `on_approval` pattern not approved for the caller in `deny` (what every guard
    refuses) and in `on_approval`: the refusal is named as the processor names the call's violation."""
    endpoint.document = {**SPENT, "budget": None, "models": [
        {"level": "org acme", "provider": "openai", "allow": None, "deny": ["o1*", "o3*"], "on_approval": ["o3*"]}]}
    guarded("block")
    client = provider.openai()
    with pytest.raises(costline.ModelNotAllowed) as refused:
        client.chat.completions.create(model="o3-pro", messages=MESSAGES)
    assert refused.value.rule == "org acme openai on approval o3*"
    with pytest.raises(costline.ModelNotAllowed) as refused:
        client.chat.completions.create(model="o1-mini", messages=MESSAGES)
    assert refused.value.rule == "org acme openai deny o1*"
    assert provider.requests == []


def test_local_spend_between_refreshes_stops_a_burst(guarded, provider, endpoint):
    endpoint.document = OPEN_BUDGET
    spans = guarded("block")
    client = provider.openai()
    usage = {"x-fake-usage": json.dumps({"input": 5, "output": 6})}  # 11 tokens at $1000/MTok: $0.011 > $0.01
    with pytest.raises(costline.ModelNotAllowed):
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, extra_headers=usage)
    # The endpoint's figure stays $0.01 left: a refusal is the local estimate's.
    with pytest.raises(costline.BudgetExceeded) as refused:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert refused.value.rule == "team acme/marketing monthly"
    # A new answer that does not count the call yet (its span is still on its way) does not wipe it out.
    refresh_now(spans.guard)
    with pytest.raises(costline.BudgetExceeded):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert provider.requests == ["/v1/chat/completions"]
    # The next refresh asks for the rates of the models this caller used.
    asked = len(endpoint.queries)
    refresh_now(spans.guard)
    assert any("models=openai%2Fgpt-4o%2Copenai%2Fgpt-4o-mini" in q for q in endpoint.queries[asked:])


def test_spans_the_anthropic_sdk_makes_feed_the_local_spend_too(guarded, provider, endpoint):
    # With the SDK's tracing on, the call's span is the SDK's: its usage reaches the estimate as it ends, under the
    # caller the stamped fingerprint and owner keys name.
    endpoint.document = {**OPEN_BUDGET, "rates": {"anthropic/claude-3-5-haiku": {"input_per_mtok": 1000.0,
                                                                                 "output_per_mtok": 1000.0}}}
    spans = guarded("block")
    claude = provider.anthropic(open_telemetry={"tracer_provider": spans.provider})
    usage = {"x-fake-usage": json.dumps({"input": 5, "output": 6})}  # 11 tokens at $1000/MTok: $0.011 > $0.01
    claude.messages.create(model="claude-3-5-haiku", max_tokens=5, messages=MESSAGES, extra_headers=usage)
    assert spans.all()[-1].instrumentation_scope.name.startswith("com.anthropic.sdk")
    with pytest.raises(costline.BudgetExceeded):
        claude.messages.create(model="claude-3-5-haiku", max_tokens=5, messages=MESSAGES)
    assert provider.requests == ["/v1/messages"]


def test_warn_mode_lets_the_call_through_marks_the_span_and_logs_once(guarded, provider, caplog):
    spans = guarded("warn")
    client = provider.openai()
    with caplog.at_level(logging.WARNING, logger="costline.instrumentation.policy_guard"):
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert provider.requests == ["/v1/chat/completions"] * 2
    warnings = [r.getMessage() for r in caplog.records if "COSTLINE_GUARD=warn" in r.getMessage()]
    assert len(warnings) == 1 and "key acme/search/alice/laptop daily" in warnings[0]
    for span in spans.all():
        assert span.attributes["costline.guard.action"] == "warned"
        assert span.attributes["gen_ai.usage.output_tokens"] > 0
        assert "error.type" not in span.attributes


def test_warn_mode_marks_the_anthropic_sdks_own_span(guarded, provider, endpoint):
    # With the SDK's tracing on, the SDK makes the call's span (after the guard has judged): the verdict must
    # reach that span, on every kind of call.
    spans = guarded("warn")
    claude = provider.anthropic(open_telemetry={"tracer_provider": spans.provider})
    claude.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=MESSAGES)
    with claude.messages.stream(model="claude-haiku-4-5", max_tokens=5, messages=MESSAGES) as stream:
        for _ in stream.text_stream:
            pass
    assert provider.requests == ["/v1/messages"] * 2
    recorded = spans.all()
    assert len(recorded) == 2
    for span in recorded:
        assert span.instrumentation_scope.name.startswith("com.anthropic.sdk")  # the SDK's span, not Costline's
        assert span.attributes["costline.guard.action"] == "warned"
        assert span.attributes["costline.guard.rule"] == "key acme/search/alice/laptop daily"
        assert "error.type" not in span.attributes
    # Once the budget is back, the next call's span is not marked: a verdict belongs to its own call only.
    endpoint.document = {**SPENT, "budget": {"remaining_usd": 5.0, "bound_by": "key acme/search/alice/laptop daily"}}
    refresh_now(spans.guard)
    claude.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=MESSAGES)
    assert "costline.guard.action" not in spans.all()[-1].attributes


@pytest.mark.parametrize("fault", ["garbage", "not-a-policy", "hangs"])
def test_an_unusable_endpoint_fails_open_and_says_so_once(guarded, provider, endpoint, caplog, fault):
    if fault == "garbage":
        endpoint.document = b"<html>502 Bad Gateway</html>"
    elif fault == "not-a-policy":
        endpoint.document = {"models": "all", "budget": {"remaining_usd": "lots"}}
    else:
        endpoint.release.clear()  # the endpoint holds every answer until the test ends
    with caplog.at_level(logging.WARNING, logger="costline.instrumentation.policy_guard"):
        spans = guarded("block", guard_timeout="0.2")
        client = provider.openai()
        # The call path never waits on the endpoint: these go out while it still holds its answers.
        for _ in range(3):
            client.chat.completions.create(model="o3", messages=MESSAGES)
    assert provider.requests == ["/v1/chat/completions"] * 3
    assert spans.guard.refreshes == 0
    failing = [r.getMessage() for r in caplog.records if "failing open" in r.getMessage()]
    assert len(failing) == 1, failing
    assert all("costline.guard.action" not in s.attributes for s in spans.all())


def test_fail_closed_refuses_while_the_policy_is_unknown(guarded, provider, endpoint):
    endpoint.document = b"not json"
    guarded("block", guard_fail="closed")
    with pytest.raises(costline.GuardUnavailable) as refused:
        provider.openai().chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert "not JSON" in refused.value.rule
    assert provider.requests == []


def test_guard_off_by_default_asks_nothing(instrumented, provider, endpoint, monkeypatch):
    provider.openai().chat.completions.create(model="o3", messages=MESSAGES)
    assert provider.requests == ["/v1/chat/completions"] and endpoint.queries == []


KEY_BUDGET = "key acme/search/alice/laptop daily"
TEAM_BUDGET = "team acme/search monthly"
CENT = {"x-fake-usage": json.dumps({"input": 5, "output": 5})}  # 10 tokens at $1000/MTok: $0.01 a call


def as_the_processor_answers(key_left: float, team_left: float = 1000.0):
    """A policy answer as `costline serve` gives it: every budget the caller counts against, and rates only for the
    models the guard asked about (`models=`), none at `instrument()`."""
    def answer(query: dict[str, str]) -> dict:
        asked = query.get("models", "").split(",")
        return {"models": [], "budget": {"remaining_usd": f"{key_left:.12f}", "bound_by": KEY_BUDGET},
                "budgets": [{"remaining_usd": f"{key_left:.12f}", "bound_by": KEY_BUDGET},
                            {"remaining_usd": f"{team_left:.12f}", "bound_by": TEAM_BUDGET}],
                "rates": {m: {"input_per_mtok": 1000.0, "output_per_mtok": 1000.0} for m in asked if m},
                "refresh_s": 30}
    return answer


def test_a_burst_of_threads_stops_near_a_tiny_budget_from_the_first_call(guarded, provider, endpoint):
    # Five calls' worth of budget, 50 threads calling as fast as they can. The policy fetched at instrument()
    # carries no rates; the first call to a model asks for them at once, so its answer is priced and every thread
    # is stopped once the first wave is back: at most the budget plus the calls in flight, not a refresh
    # interval's worth (the endpoint's figure never moves, as when the spans have not reached the ledger).
    endpoint.document = as_the_processor_answers(key_left=0.05)
    provider.latency = 0.05
    guarded("block")
    client = provider.openai()
    threads, attempts = 50, 20

    def hammer() -> int:
        refused = 0
        for _ in range(attempts):
            try:
                client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, extra_headers=CENT)
            except costline.BudgetExceeded as err:
                assert err.rule == KEY_BUDGET
                refused += 1
        return refused

    with ThreadPoolExecutor(threads) as pool:
        refused = sum(pool.map(lambda _: hammer(), range(threads)))
    sent = len(provider.requests)
    assert sent + refused == threads * attempts
    assert sent <= 5 + threads, sent  # was every call: 1000 of 1000


def test_new_users_per_call_still_spend_the_keys_budget(guarded, provider, endpoint):
    # Spend counts against each budget the caller counts against, not against the (key, owner) combination: a
    # new `costline.owner(user=...)` per call does not start from an unspent budget.
    endpoint.document = as_the_processor_answers(key_left=0.05)
    spans = guarded("block")
    client = provider.openai()
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, extra_headers=CENT)
    poll(lambda: spans.guard.refreshes >= 3, 10, "no answer with the model's rates", interval=0.01)
    sent, refused = 0, []
    for n in range(300):
        with costline.owner(user=f"user-{n}"):
            try:
                client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, extra_headers=CENT)
                sent += 1
            except costline.BudgetExceeded as err:
                refused.append(err.rule)
    assert sent <= 5, sent  # was 300 of 300
    assert set(refused) == {KEY_BUDGET} and len(refused) == 300 - sent


def test_more_callers_than_the_cache_holds_do_not_push_out_the_keys_policy(guarded, provider, endpoint):
    # The key's budget is spent; then 300 owner combinations the endpoint never answers for (it holds every new
    # answer): each is judged by the key's policy, which no number of new callers evicts (was: fail open from the
    # 256th on).
    guarded("block", guard_timeout="0.2")
    endpoint.release.clear()
    client = provider.openai()
    for n in range(300):
        with costline.owner(user=f"user-{n}"), pytest.raises(costline.BudgetExceeded):
            client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert provider.requests == []


def refresh_now(guard: Guard) -> None:
    """Refresh every caller now, in this thread (the refresher's own pass refreshes only the callers due)."""
    for caller in guard.callers.snapshot():
        guard.refresher.refresh(caller)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def guard_over(answer, clock: Clock, **options) -> Guard:
    """A guard asking `answer(query)` instead of HTTP, on a clock the test moves (no refresher thread)."""
    asked: list[dict] = []

    def fetch(query: dict[str, str]) -> dict:
        asked.append(query)
        return answer(query)

    guard = Guard("block", fetch=fetch, clock=clock, refresh_s=30, hold_s=7, **options)
    guard.asked = asked  # type: ignore[attr-defined]
    return guard


def call_of(user: str = "", key: str = "fp-1") -> dict:
    attrs = {A.COSTLINE_API_KEY_FINGERPRINT: key, A.GEN_AI_PROVIDER_NAME: "openai", A.GEN_AI_REQUEST_MODEL: "gpt-4o"}
    if user:
        attrs[A.COSTLINE_USER] = user
    return attrs


def spend(guard: Guard, attrs: dict) -> PolicyError | None:
    """One call: judged, and if let through, ended with 10 tokens ($0.01 at the answer's rates)."""
    refusal, caller = guard.check_caller(attrs)
    if refusal is None:
        guard.record_call(caller, attrs, {A.GEN_AI_USAGE_INPUT_TOKENS: 5, A.GEN_AI_USAGE_OUTPUT_TOKENS: 5})
    return refusal


def test_a_refresh_keeps_the_spend_the_processor_has_not_counted_yet():
    # The processor's figure includes only what had reached its ledger: a call that ended less than `hold_s`
    # before the figure was asked for stays counted locally; older ones are taken as counted there.
    clock, left = Clock(), {"usd": 0.05}
    guard = guard_over(lambda q: as_the_processor_answers(left["usd"])(q), clock)
    guard.start(["fp-1"])
    guard.stop()
    assert spend(guard, call_of()) is None  # no rates yet: asked for at once, the tokens wait for them
    clock.now += 0.1
    refresh_now(guard)
    assert "openai/gpt-4o" in guard.asked[-1]["models"]
    for _ in range(3):
        assert spend(guard, call_of()) is None
    clock.now += 1
    refresh_now(guard)  # the processor has not seen these four calls yet: $0.01 left, not $0.05
    assert spend(guard, call_of()) is None
    assert isinstance(spend(guard, call_of()), BudgetExceeded)
    # Ten seconds later the ledger has the five calls: its figure counts them, and they are not counted twice.
    clock.now += 10
    left["usd"] = 0.0
    refresh_now(guard)
    left["usd"] = 0.03
    clock.now += 10
    refresh_now(guard)  # say the day's budget was raised: the figure is trusted again
    assert spend(guard, call_of()) is None


def test_local_spend_past_half_the_remaining_budget_asks_again_at_once():
    clock = Clock()
    guard = guard_over(as_the_processor_answers(0.05), clock)
    guard.start(["fp-1"])
    guard.stop()
    spend(guard, call_of())
    refresh_now(guard)  # the rates
    (base,) = [c for c in guard.callers.entries.values() if c.fingerprint == "fp-1"]
    spend(guard, call_of())  # $0.02 of $0.05: not yet half
    assert base.due_at > clock.now
    spend(guard, call_of())  # $0.03: past half, due now
    assert base.due_at <= clock.now
    refresh_now(guard)
    clock.now += 0.5
    spend(guard, call_of())
    assert base.due_at > clock.now  # at most once a second per budget
    clock.now += 0.6
    spend(guard, call_of())
    assert base.due_at <= clock.now


def test_each_budget_counts_the_spend_of_every_caller_it_binds():
    # Two keys of one team: each has its own budget, both spend the team's.
    clock = Clock()

    def answer(query: dict[str, str]) -> dict:
        key = query.get("key", "")
        return {"models": [], "budgets": [{"remaining_usd": "0.03", "bound_by": "team acme/search monthly"},
                                          {"remaining_usd": "1.0", "bound_by": f"key acme/search/u/{key} daily"}],
                "rates": {"openai/gpt-4o": {"input_per_mtok": 1000.0, "output_per_mtok": 1000.0}}}

    guard = guard_over(answer, clock)
    guard.start(["fp-1", "fp-2"])
    guard.stop()
    assert spend(guard, call_of(key="fp-1")) is None
    assert spend(guard, call_of(user="someone-else", key="fp-1")) is None  # judged by the key's policy
    assert spend(guard, call_of(key="fp-2")) is None
    refused = spend(guard, call_of(user="a-new-user", key="fp-2"))
    assert isinstance(refused, BudgetExceeded) and refused.rule == "team acme/search monthly"


# --- limits: hard and soft, USD and tokens, per model (a processor that sends `limits`) ------------------------------

def _limits(*limits: dict) -> dict:
    return {"models": [], "budget": None, "budgets": [], "limits": list(limits), "rates": {}, "refresh_s": 30}


def test_a_spent_soft_budget_warns_and_never_blocks(guarded, provider, endpoint, caplog):
    endpoint.document = _limits({"bound_by": "customer globex weekly soft", "unit": "usd", "mode": "soft",
                                 "remaining": "-1.000000000000"})
    spans = guarded("block")
    with caplog.at_level(logging.WARNING, logger="costline.instrumentation.policy_guard"):
        provider.openai().chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert provider.requests == ["/v1/chat/completions"]
    [span] = spans.all()
    assert span.attributes["costline.guard.action"] == "warned"
    assert span.attributes["costline.guard.rule"] == "customer globex weekly soft"
    assert any("customer globex weekly soft is spent" in r.getMessage() and "a soft budget only warns" in
               r.getMessage() for r in caplog.records)


def test_a_hard_budget_behind_a_spent_soft_one_still_blocks(guarded, provider, endpoint):
    endpoint.document = _limits(
        {"bound_by": "team acme/search weekly soft", "unit": "usd", "mode": "soft", "remaining": "-5"},
        {"bound_by": "org acme quarterly", "unit": "usd", "mode": "hard", "remaining": "-0.5"})
    guarded("block")
    with pytest.raises(costline.BudgetExceeded) as refused:
        provider.openai().chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert refused.value.rule == "org acme quarterly" and provider.requests == []


def test_a_token_budget_counts_the_calls_tokens_locally(guarded, provider, endpoint):
    # 30 tokens left: the fake provider's answer uses more, so the first call spends it and the second is refused,
    # before any refresh and without a rate (tokens need no price).
    endpoint.document = _limits({"bound_by": "team acme/search weekly tokens", "unit": "tokens", "mode": "hard",
                                 "remaining": 30})
    guarded("block")
    client = provider.openai()
    client.chat.completions.create(model="no-rate-model", messages=MESSAGES)
    with pytest.raises(costline.BudgetExceeded) as refused:
        client.chat.completions.create(model="no-rate-model", messages=MESSAGES)
    assert refused.value.rule == "team acme/search weekly tokens" and "tokens" in str(refused.value)
    assert provider.requests == ["/v1/chat/completions"]


def test_a_model_budget_binds_only_that_models_calls(guarded, provider, endpoint):
    endpoint.document = _limits({"bound_by": "model gpt-4o monthly", "unit": "usd", "mode": "hard",
                                 "remaining": "-1", "model": "gpt-4o"})
    guarded("block")
    client = provider.openai()
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # another model: not bound
    with pytest.raises(costline.BudgetExceeded) as refused:
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert refused.value.rule == "model gpt-4o monthly"
    assert provider.requests == ["/v1/chat/completions"]
