// The OpenAI-compatible surface, proven with the clients people use: the official `openai`
// package and the Vercel AI SDK (`ai` + `@ai-sdk/openai-compatible`), against our fake upstream.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { generateText, jsonSchema, streamText, tool } from 'ai';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { startFakeUpstream, type FakeUpstream } from './support/fake-upstream.js';
import { countingTool, writerAgent } from './support/openai-fixtures.js';
import { post, startApp, type TestApp } from './support/app.js';

const KEY = 'openai-surface-key';
let fake: FakeUpstream;
let t: TestApp;

const { tool: counter, counted } = countingTool();
const writer = writerAgent;

beforeAll(async () => {
  fake = await startFakeUpstream();
  t = await startApp(
    { OPENAI_BASE_URL: fake.url, CHASSIS_API_KEY: KEY, MAX_AGENT_STEPS: '4', MAX_MESSAGES_PER_REQUEST: '3', MAX_MESSAGE_LENGTH: '50', OPENAI_MODEL: 'deployment-model' },
    { tools: [counter], agents: [writer] },
  );
});
afterAll(async () => {
  await t.close();
  await fake.close();
});
beforeEach(() => {
  fake.reset();
  counted.runs = 0;
});

const client = (baseURL = `${t.url}/v1`, apiKey = KEY) => new OpenAI({ apiKey, baseURL, maxRetries: 0 });
const toolNames = (request: { body: any }) => (request.body.tools ?? []).map((spec: any) => spec.function.name).sort();
const weatherTool = {
  type: 'function' as const,
  function: { name: 'get_weather', description: 'Weather for a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } },
};

async function collect(stream: AsyncIterable<OpenAI.Chat.Completions.ChatCompletionChunk>) {
  const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return chunks;
}

describe('official openai package: chat.completions', () => {
  it('answers JSON as a chat.completion with usage summed over the run', async () => {
    fake.script({ kind: 'text', content: 'Hello there, friend', usage: { prompt_tokens: 7, completion_tokens: 3 } });
    const completion = await client().chat.completions.create({ model: 'default', messages: [{ role: 'user', content: 'hi' }] });
    expect(completion.object).toBe('chat.completion');
    expect(completion.id).toMatch(/^chatcmpl-/);
    expect(completion.model).toBe('default');
    expect(completion.choices).toHaveLength(1);
    expect(completion.choices[0]!.message).toMatchObject({ role: 'assistant', content: 'Hello there, friend' });
    expect(completion.choices[0]!.finish_reason).toBe('stop');
    expect(completion.usage).toEqual({ prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 });
    // The default agent: the deployment's model and every server tool, the client's messages as sent.
    expect(fake.requests[0]!.body.model).toBe('deployment-model');
    expect(fake.requests[0]!.body.messages).toEqual([{ role: 'user', content: 'hi' }]);
    expect(toolNames(fake.requests[0]!)).toContain('counter');
  });

  it('streams chunks as OpenAI does: role first, deltas, finish_reason, usage chunk, [DONE]', async () => {
    fake.script({ kind: 'text', content: 'Streaming words arrive', chunkSize: 3, usage: { prompt_tokens: 5, completion_tokens: 4 } });
    const response = await fetch(`${t.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
      body: JSON.stringify({ model: 'default', messages: [{ role: 'user', content: 'hi' }], stream: true, stream_options: { include_usage: true } }),
    });
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const raw = await response.text();
    const frames = raw.split('\n\n').filter((frame) => frame.startsWith('data: ')).map((frame) => frame.slice(6));
    expect(frames.at(-1)).toBe('[DONE]');
    const chunks = frames.slice(0, -1).map((frame) => JSON.parse(frame));
    expect(chunks.every((chunk) => chunk.object === 'chat.completion.chunk' && chunk.id === chunks[0].id)).toBe(true);
    expect(chunks[0].choices[0].delta).toEqual({ role: 'assistant', content: '', refusal: null });
    const usageChunk = chunks.at(-1);
    expect(usageChunk.choices).toEqual([]);
    expect(usageChunk.usage).toEqual({ prompt_tokens: 5, completion_tokens: 4, total_tokens: 9 });
    const finish = chunks.at(-2);
    expect(finish.choices[0]).toMatchObject({ delta: {}, finish_reason: 'stop' });
    expect(chunks.slice(0, -1).every((chunk) => chunk.usage === null)).toBe(true);
    const text = chunks.map((chunk) => chunk.choices[0]?.delta?.content ?? '').join('');
    expect(text).toBe('Streaming words arrive');
    expect(chunks.filter((chunk) => chunk.choices[0]?.delta?.content).length).toBeGreaterThan(3);
  });

  it('the SDK reads the stream with include_usage', async () => {
    fake.script({ kind: 'text', content: 'From the SDK stream', usage: { prompt_tokens: 2, completion_tokens: 4 } });
    const chunks = await collect(
      await client().chat.completions.create({ model: 'default', messages: [{ role: 'user', content: 'hi' }], stream: true, stream_options: { include_usage: true } }),
    );
    expect(chunks.map((chunk) => chunk.choices[0]?.delta.content ?? '').join('')).toBe('From the SDK stream');
    expect(chunks.at(-1)!.usage).toEqual({ prompt_tokens: 2, completion_tokens: 4, total_tokens: 6 });
    // Without include_usage, no usage chunk and no usage field.
    fake.script({ kind: 'text', content: 'No usage' });
    const plain = await collect(await client().chat.completions.create({ model: 'default', messages: [{ role: 'user', content: 'hi' }], stream: true }));
    expect(plain.every((chunk) => chunk.usage === undefined && chunk.choices.length === 1)).toBe(true);
    expect(plain.at(-1)!.choices[0]!.finish_reason).toBe('stop');
  });

  it('streamed and non-streamed answers are equal for the same prompt, server tools included', async () => {
    const steps = () => {
      fake.script(
        { kind: 'tool_calls', calls: [{ name: 'counter', arguments: '{}' }], content: 'Let me count. ', usage: { prompt_tokens: 3, completion_tokens: 2 } },
        { kind: 'text', content: 'Counted once.', reasoning: 'The tool said ran 1', usage: { prompt_tokens: 6, completion_tokens: 3 } },
      );
    };
    steps();
    const json = await client().chat.completions.create({ model: 'default', messages: [{ role: 'user', content: 'count' }] });
    steps();
    const chunks = await collect(
      await client().chat.completions.create({ model: 'default', messages: [{ role: 'user', content: 'count' }], stream: true, stream_options: { include_usage: true } }),
    );
    expect(counted.runs).toBe(2);
    const streamed = chunks.map((chunk) => chunk.choices[0]?.delta.content ?? '').join('');
    const reasoning = chunks.map((chunk) => (chunk.choices[0]?.delta as any)?.reasoning_content ?? '').join('');
    expect(json.choices[0]!.message.content).toBe('Let me count. Counted once.');
    expect(streamed).toBe(json.choices[0]!.message.content);
    expect((json.choices[0]!.message as any).reasoning_content).toBe('The tool said ran 1');
    expect(reasoning).toBe('The tool said ran 1');
    expect(chunks.at(-1)!.usage).toEqual(json.usage);
    expect(json.usage).toEqual({ prompt_tokens: 9, completion_tokens: 5, total_tokens: 14 });
    // Server-side tool activity never reaches a strict client as tool_calls.
    expect(json.choices[0]!.message.tool_calls).toBeUndefined();
    expect(chunks.some((chunk) => chunk.choices[0]?.delta.tool_calls !== undefined)).toBe(false);
    expect(json.choices[0]!.finish_reason).toBe('stop');
  });

  it('client-side tools: the call comes back as tool_calls, the tool message continues the run', async () => {
    fake.script({ kind: 'tool_calls', calls: [{ id: 'call_weather_1', name: 'get_weather', arguments: '{"city":"Paris"}' }] });
    const messages: OpenAI.Chat.Completions.ChatCompletionMessageParam[] = [{ role: 'user', content: 'Weather in Paris?' }];
    const first = await client().chat.completions.create({ model: 'default', messages, tools: [weatherTool] });
    expect(first.choices[0]!.finish_reason).toBe('tool_calls');
    expect(first.choices[0]!.message.content).toBeNull();
    expect(first.choices[0]!.message.tool_calls).toEqual([{ id: 'call_weather_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }]);
    // Server and client tools are offered together; the loop stopped after one model call.
    expect(toolNames(fake.requests[0]!)).toEqual(['calculate', 'counter', 'get_server_time', 'get_weather']);
    expect(fake.requests).toHaveLength(1);

    fake.script({ kind: 'text', content: 'It is sunny in Paris.' });
    messages.push(first.choices[0]!.message, { role: 'tool', tool_call_id: 'call_weather_1', content: '{"sky":"sunny"}' });
    const second = await client().chat.completions.create({ model: 'default', messages, tools: [weatherTool] });
    expect(second.choices[0]!.message.content).toBe('It is sunny in Paris.');
    expect(second.choices[0]!.finish_reason).toBe('stop');
    const sent = fake.requests[1]!.body.messages;
    expect(sent.at(-2)).toMatchObject({ role: 'assistant', tool_calls: [{ id: 'call_weather_1', function: { name: 'get_weather' } }] });
    expect(sent.at(-1)).toEqual({ role: 'tool', tool_call_id: 'call_weather_1', content: '{"sky":"sunny"}' });
  });

  it('client-side tools in a stream: one tool_calls delta, finish_reason tool_calls', async () => {
    fake.script({ kind: 'tool_calls', calls: [{ id: 'call_w', name: 'get_weather', arguments: '{"city":"Oslo"}' }] });
    const chunks = await collect(
      await client().chat.completions.create({ model: 'default', messages: [{ role: 'user', content: 'Oslo?' }], tools: [weatherTool], stream: true }),
    );
    const calls = chunks.flatMap((chunk) => chunk.choices[0]?.delta.tool_calls ?? []);
    expect(calls).toEqual([{ index: 0, id: 'call_w', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Oslo"}' } }]);
    expect(chunks.at(-1)!.choices[0]!.finish_reason).toBe('tool_calls');
  });

  it('mixed tools: server tools run across steps; in a message calling both, only the client call leaves and the server one is not run', async () => {
    fake.script(
      { kind: 'tool_calls', calls: [{ name: 'counter', arguments: '{}' }] },
      { kind: 'tool_calls', calls: [{ id: 'call_c', name: 'counter', arguments: '{}' }, { id: 'call_g', name: 'get_weather', arguments: '{"city":"Rome"}' }] },
    );
    const answer = await client().chat.completions.create({ model: 'default', messages: [{ role: 'user', content: 'go' }], tools: [weatherTool] });
    expect(counted.runs).toBe(1);
    expect(answer.choices[0]!.finish_reason).toBe('tool_calls');
    expect(answer.choices[0]!.message.tool_calls!.map((call) => call.id)).toEqual(['call_g']);
    // The second model call saw the first server tool's result.
    expect(fake.requests[1]!.body.messages.at(-1)).toMatchObject({ role: 'tool', content: 'ran 1' });
  });

  it('an unknown model is an OpenAI 404 the SDK raises as NotFoundError', async () => {
    const error = await client()
      .chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] })
      .catch((thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(OpenAI.NotFoundError);
    const apiError = error as InstanceType<typeof OpenAI.NotFoundError>;
    expect(apiError.status).toBe(404);
    expect(apiError.code).toBe('model_not_found');
    expect(apiError.param).toBe('model');
    expect(apiError.type).toBe('not_found_error');
    expect(fake.requests).toHaveLength(0);
  });

  it('an upstream failure during a stream reaches the SDK as an APIError, not a silent end', async () => {
    fake.script({ kind: 'status', status: 400, body: { error: { message: 'bad', type: 'invalid_request_error' } } });
    const stream = await client().chat.completions.create({ model: 'default', messages: [{ role: 'user', content: 'hi' }], stream: true });
    const error = await collect(stream).catch((thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect((error as InstanceType<typeof OpenAI.APIError>).code).toBe('upstream_bad_request');
    // Non-streaming: the HTTP status says it.
    fake.script({ kind: 'status', status: 400, body: { error: { message: 'bad', type: 'invalid_request_error' } } });
    const json = await client()
      .chat.completions.create({ model: 'default', messages: [{ role: 'user', content: 'hi' }] })
      .catch((thrown: unknown) => thrown);
    expect(json).toBeInstanceOf(OpenAI.APIError);
    expect((json as InstanceType<typeof OpenAI.APIError>).status).toBe(502);
  });

  it('lists the default agent and the catalog agents as models', async () => {
    const models = [];
    for await (const model of client().models.list()) models.push(model);
    expect(models.map((model) => model.id)).toEqual(['default', ...t.app.chassis.agents.list().map((agent) => agent.name)]);
    expect(models.map((model) => model.id)).toContain('writer');
    expect(models[0]).toMatchObject({ object: 'model', owned_by: 'agent-chassis' });
    expect(typeof models[0]!.created).toBe('number');
    expect((await client().models.retrieve('writer')).id).toBe('writer');
    await expect(client().models.retrieve('nope')).rejects.toBeInstanceOf(OpenAI.NotFoundError);
  });

  it('a catalog agent brings its instructions, upstream model, settings and tools', async () => {
    fake.script({ kind: 'text', content: 'Written.' });
    const answer = await client().chat.completions.create({ model: 'writer', messages: [{ role: 'user', content: 'write' }] });
    expect(answer.model).toBe('writer');
    const sent = fake.requests[0]!.body;
    expect(sent.model).toBe('writer-upstream-model');
    expect(sent.temperature).toBe(0.2);
    expect(sent.messages).toEqual([
      { role: 'system', content: 'You are a careful writer.' },
      { role: 'user', content: 'write' },
    ]);
    expect(toolNames(fake.requests[0]!)).toEqual(['counter']);
  });

  it('answers the same under /api/v1/openai/v1', async () => {
    fake.script({ kind: 'text', content: 'Alias works' });
    const answer = await client(`${t.url}/api/v1/openai/v1`).chat.completions.create({ model: 'default', messages: [{ role: 'user', content: 'hi' }] });
    expect(answer.choices[0]!.message.content).toBe('Alias works');
  });

  it('passes response_format to the model, and maps developer messages and text parts', async () => {
    fake.script({ kind: 'text', content: '{"ok":true}' });
    const format = { type: 'json_schema' as const, json_schema: { name: 'answer', schema: { type: 'object', properties: { ok: { type: 'boolean' } } } } };
    await client().chat.completions.create({
      model: 'default',
      messages: [
        { role: 'developer', content: 'Be brief.' },
        { role: 'user', content: [{ type: 'text', text: 'a' }, { type: 'text', text: 'b' }] },
      ],
      response_format: format,
      max_completion_tokens: 33,
      tool_choice: 'none',
    });
    const sent = fake.requests[0]!.body;
    expect(sent.response_format).toEqual(format);
    expect(sent.max_tokens).toBe(33);
    expect(sent.tools).toBeUndefined();
    expect(sent.messages).toEqual([
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'ab' },
    ]);
  });
});

describe('refused and ignored fields', () => {
  const base = { model: 'default', messages: [{ role: 'user', content: 'hi' }] };
  it.each([
    ['n > 1', { n: 2 }, 'n'],
    ['logprobs', { logprobs: true }, 'logprobs'],
    ['audio output', { modalities: ['text', 'audio'], audio: { voice: 'alloy', format: 'mp3' } }, 'modalities'],
    ['a forced tool choice', { tool_choice: 'required' }, 'tool_choice'],
    ['legacy functions', { functions: [{ name: 'f', parameters: {} }] }, 'functions'],
    ['an image part', { messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'data:x' } }] }] }, 'messages'],
    ['a client tool named like a server tool', { tools: [{ type: 'function', function: { name: 'counter', parameters: {} } }] }, 'tools'],
  ])('refuses %s with an OpenAI 400 naming the field, and calls no model', async (_name, extra, param) => {
    const response = await post(`${t.url}/v1/chat/completions`, { ...base, ...extra }, { authorization: `Bearer ${KEY}` });
    expect(response.status).toBe(400);
    const body = await response.json();
    expect(body.error).toMatchObject({ type: 'invalid_request_error', param });
    expect(typeof body.error.message).toBe('string');
    expect(fake.requests).toHaveLength(0);
  });

  it('ignores sampling and bookkeeping fields', async () => {
    const response = await post(
      `${t.url}/v1/chat/completions`,
      { ...base, top_p: 0.5, seed: 1, user: 'u', store: false, stop: ['x'], presence_penalty: 0, frequency_penalty: 0, parallel_tool_calls: true, n: 1 },
      { authorization: `Bearer ${KEY}` },
    );
    expect(response.status).toBe(200);
    expect(fake.requests[0]!.body.top_p).toBeUndefined();
  });

  it('a schema violation is an OpenAI-shaped 400', async () => {
    const response = await post(`${t.url}/v1/chat/completions`, { model: 'default' }, { authorization: `Bearer ${KEY}` });
    expect(response.status).toBe(400);
    expect((await response.json()).error).toMatchObject({ type: 'invalid_request_error', code: 'validation_failed' });
  });

  it('an unknown path under /v1 is an OpenAI-shaped 404', async () => {
    const response = await fetch(`${t.url}/v1/embeddings`, { method: 'POST', headers: { authorization: `Bearer ${KEY}` } });
    expect(response.status).toBe(404);
    expect((await response.json()).error.code).toBe('not_found');
  });
});

describe('limits and auth hold on this surface', () => {
  const messages = (count: number) => Array.from({ length: count }, () => ({ role: 'user' as const, content: 'hi' }));
  it('MAX_MESSAGES_PER_REQUEST: at the limit 200, past it 400', async () => {
    expect((await post(`${t.url}/v1/chat/completions`, { model: 'default', messages: messages(3) }, { authorization: `Bearer ${KEY}` })).status).toBe(200);
    const past = await post(`${t.url}/v1/chat/completions`, { model: 'default', messages: messages(4) }, { authorization: `Bearer ${KEY}` });
    expect(past.status).toBe(400);
    expect((await past.json()).error.type).toBe('invalid_request_error');
  });

  it('MAX_MESSAGE_LENGTH: at the limit 200, past it 400 (string, one text part, text parts together)', async () => {
    const send = (content: unknown) => post(`${t.url}/v1/chat/completions`, { model: 'default', messages: [{ role: 'user', content }] }, { authorization: `Bearer ${KEY}` });
    expect((await send('x'.repeat(50))).status).toBe(200);
    expect((await send('x'.repeat(51))).status).toBe(400);
    expect((await send([{ type: 'text', text: 'x'.repeat(51) }])).status).toBe(400);
    expect((await send([{ type: 'text', text: 'x'.repeat(25) }, { type: 'text', text: 'é'.repeat(25) }])).status).toBe(200);
    const joined = await send([{ type: 'text', text: 'x'.repeat(25) }, { type: 'text', text: 'x'.repeat(26) }]);
    expect(joined.status).toBe(400);
    expect((await joined.json()).error.param).toBe('messages');
  });

  it('401 in OpenAI shape for a missing or wrong key (SDK: AuthenticationError); X-API-Key works too', async () => {
    await expect(client(undefined, 'wrong').chat.completions.create({ model: 'default', messages: [{ role: 'user', content: 'hi' }] })).rejects.toBeInstanceOf(
      OpenAI.AuthenticationError,
    );
    const missing = await post(`${t.url}/v1/chat/completions`, { model: 'default', messages: [{ role: 'user', content: 'hi' }] });
    expect(missing.status).toBe(401);
    expect((await missing.json()).error).toMatchObject({ type: 'authentication_error', code: 'unauthorized' });
    expect((await fetch(`${t.url}/v1/models`, { headers: { authorization: 'Bearer nope' } })).status).toBe(401);
    expect((await fetch(`${t.url}/v1/models`, { headers: { 'x-api-key': KEY } })).status).toBe(200);
    expect(fake.requests).toHaveLength(0);
    // The native API still takes the key only as X-API-Key.
    expect((await post(`${t.url}/api/v1/agent/completion`, { messages: [{ role: 'user', content: 'hi' }] }, { authorization: `Bearer ${KEY}` })).status).toBe(401);
  });
});

describe('rate limit and run limits', () => {
  let limited: TestApp;
  beforeAll(async () => {
    limited = await startApp({ OPENAI_BASE_URL: fake.url, CHASSIS_API_KEY: KEY, ENABLE_RATE_LIMITING: 'true', API_RATE_LIMIT_PER_MINUTE: '2', MAX_CONCURRENT_RUNS: '1' });
  });
  afterAll(() => limited.close());

  it('API_RATE_LIMIT_PER_MINUTE counts OpenAI calls per identity: the 3rd is a 429 RateLimitError with Retry-After', async () => {
    const api = client(`${limited.url}/v1`);
    await api.models.list();
    await api.chat.completions.create({ model: 'default', messages: [{ role: 'user', content: 'hi' }] });
    const error = await api.models.list().catch((thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(OpenAI.RateLimitError);
    const rateError = error as InstanceType<typeof OpenAI.RateLimitError>;
    expect(rateError.code).toBe('rate_limited');
    expect(Number(rateError.headers?.get('retry-after'))).toBeGreaterThan(0);
  });
});

describe('MAX_CONCURRENT_RUNS', () => {
  let busy: TestApp;
  beforeAll(async () => {
    busy = await startApp({ OPENAI_BASE_URL: fake.url, MAX_CONCURRENT_RUNS: '1' });
  });
  afterAll(() => busy.close());

  it('a second run while one runs is an OpenAI 503', async () => {
    fake.script({ kind: 'text', content: 'slow answer', delayMs: 300, chunkSize: 100 });
    const first = post(`${busy.url}/v1/chat/completions`, { model: 'default', messages: [{ role: 'user', content: 'hi' }], stream: true });
    await fake.waitForRequests(1);
    const second = await post(`${busy.url}/v1/chat/completions`, { model: 'default', messages: [{ role: 'user', content: 'hi' }] });
    expect(second.status).toBe(503);
    expect((await second.json()).error).toMatchObject({ type: 'server_error', code: 'server_busy' });
    expect((await first).status).toBe(200);
    await (await first).text();
  });
});

describe('Vercel AI SDK (ai + @ai-sdk/openai-compatible)', () => {
  const provider = () => createOpenAICompatible({ name: 'chassis', baseURL: `${t.url}/v1`, apiKey: KEY, includeUsage: true });

  it('generateText and streamText give the same text and usage', async () => {
    fake.script({ kind: 'text', content: 'Same words both ways', usage: { prompt_tokens: 4, completion_tokens: 4 } });
    const generated = await generateText({ model: provider()('default'), prompt: 'hi', maxRetries: 0 });
    fake.script({ kind: 'text', content: 'Same words both ways', usage: { prompt_tokens: 4, completion_tokens: 4 } });
    const streamed = streamText({ model: provider()('default'), prompt: 'hi', maxRetries: 0 });
    let text = '';
    for await (const delta of streamed.textStream) text += delta;
    expect(generated.text).toBe('Same words both ways');
    expect(text).toBe(generated.text);
    expect(generated.finishReason).toBe('stop');
    expect(await streamed.finishReason).toBe('stop');
    expect(generated.usage.inputTokens).toBe(4);
    expect((await streamed.usage).outputTokens).toBe(4);
  });

  it('runs a client-side tool round trip with generateText', async () => {
    fake.script(
      { kind: 'tool_calls', calls: [{ id: 'call_ai', name: 'get_weather', arguments: '{"city":"Lima"}' }] },
      { kind: 'text', content: 'Lima is warm.' },
    );
    let ranWith: unknown;
    const { stepCountIs } = await import('ai');
    const result = await generateText({
      model: provider()('default'),
      prompt: 'Weather in Lima?',
      maxRetries: 0,
      stopWhen: stepCountIs(3),
      tools: {
        get_weather: tool({
          description: 'Weather for a city',
          inputSchema: jsonSchema<{ city: string }>({ type: 'object', properties: { city: { type: 'string' } }, required: ['city'] }),
          execute: async (input) => {
            ranWith = input;
            return { temperature: 25 };
          },
        }),
      },
    });
    expect(ranWith).toEqual({ city: 'Lima' });
    expect(result.text).toBe('Lima is warm.');
    expect(fake.requests[1]!.body.messages.at(-1)).toMatchObject({ role: 'tool', tool_call_id: 'call_ai' });
  });

  it('runs a client-side tool round trip with streamText, reasoning included', async () => {
    fake.script(
      { kind: 'tool_calls', calls: [{ id: 'call_st', name: 'get_weather', arguments: '{"city":"Nice"}' }] },
      { kind: 'text', content: 'Nice is sunny.', reasoning: 'Tool said 30' },
    );
    const { stepCountIs } = await import('ai');
    const result = streamText({
      model: provider()('default'),
      prompt: 'Weather in Nice?',
      maxRetries: 0,
      stopWhen: stepCountIs(3),
      tools: {
        get_weather: tool({
          description: 'Weather for a city',
          inputSchema: jsonSchema<{ city: string }>({ type: 'object', properties: { city: { type: 'string' } }, required: ['city'] }),
          execute: async ({ city }) => ({ city, temperature: 30 }),
        }),
      },
    });
    let text = '';
    for await (const delta of result.textStream) text += delta;
    expect(text).toBe('Nice is sunny.');
    expect(await result.reasoningText).toBe('Tool said 30');
    const steps = await result.steps;
    expect(steps[0]!.toolCalls.map((call) => call.toolName)).toEqual(['get_weather']);
    expect(fake.requests[1]!.body.messages.at(-1)).toMatchObject({ role: 'tool', tool_call_id: 'call_st' });
  });

  it('an unknown model rejects with the server\'s message', async () => {
    await expect(generateText({ model: provider()('missing'), prompt: 'hi', maxRetries: 0 })).rejects.toThrow(/does not exist/);
  });
});

describe('server-side sessions (X-Session-Id or metadata.session_id)', () => {
  let persisted: TestApp;
  beforeAll(async () => {
    persisted = await startApp({ OPENAI_BASE_URL: fake.url, ENABLE_PERSISTENCE: 'true', DATABASE_URL: 'sqlite::memory:' });
  });
  afterAll(() => persisted.close());
  const api = () => new OpenAI({ apiKey: 'unused-on-an-open-server', baseURL: `${persisted.url}/v1`, maxRetries: 0 });

  it('"new" starts a session (id in X-Session-Id); later calls send only the new message and the server supplies the history', async () => {
    fake.script({ kind: 'text', content: 'First answer' });
    const { data, response } = await api()
      .chat.completions.create({ model: 'default', messages: [{ role: 'system', content: 'Be kind.' }, { role: 'user', content: 'first' }] }, { headers: { 'X-Session-Id': 'new' } })
      .withResponse();
    expect(data.choices[0]!.message.content).toBe('First answer');
    const sessionId = response.headers.get('x-session-id');
    expect(sessionId).toBeTruthy();

    fake.script({ kind: 'text', content: 'Second answer' });
    const chunks = await collect(
      await api().chat.completions.create({ model: 'default', messages: [{ role: 'user', content: 'ignored: the session has it' }, { role: 'user', content: 'second' }], stream: true, metadata: { session_id: sessionId! } }),
    );
    expect(chunks.map((chunk) => chunk.choices[0]?.delta.content ?? '').join('')).toBe('Second answer');
    expect(fake.requests[1]!.body.messages).toEqual([
      { role: 'system', content: 'Be kind.' },
      { role: 'user', content: 'first' },
      { role: 'assistant', content: 'First answer' },
      { role: 'user', content: 'second' },
    ]);
    // The native API reads the same session.
    const messages = await (await fetch(`${persisted.url}/api/v1/agent/session/${sessionId}/messages`)).json();
    expect(JSON.stringify(messages)).toContain('Second answer');
  });

  it('an unknown session is an OpenAI 404; client tools with a session and a last message not from the user are 400', async () => {
    const unknown = await post(`${persisted.url}/v1/chat/completions`, { model: 'default', messages: [{ role: 'user', content: 'hi' }] }, { 'x-session-id': 'no-such-session' });
    expect(unknown.status).toBe(404);
    expect((await unknown.json()).error.type).toBe('not_found_error');
    const tools = await post(`${persisted.url}/v1/chat/completions`, { model: 'default', messages: [{ role: 'user', content: 'hi' }], tools: [weatherTool] }, { 'x-session-id': 'new' });
    expect(tools.status).toBe(400);
    expect((await tools.json()).error.param).toBe('tools');
    const last = await post(`${persisted.url}/v1/chat/completions`, { model: 'default', messages: [{ role: 'assistant', content: 'hi' }] }, { 'x-session-id': 'new' });
    expect(last.status).toBe(400);
    expect(fake.requests).toHaveLength(0);
  });

  it('without persistence a session id is refused, not ignored', async () => {
    const response = await post(`${t.url}/v1/chat/completions`, { model: 'default', messages: [{ role: 'user', content: 'hi' }] }, { authorization: `Bearer ${KEY}`, 'x-session-id': 'new' });
    expect(response.status).toBe(400);
    expect((await response.json()).error.code).toBe('feature_disabled');
  });
});

describe('OpenAPI document', () => {
  it('documents the canonical /v1 routes with operationIds, once', async () => {
    const document = await (await fetch(`${t.url}/api/v1/openapi.json`)).json();
    expect(document.paths['/v1/chat/completions'].post.operationId).toBe('openaiCreateChatCompletion');
    expect(document.paths['/v1/models'].get.operationId).toBe('openaiListModels');
    expect(document.paths['/v1/models/{model}'].get.operationId).toBe('openaiRetrieveModel');
    expect(Object.keys(document.paths).filter((path) => path.startsWith('/api/v1/openai'))).toEqual([]);
    expect(document.paths['/v1/chat/completions'].post.responses['404']).toBeDefined();
  });
});

describe('a client that leaves', () => {
  it('stops a stateless streamed run and its provider call', async () => {
    fake.script({ kind: 'text', content: 'one two three four five six seven eight', chunkSize: 4, delayMs: 200 });
    const controller = new AbortController();
    const response = await fetch(`${t.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
      body: JSON.stringify({ model: 'default', messages: [{ role: 'user', content: 'hi' }], stream: true }),
      signal: controller.signal,
    });
    const reader = response.body!.getReader();
    await reader.read();
    controller.abort();
    await expect.poll(() => fake.requests[0]?.closedEarly, { timeout: 5000 }).toBe(true);
  });

  it('lets a browser send X-Session-Id (CORS preflight)', async () => {
    const response = await fetch(`${t.url}/v1/chat/completions`, {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type,x-session-id' },
    });
    expect(response.status).toBeLessThan(300);
    expect(response.headers.get('access-control-allow-headers')?.toLowerCase()).toContain('x-session-id');
  });
});

describe('shutdown', () => {
  it('while draining, new OpenAI calls get a 503 in OpenAI shape and the running stream finishes', async () => {
    const draining = await startApp({ OPENAI_BASE_URL: fake.url });
    fake.script({ kind: 'text', content: 'one two three four', chunkSize: 4, delayMs: 100 });
    const running = fetch(`${draining.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'default', messages: [{ role: 'user', content: 'hi' }], stream: true }),
    });
    await fake.waitForRequests(1);
    const stopped = draining.app.chassis.shutdown(10);
    const refused = await post(`${draining.url}/v1/chat/completions`, { model: 'default', messages: [{ role: 'user', content: 'hi' }] });
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect((await refused.json()).error).toMatchObject({ type: 'server_error', code: 'shutting_down' });
    const native = await post(`${draining.url}/api/v1/agent/completion`, { messages: [{ role: 'user', content: 'hi' }] });
    expect((await native.json()).code).toBe('SHUTTING_DOWN');
    const raw = await (await running).text();
    expect(raw.endsWith('data: [DONE]\n\n')).toBe(true);
    await stopped;
  });
});
