// The workload every recorder in this folder runs through the official `openai` and `@anthropic-ai/sdk` clients:
// chat, stream (with `stream_options.include_usage`, as a careful app asks), cached chat and embeddings on OpenAI;
// cached chat and stream on Anthropic. Each call asks the fake provider for its exact usage (`x-fake-usage`).
'use strict';
const common = require('../common.cjs');

const PROMPT = [{ role: 'user', content: 'Say something short.' }];

async function openaiCalls(client, { embeddings = true } = {}) {
  const options = (name) => ({ headers: common.usageHeader(name) });
  await client.chat.completions.create({ model: 'gpt-4o-mini', messages: PROMPT }, options('chat'));
  const stream = await client.chat.completions.create(
    { model: 'gpt-4o-mini', messages: PROMPT, stream: true, stream_options: { include_usage: true } },
    options('stream'));
  for await (const _ of stream) { /* read to the end, as an app does */ }
  await client.chat.completions.create({ model: 'gpt-4o-mini', messages: PROMPT }, options('cached'));
  if (embeddings) {
    await client.embeddings.create({ model: 'text-embedding-3-small', input: 'Costline counts every token.' },
      options('embeddings'));
  }
}

async function anthropicCalls(client) {
  const options = (name) => ({ headers: common.usageHeader(name) });
  await client.messages.create({ model: 'claude-haiku-4-5', max_tokens: 100, messages: PROMPT },
    options('anthropic_cached'));
  const stream = await client.messages.create(
    { model: 'claude-haiku-4-5', max_tokens: 100, messages: PROMPT, stream: true }, options('anthropic_stream'));
  for await (const _ of stream) { /* read to the end */ }
}

function clients(OpenAI, Anthropic) {
  return {
    openai: OpenAI && new OpenAI({ baseURL: common.openaiBaseURL(), apiKey: 'sk-record', maxRetries: 0 }),
    anthropic: Anthropic && new Anthropic({ baseURL: common.anthropicBaseURL(), apiKey: 'sk-ant-record',
      maxRetries: 0 }),
  };
}

module.exports = { openaiCalls, anthropicCalls, clients };
