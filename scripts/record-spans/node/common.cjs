// What every recorder shares: the OpenTelemetry SDK with a real OTLP/HTTP JSON exporter pointed at the capture
// server `record.py` runs (COSTLINE_RECORD_OTLP), the fake provider's URLs, the usage each call asks it for, and
// the line the recorder prints for the fixture's `package` and `version`.
//
// The SDK modules come through the caller's `require`: each package folder (vercel-ai/, peers/) has its own
// node_modules, and this file, outside both, would not resolve them itself.
'use strict';

// The exact usage each call of the workload asks the fake provider for (`x-fake-usage`; its `input` is the semconv
// total, cache included: for Anthropic it sends `input_tokens` = input - cached - cache_write). The same numbers are
// `record.py`'s USAGE: keep the two equal.
const USAGE = {
  chat: { input: 1000, cached: 0, cache_write: 0, output: 50 },
  stream: { input: 800, cached: 0, cache_write: 0, output: 40 },
  cached: { input: 2000, cached: 1500, cache_write: 0, output: 30 },
  anthropic_cached: { input: 3000, cached: 2000, cache_write: 500, output: 60 },
  anthropic_stream: { input: 700, cached: 0, cache_write: 0, output: 20 },
  embeddings: { input: 64, cached: 0, cache_write: 0, output: 0 },
};

function usageHeader(name) {
  return { 'x-fake-usage': JSON.stringify(USAGE[name]) };
}

function env(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run this through scripts/record-spans/node/record.py`);
  return value;
}

// A tracer provider exporting each span as it ends (SimpleSpanProcessor: one OTLP request per span, so the fixture
// also has children exported before their parents, as small batches do), registered globally with an async-hooks
// context manager so parent/child links are real.
function tracing(req, serviceName) {
  const api = req('@opentelemetry/api');
  const { TracerProvider, SimpleSpanProcessor } = req('@opentelemetry/sdk-trace');
  const { OTLPTraceExporter } = req('@opentelemetry/exporter-trace-otlp-http');
  const { resourceFromAttributes } = req('@opentelemetry/resources');
  const { AsyncLocalStorageContextManager } = req('@opentelemetry/context-async-hooks');
  const exporter = new OTLPTraceExporter({ url: env('COSTLINE_RECORD_OTLP') });
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ 'service.name': serviceName }),
    spanProcessors: [new SimpleSpanProcessor({ exporter })],
  });
  api.context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  api.trace.setGlobalTracerProvider(provider);
  return provider;
}

// A direct dependency's package.json (name and version), read from the package folder the recorder runs in: not
// every package exports its package.json, and an npm alias (`anthropic-sdk-0`) names the real package inside.
function manifest(req, name) {
  const path = req('path');
  const fs = req('fs');
  return JSON.parse(fs.readFileSync(path.join(process.cwd(), 'node_modules', name, 'package.json'), 'utf8'));
}

// The recorder's last stdout line: what produced the spans.
function report(req, packages) {
  const found = packages.map((name) => manifest(req, name));
  console.log(JSON.stringify({
    package: found.map((meta) => meta.name).join(' + '),
    version: found.map((meta) => meta.version).join(' + '),
  }));
}

module.exports = {
  USAGE, usageHeader, tracing, report,
  openaiBaseURL: () => env('COSTLINE_RECORD_OPENAI_BASE_URL'),
  anthropicBaseURL: () => env('COSTLINE_RECORD_ANTHROPIC_BASE_URL'),
};
