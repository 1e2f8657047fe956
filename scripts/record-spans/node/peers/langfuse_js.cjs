// Langfuse JS v5 (`@langfuse/openai`'s `observeOpenAI` over `@langfuse/tracing`): its spans go to the global tracer
// provider, exported here by OTLP as a Costline user beside Langfuse's own `LangfuseSpanProcessor` would.
'use strict';
const common = require('../common.cjs');
const { openaiCalls, clients } = require('./workload.cjs');

async function main() {
  const provider = common.tracing(require, 'langfuse-js-recorder');
  const { observeOpenAI } = require('@langfuse/openai');
  const { OpenAI } = require('openai');
  await openaiCalls(observeOpenAI(clients(OpenAI).openai));
  await provider.forceFlush();
  await provider.shutdown();
  common.report(require, ['@langfuse/openai', '@langfuse/tracing', 'openai']);
}

main().catch((err) => { console.error(err); process.exit(1); });
