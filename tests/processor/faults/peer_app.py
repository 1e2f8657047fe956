"""An application instrumented by a peer (OpenInference or OpenLLMetry) that records everything it can: prompts,
embedding input, the end user, tool definitions, a failed call whose error quotes the API key. Exports over real
OTLP/HTTP to `costline serve`.

    python peer_app.py SETUP OTLP_TRACES_URL

SETUP: `openinference` or `openllmetry`. The SDKs talk to `costline.testing.fake_provider` through
`httpx2.MockTransport`, except that a request with the wrong key gets OpenAI's 401 quoting that key.
"""

from __future__ import annotations

import json
import sys

PROMPT = "the secret plan for the product launch"
EMBEDDED = "customer letter: please cancel my account"
END_USER = "alice@example.com"
GOOD_KEY = "sk-proj-peerapp0123456789abcdefGOOD"
WRONG_KEY = "sk-proj-peerapp0123456789abcdefWRONG"
ANTHROPIC_KEY = "sk-ant-api03-peerapp0123456789abcdef-XYZ"
SECRETS = (PROMPT, EMBEDDED, END_USER, GOOD_KEY, WRONG_KEY, ANTHROPIC_KEY, "peerapp0123456789")
"""Strings that must not reach the forwarding downstream in any form (the last: any key, however masked)."""
APP_SPAN = "handle /checkout"
APP_ATTRIBUTE = ("app.cart.items", 3)
TOOL = {"type": "function", "function": {"name": "lookup_order", "description": "find an order by id",
                                        "parameters": {"type": "object", "properties": {"id": {"type": "string"}}}}}


def main(setup: str, endpoint: str) -> None:
    import httpx2
    import openai
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    from costline.testing.fake_provider import mock_transport_handler

    provider = TracerProvider(resource=Resource.create({
        "service.name": "checkout",
        # The process resource detector records the command line, keys passed as flags included.
        "process.command_line": f"python app.py --openai-key {GOOD_KEY}",
    }))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    if setup == "openinference":
        from openinference.instrumentation.openai import OpenAIInstrumentor

        OpenAIInstrumentor().instrument(tracer_provider=provider)
    elif setup == "openllmetry":
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor

        OpenAIInstrumentor().instrument(tracer_provider=provider)
    else:
        raise SystemExit(f"unknown setup {setup}")

    def handler(request: httpx2.Request) -> httpx2.Response:
        if request.headers.get("authorization") != f"Bearer {GOOD_KEY}":
            key = request.headers.get("authorization", "").removeprefix("Bearer ")
            return httpx2.Response(401, json={"error": {
                "message": f"Incorrect API key provided: {key}. You can find your API key at "
                           "https://platform.openai.com/account/api-keys.",
                "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}})
        return mock_transport_handler(request)

    def client(key: str) -> openai.OpenAI:
        return openai.OpenAI(api_key=key, max_retries=0,
                             http_client=httpx2.Client(transport=httpx2.MockTransport(handler)))

    good, wrong = client(GOOD_KEY), client(WRONG_KEY)
    tracer = provider.get_tracer("checkout.app")
    messages = [{"role": "system", "content": PROMPT}, {"role": "user", "content": PROMPT}]
    with tracer.start_as_current_span(APP_SPAN) as app_span:
        app_span.set_attribute(*APP_ATTRIBUTE)
        app_span.set_attribute("app.note", f"configured with {ANTHROPIC_KEY}")
        good.chat.completions.create(model="gpt-4o", messages=messages, user=END_USER, tools=[TOOL],
                                     extra_headers={"x-fake-usage": json.dumps({"input": 1000, "output": 50})})
        good.embeddings.create(model="text-embedding-3-small", input=[EMBEDDED])
        try:
            wrong.chat.completions.create(model="gpt-4o", messages=messages, user=END_USER)
        except openai.AuthenticationError as err:
            app_span.record_exception(err)
        with tracer.start_as_current_span(f"retry with {WRONG_KEY}"):
            pass
    provider.shutdown()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
