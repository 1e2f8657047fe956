// The official `@opentelemetry/instrumentation-openai`: enabled before `openai` is required (it hooks the require),
// the OpenAI workload.
'use strict';
const common = require('../common.cjs');
const { openaiCalls, clients } = require('./workload.cjs');

async function main() {
  const provider = common.tracing(require, 'otel-openai-js-recorder');
  const { OpenAIInstrumentation } = require('@opentelemetry/instrumentation-openai');
  const instrumentation = new OpenAIInstrumentation();
  instrumentation.setTracerProvider(provider);
  // Its metric instruments are made in the base constructor and then reset by the subclass's own field
  // declarations, so a stream fails on `undefined.record` until a meter provider is set (the NodeSDK always sets
  // one): the global no-op one is enough.
  instrumentation.setMeterProvider(require('@opentelemetry/api').metrics.getMeterProvider());
  instrumentation.enable();
  const { OpenAI } = require('openai');
  await openaiCalls(clients(OpenAI).openai);
  await provider.forceFlush();
  await provider.shutdown();
  common.report(require, ['@opentelemetry/instrumentation-openai', 'openai']);
}

main().catch((err) => { console.error(err); process.exit(1); });
