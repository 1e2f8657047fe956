// Vercel AI SDK (`ai` with `experimental_telemetry`): chat, stream, cached chat and embeddings through
// @ai-sdk/openai (chat completions), cached chat and stream through @ai-sdk/anthropic, all against the fake provider.
'use strict';
const common = require('../common.cjs');

async function main() {
  const provider = common.tracing(require, 'vercel-ai-recorder');
  const { generateText, streamText, embed } = require('ai');
  const { createOpenAI } = require('@ai-sdk/openai');
  const { createAnthropic } = require('@ai-sdk/anthropic');
  const openai = createOpenAI({ baseURL: common.openaiBaseURL(), apiKey: 'sk-record' });
  const anthropic = createAnthropic({ baseURL: `${common.anthropicBaseURL()}/v1`, apiKey: 'sk-ant-record' });
  const telemetry = { isEnabled: true, functionId: 'record' };
  const ask = (name) => ({ prompt: 'Say something short.', headers: common.usageHeader(name),
    experimental_telemetry: telemetry, maxRetries: 0 });

  await generateText({ model: openai.chat('gpt-4o-mini'), ...ask('chat') });
  const stream = streamText({ model: openai.chat('gpt-4o-mini'), ...ask('stream') });
  for await (const _ of stream.textStream) { /* read to the end, as an app does */ }
  await generateText({ model: openai.chat('gpt-4o-mini'), ...ask('cached') });
  await generateText({ model: anthropic('claude-haiku-4-5'), ...ask('anthropic_cached') });
  const anthropicStream = streamText({ model: anthropic('claude-haiku-4-5'), ...ask('anthropic_stream') });
  for await (const _ of anthropicStream.textStream) { /* read to the end */ }
  await embed({ model: openai.embedding('text-embedding-3-small'), value: 'Costline counts every token.',
    headers: common.usageHeader('embeddings'), experimental_telemetry: telemetry, maxRetries: 0 });

  await provider.forceFlush();
  await provider.shutdown();
  common.report(require, ['ai', '@ai-sdk/openai', '@ai-sdk/anthropic']);
}

main().catch((err) => { console.error(err); process.exit(1); });
