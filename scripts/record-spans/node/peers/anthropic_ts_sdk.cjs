// The Anthropic TypeScript SDK's own spans (`@anthropic-ai/sdk` 1.x traces every API call to the global tracer
// provider unless told not to): the Anthropic workload.
'use strict';
const common = require('../common.cjs');
const { anthropicCalls, clients } = require('./workload.cjs');

async function main() {
  const provider = common.tracing(require, 'anthropic-ts-recorder');
  const { Anthropic } = require('@anthropic-ai/sdk');
  await anthropicCalls(clients(null, Anthropic).anthropic);
  await provider.forceFlush();
  await provider.shutdown();
  common.report(require, ['@anthropic-ai/sdk']);
}

main().catch((err) => { console.error(err); process.exit(1); });
