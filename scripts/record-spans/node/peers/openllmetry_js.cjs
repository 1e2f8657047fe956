// OpenLLMetry-JS (`@traceloop/node-server-sdk`): its OpenAI and Anthropic instrumentations, initialised as its docs
// say (`traceloop.initialize`, modules passed explicitly), exporting through the recorder's OTLP/HTTP exporter.
'use strict';
const common = require('../common.cjs');
const { openaiCalls, anthropicCalls, clients } = require('./workload.cjs');

async function main() {
  const traceloop = require('@traceloop/node-server-sdk');
  const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-http');
  const OpenAI = require('openai').OpenAI;
  const anthropicModule = require('anthropic-sdk-0');  // 0.x: the instrumentation patches `Completions`, gone in 1.x
  const Anthropic = anthropicModule.Anthropic;
  traceloop.initialize({
    appName: 'openllmetry-js-recorder', disableBatch: true, silenceInitializationMessage: true,
    traceloopSyncEnabled: false, exporter: new OTLPTraceExporter({ url: process.env.COSTLINE_RECORD_OTLP }),
    instrumentModules: { openAI: OpenAI, anthropic: anthropicModule },
  });
  // The Anthropic SDK's own spans (on by default) are a second source on the same calls: off to record
  // OpenLLMetry's alone, on (COSTLINE_RECORD_SDK_SPANS=1) to record both.
  const sdkSpans = process.env.COSTLINE_RECORD_SDK_SPANS === '1';
  const { openai, anthropic } = clients(OpenAI, class extends Anthropic {
    constructor(options) { super({ ...options, openTelemetry: sdkSpans ? undefined : false }); }
  });
  if (process.env.COSTLINE_RECORD_ONLY !== 'anthropic') {
    await openaiCalls(openai, { embeddings: false });  // not instrumented: no span to record
  }
  await anthropicCalls(anthropic);
  await traceloop.forceFlush();
  common.report(require, ['@traceloop/node-server-sdk', '@traceloop/instrumentation-openai',
    '@traceloop/instrumentation-anthropic', 'openai', 'anthropic-sdk-0']);
}

main().catch((err) => { console.error(err); process.exit(1); });
