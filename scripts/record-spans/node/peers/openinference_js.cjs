// OpenInference JS (`@arizeai/openinference-instrumentation-openai`): the OpenAI workload, instrumented manually as
// its README shows for CommonJS apps that load `openai` before registering instrumentations.
'use strict';
const common = require('../common.cjs');
const { openaiCalls, clients } = require('./workload.cjs');

async function main() {
  const provider = common.tracing(require, 'openinference-js-recorder');
  const { OpenAIInstrumentation } = require('@arizeai/openinference-instrumentation-openai');
  const openaiModule = require('openai');
  const instrumentation = new OpenAIInstrumentation();
  instrumentation.setTracerProvider(provider);
  instrumentation.manuallyInstrument(openaiModule);
  await openaiCalls(clients(openaiModule.OpenAI).openai);
  await provider.forceFlush();
  await provider.shutdown();
  common.report(require, ['@arizeai/openinference-instrumentation-openai', 'openai']);
}

main().catch((err) => { console.error(err); process.exit(1); });
