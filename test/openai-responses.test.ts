// The OpenAI Responses API, proven with the official `openai` package against our fake upstream:
// the same run as every other surface, encoded as a `response` object or Responses events, with
// previous_response_id backed by server-side sessions.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import OpenAI from 'openai';
import { startFakeUpstream, type FakeUpstream } from './support/fake-upstream.js';
import { countingTool, writerAgent } from './support/openai-fixtures.js';
import { startApp, type TestApp } from './support/app.js';
import { createPgSchema, storesAvailable } from './support/stores.js';

const stores = await storesAvailable();

const KEY = 'responses-surface-key';
let fake: FakeUpstream;
let t: TestApp;
let stateless: TestApp;
const DIR = mkdtempSync(join(tmpdir(), 'openai-responses-'));

const { tool: counter, counted } = countingTool();
const writer = writerAgent;

beforeAll(async () => {
  fake = await startFakeUpstream();
  const env = { OPENAI_BASE_URL: fake.url, CHASSIS_API_KEY: KEY, MAX_AGENT_STEPS: '4', OPENAI_MODEL: 'deployment-model', UPSTREAM_MAX_RETRIES: '0' };
  t = await startApp({ ...env, ENABLE_PERSISTENCE: 'true', DATABASE_URL: 'sqlite::memory:' }, { tools: [counter], agents: [writer] });
  stateless = await startApp(env, { tools: [counter], agents: [writer] });
});
afterAll(async () => {
  await t.close();
  await stateless.close();
  await fake.close();
  rmSync(DIR, { recursive: true, force: true });
});
beforeEach(() => {
  fake.reset();
  counted.runs = 0;
});

/** A client acting for one end user of the backend that holds the key (X-User-ID). */
const client = (user = 'alice', app = t, baseURL = `${app.url}/v1`) =>
  new OpenAI({ apiKey: KEY, baseURL, maxRetries: 0, defaultHeaders: { 'x-user-id': user } });
const weatherTool = {
  type: 'function' as const,
  name: 'get_weather',
  description: 'Weather for a city',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  strict: false,
};
const sent = (index: number) => fake.requests[index]!.body;

/** One HTTP call, its status and JSON body (a body makes it a POST). */
async function call(url: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
  const response = await fetch(url, {
    method: body === undefined ? 'GET' : 'POST',
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
}

/** What two responses of the same prompt share: all but their ids and times (and the fields the SDK's stream helper adds). */
function comparable(response: Record<string, any>) {
  const { id: _id, created_at: _created, output, output_text: _text, output_parsed: _parsed, ...rest } = response;
  const part = ({ parsed: _partParsed, ...fields }: Record<string, unknown>) => fields;
  return { ...rest, output: output.map(({ id: _itemId, ...item }: Record<string, any>) => (item.content ? { ...item, content: item.content.map(part) } : item)) };
}

async function sessionMessages(sessionId: string, user = 'alice') {
  const response = await fetch(`${t.url}/api/v1/agent/session/${sessionId}/messages`, { headers: { 'x-api-key': KEY, 'x-user-id': user } });
  expect(response.status).toBe(200);
  return ((await response.json()) as { messages: Array<Record<string, unknown>> }).messages.map(({ seq: _seq, created_at: _at, ...message }) => message);
}

describe('official openai package: responses', () => {
  it('answers JSON as a response object, stores it in a session, and GET /v1/responses/{id} returns the same', async () => {
    fake.script({ kind: 'text', content: 'Hello there, friend', usage: { prompt_tokens: 7, completion_tokens: 3 } });
    const { data: response, response: http } = await client()
      .responses.create({ model: 'default', input: 'hi', metadata: { ticket: '42' } })
      .withResponse();
    expect(response.object).toBe('response');
    expect(response.id).toMatch(/^resp_/);
    expect(response.status).toBe('completed');
    expect(response.model).toBe('default');
    expect(response.output).toEqual([
      { id: expect.stringMatching(/^msg_/), type: 'message', status: 'completed', role: 'assistant', content: [{ type: 'output_text', text: 'Hello there, friend', annotations: [], logprobs: [] }] },
    ]);
    expect(response.output_text).toBe('Hello there, friend');
    expect(response.usage).toEqual({ input_tokens: 7, input_tokens_details: { cached_tokens: 0 }, output_tokens: 3, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 10 });
    expect(response).toMatchObject({ previous_response_id: null, instructions: null, store: true, metadata: { ticket: '42' }, error: null, incomplete_details: null });
    // The default agent: the deployment's model, every server tool, the input as the user message.
    expect(sent(0).model).toBe('deployment-model');
    expect(sent(0).messages).toEqual([{ role: 'user', content: 'hi' }]);
    // The turn is a session's history (read through the native API), and the response can be read back.
    const sessionId = http.headers.get('x-session-id')!;
    expect(await sessionMessages(sessionId)).toEqual([
      { role: 'user', content: 'hi' },
      { role: 'assistant', content: 'Hello there, friend' },
    ]);
    const { data: read, response: readHttp } = await client().responses.retrieve(response.id).withResponse();
    expect(read).toEqual(response);
    // A stored conversation is never kept by a cache on the way.
    expect(readHttp.headers.get('cache-control')).toBe('no-store');
  });

  it('streams the Responses event sequence, and the SDK\'s final response equals the JSON one for the same prompt', async () => {
    const steps = () =>
      fake.script(
        { kind: 'tool_calls', calls: [{ name: 'counter', arguments: '{}' }], content: 'Let me count. ', usage: { prompt_tokens: 3, completion_tokens: 2 } },
        { kind: 'text', content: 'Counted once.', chunkSize: 4, usage: { prompt_tokens: 6, completion_tokens: 3 } },
      );
    steps();
    const json = await client().responses.create({ model: 'writer', input: 'count', instructions: 'Be brief.' });
    steps();
    const raw = await fetch(`${t.url}/v1/responses`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}`, 'x-user-id': 'alice' },
      body: JSON.stringify({ model: 'writer', input: 'count', instructions: 'Be brief.', stream: true }),
    });
    expect(raw.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const frames = (await raw.text()).split('\n\n').filter((frame) => frame.startsWith('event: '));
    const events = frames.map((frame) => {
      const [eventLine, dataLine] = frame.split('\n');
      const data = JSON.parse(dataLine!.slice('data: '.length));
      expect(eventLine).toBe(`event: ${data.type}`);
      return data;
    });
    expect(events.map((event) => event.sequence_number)).toEqual(events.map((_, index) => index));
    const types = events.map((event) => event.type);
    const deltas = types.filter((type) => type === 'response.output_text.delta').length;
    expect(deltas).toBeGreaterThan(3);
    expect(types).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
      ...Array(deltas).fill('response.output_text.delta'),
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.completed',
    ]);
    expect(events[0].response).toMatchObject({ status: 'in_progress', output: [], usage: null });
    const text = events.filter((event) => event.type === 'response.output_text.delta').map((event) => event.delta).join('');
    expect(text).toBe('Let me count. Counted once.');
    expect(events.find((event) => event.type === 'response.output_text.done').text).toBe(text);
    const completed = events.at(-1).response;
    expect(completed.status).toBe('completed');

    steps();
    const final = await client().responses.stream({ model: 'writer', input: 'count', instructions: 'Be brief.' }).finalResponse();
    expect(counted.runs).toBe(3);
    expect(json.output_text).toBe('Let me count. Counted once.');
    expect(json.usage!.total_tokens).toBe(14);
    expect(comparable(final)).toEqual(comparable(json));
    expect(comparable(completed)).toEqual(comparable(json));
    // The catalog agent's instructions, then the request's.
    expect(sent(0).messages[0]).toEqual({ role: 'system', content: 'You are a careful writer.\n\nBe brief.' });
    expect(sent(0).model).toBe('writer-upstream-model');
  });

  it('previous_response_id continues the conversation: the upstream gets the earlier turns; instructions do not carry over; no branching', async () => {
    fake.script({ kind: 'text', content: 'First answer' }, { kind: 'text', content: 'Second answer' });
    const first = await client().responses.create({ model: 'default', input: 'first question', instructions: 'Be brief.' });
    const second = await client().responses.create({ model: 'default', input: [{ role: 'user', content: [{ type: 'input_text', text: 'second question' }] }], previous_response_id: first.id });
    expect(second.previous_response_id).toBe(first.id);
    expect(second.output_text).toBe('Second answer');
    expect(sent(0).messages).toEqual([
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'first question' },
    ]);
    expect(sent(1).messages).toEqual([
      { role: 'user', content: 'first question' },
      { role: 'assistant', content: 'First answer' },
      { role: 'user', content: 'second question' },
    ]);
    // Continuing from a response that is no longer the latest of its conversation would branch it.
    const branch = await call(`${t.url}/v1/responses`, { model: 'default', input: 'another path', previous_response_id: first.id }, { authorization: `Bearer ${KEY}`, 'x-user-id': 'alice' });
    expect(branch.status).toBe(409);
    expect(branch.body.error).toMatchObject({ code: 'conversation_moved_on', type: 'invalid_request_error' });
    expect(fake.requests).toHaveLength(2);
  });

  it('client-side function call round trip: a function_call item, then function_call_output with previous_response_id', async () => {
    fake.script(
      { kind: 'tool_calls', calls: [{ id: 'call_weather_1', name: 'get_weather', arguments: '{"city":"Paris"}' }], usage: { prompt_tokens: 4, completion_tokens: 2 } },
      { kind: 'text', content: 'It is sunny in Paris.' },
    );
    const first = await client().responses.create({ model: 'default', input: 'Weather in Paris?', tools: [weatherTool] });
    expect(first.status).toBe('completed');
    expect(first.output).toEqual([
      { id: expect.stringMatching(/^fc_/), type: 'function_call', status: 'completed', call_id: 'call_weather_1', name: 'get_weather', arguments: '{"city":"Paris"}' },
    ]);
    // The Responses tool shape (flat) reaches the upstream as a chat tool, beside the server's.
    const tools = sent(0).tools.map((tool: any) => tool.function.name);
    expect(tools).toEqual(expect.arrayContaining(['get_weather', 'counter']));
    expect(sent(0).tools.find((tool: any) => tool.function.name === 'get_weather').function.parameters).toEqual(weatherTool.parameters);

    // Without the call's output the conversation cannot go on.
    const missing = await call(`${t.url}/v1/responses`, { model: 'default', input: 'and?', previous_response_id: first.id, tools: [weatherTool] }, { authorization: `Bearer ${KEY}`, 'x-user-id': 'alice' });
    expect(missing.status).toBe(400);
    expect(missing.body.error.message).toContain('call_weather_1');

    const second = await client().responses.create({
      model: 'default',
      previous_response_id: first.id,
      tools: [weatherTool],
      input: [{ type: 'function_call_output', call_id: 'call_weather_1', output: '{"sky":"sunny"}' }],
    });
    expect(second.output_text).toBe('It is sunny in Paris.');
    expect(sent(1).messages).toEqual([
      { role: 'user', content: 'Weather in Paris?' },
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_weather_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
      { role: 'tool', tool_call_id: 'call_weather_1', content: '{"sky":"sunny"}' },
    ]);
    expect(fake.requests).toHaveLength(2);
  });

  it('streams a client function call as function_call_arguments events', async () => {
    fake.script({ kind: 'tool_calls', calls: [{ id: 'call_w', name: 'get_weather', arguments: '{"city":"Oslo"}' }] });
    const stream = client().responses.stream({ model: 'default', input: 'Weather in Oslo?', tools: [weatherTool] });
    const types: string[] = [];
    for await (const event of stream) types.push(event.type);
    expect(types).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.function_call_arguments.delta',
      'response.function_call_arguments.done',
      'response.output_item.done',
      'response.completed',
    ]);
    const final = await stream.finalResponse();
    expect(final.output).toEqual([expect.objectContaining({ type: 'function_call', call_id: 'call_w', name: 'get_weather', arguments: '{"city":"Oslo"}' })]);
  });

  it('store: false runs statelessly: the whole conversation as input items, nothing to read back', async () => {
    fake.script({ kind: 'text', content: 'Sunny.' });
    const response = await client().responses.create({
      model: 'default',
      store: false,
      tools: [weatherTool],
      input: [
        { role: 'developer', content: 'Answer in one word.' },
        { role: 'user', content: 'Weather in Rome?' },
        { type: 'function_call', call_id: 'call_r', name: 'get_weather', arguments: '{"city":"Rome"}' },
        { type: 'function_call_output', call_id: 'call_r', output: 'sunny' },
      ],
    });
    expect(response).toMatchObject({ store: false });
    expect(sent(0).messages).toEqual([
      { role: 'system', content: 'Answer in one word.' },
      { role: 'user', content: 'Weather in Rome?' },
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_r', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Rome"}' } }] },
      { role: 'tool', tool_call_id: 'call_r', content: 'sunny' },
    ]);
    const read = await call(`${t.url}/v1/responses/${response.id}`, undefined, { authorization: `Bearer ${KEY}`, 'x-user-id': 'alice' });
    expect(read.status).toBe(404);
  });
});

describe('errors, auth and access', () => {
  it('an unknown model is an OpenAI 404 the SDK raises as NotFoundError', async () => {
    const error = await client().responses.create({ model: 'no-such-agent', input: 'hi' }).catch((thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(OpenAI.NotFoundError);
    expect((error as InstanceType<typeof OpenAI.NotFoundError>).error).toMatchObject({ code: 'model_not_found', param: 'model', type: 'not_found_error' });
    expect(fake.requests).toHaveLength(0);
  });

  it('an upstream failure is an OpenAI 502 in JSON, and ends a stream with response.failed', async () => {
    fake.script({ kind: 'status', status: 500, body: { error: { message: 'boom' } } });
    const json = await client().responses.create({ model: 'default', input: 'hi' }).catch((thrown: unknown) => thrown);
    expect(json).toBeInstanceOf(OpenAI.APIError);
    expect((json as InstanceType<typeof OpenAI.APIError>).status).toBe(502);
    fake.script({ kind: 'status', status: 500, body: { error: { message: 'boom' } } });
    const types: string[] = [];
    let failed: any;
    for await (const event of client().responses.stream({ model: 'default', input: 'hi' })) {
      types.push(event.type);
      if (event.type === 'response.failed') failed = event.response;
    }
    expect(types).toEqual(['response.created', 'response.in_progress', 'response.failed']);
    expect(failed).toMatchObject({ status: 'failed', error: { code: expect.stringMatching(/^upstream_/) } });
  });

  it('bad input is an OpenAI-shaped 400 naming the field, never a 500', async () => {
    const headers = { authorization: `Bearer ${KEY}` };
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ model: 'default' }, ''],
      [{ model: 'default', input: [{ role: 'user', content: [{ type: 'input_image', image_url: 'https://x' }] }] }, 'input'],
      [{ model: 'default', input: [{ type: 'item_reference', id: 'x' }] }, 'input'],
      [{ model: 'default', input: 'hi', tools: [{ type: 'web_search' }] }, 'tools'],
      [{ model: 'default', input: 'hi', tool_choice: 'required' }, 'tool_choice'],
      [{ model: 'default', input: 'hi', background: true }, 'background'],
      [{ model: 'default', input: [{ type: 'function_call_output', output: 'x' }] }, 'input'],
      [{ model: 'default', input: 'hi', previous_response_id: 'resp_x', store: false }, 'store'],
    ];
    for (const [body, param] of cases) {
      const response = await call(`${t.url}/v1/responses`, body, headers);
      expect(response.status, JSON.stringify(body)).toBe(400);
      expect(response.body.error.type).toBe('invalid_request_error');
      if (param !== '') expect(response.body.error.param, JSON.stringify(body)).toBe(param);
    }
    expect(fake.requests).toHaveLength(0);
  });

  it('401 in OpenAI shape for a missing or wrong key (SDK: AuthenticationError)', async () => {
    const missing = await call(`${t.url}/v1/responses`, { model: 'default', input: 'hi' });
    expect(missing.status).toBe(401);
    expect(missing.body.error.type).toBe('authentication_error');
    const wrong = await new OpenAI({ apiKey: 'wrong-key', baseURL: `${t.url}/v1`, maxRetries: 0 }).responses.create({ model: 'default', input: 'hi' }).catch((thrown: unknown) => thrown);
    expect(wrong).toBeInstanceOf(OpenAI.AuthenticationError);
    const read = await call(`${t.url}/v1/responses/resp_anything`, undefined, {});
    expect(read.status).toBe(401);
    expect(fake.requests).toHaveLength(0);
  });

  it("another user's response id is a 404, to read and to continue; its owner still can", async () => {
    fake.script({ kind: 'text', content: 'For alice only' }, { kind: 'text', content: 'Still alice' });
    const mine = await client('alice').responses.create({ model: 'default', input: 'secret' });
    const read = await client('bob').responses.retrieve(mine.id).catch((thrown: unknown) => thrown);
    expect(read).toBeInstanceOf(OpenAI.NotFoundError);
    expect((read as InstanceType<typeof OpenAI.NotFoundError>).error).toMatchObject({ code: 'response_not_found' });
    const continued = await client('bob').responses.create({ model: 'default', input: 'tell me', previous_response_id: mine.id }).catch((thrown: unknown) => thrown);
    expect(continued).toBeInstanceOf(OpenAI.NotFoundError);
    expect(fake.requests).toHaveLength(1);
    const own = await client('alice').responses.create({ model: 'default', input: 'go on', previous_response_id: mine.id });
    expect(own.output_text).toBe('Still alice');
    expect(sent(1).messages.map((message: any) => message.content)).toEqual(['secret', 'For alice only', 'go on']);
  });

  it('answers the same under /api/v1/openai/v1', async () => {
    fake.script({ kind: 'text', content: 'Aliased' });
    const response = await client('alice', t, `${t.url}/api/v1/openai/v1`).responses.create({ model: 'default', input: 'hi' });
    expect(response.output_text).toBe('Aliased');
    expect((await client().responses.retrieve(response.id)).id).toBe(response.id);
  });
});

describe('limits', () => {
  let limited: TestApp;
  beforeAll(async () => {
    limited = await startApp({
      OPENAI_BASE_URL: fake.url,
      CHASSIS_API_KEY: KEY,
      ENABLE_RATE_LIMITING: 'true',
      API_RATE_LIMIT_PER_MINUTE: '2',
      MAX_MESSAGES_PER_REQUEST: '2',
      MAX_MESSAGE_LENGTH: '20',
    });
  });
  afterAll(() => limited.close());

  it('MAX_MESSAGES_PER_REQUEST and MAX_MESSAGE_LENGTH bound the input; API_RATE_LIMIT_PER_MINUTE counts responses calls (429 RateLimitError)', async () => {
    const headers = { authorization: `Bearer ${KEY}` };
    const items = (count: number) => Array.from({ length: count }, () => ({ role: 'user' as const, content: 'hi' }));
    expect((await call(`${limited.url}/v1/responses`, { model: 'default', input: items(3) }, headers)).status).toBe(400);
    const long = await call(`${limited.url}/v1/responses`, { model: 'default', input: [{ role: 'user', content: [{ type: 'input_text', text: 'x'.repeat(15) }, { type: 'input_text', text: 'y'.repeat(15) }] }] }, headers);
    expect(long.status).toBe(400);
    expect(long.body.error.message).toContain('MAX_MESSAGE_LENGTH');
    expect(fake.requests).toHaveLength(0);
    // The third call of the same identity (the key's) within the minute.
    const sameIdentity = new OpenAI({ apiKey: KEY, baseURL: `${limited.url}/v1`, maxRetries: 0 });
    const limitedError = await sameIdentity.responses.create({ model: 'default', input: items(2) }).catch((thrown: unknown) => thrown);
    expect(limitedError).toBeInstanceOf(OpenAI.RateLimitError);
    expect(Number((limitedError as InstanceType<typeof OpenAI.RateLimitError>).headers?.get('retry-after'))).toBeGreaterThan(0);
  });
});

describe('with persistence off', () => {
  it('answers statelessly (store: false in the answer); GET is a 404 and previous_response_id a 400, both saying why', async () => {
    fake.script({ kind: 'text', content: 'Not kept' });
    const response = await client('alice', stateless).responses.create({ model: 'default', input: 'hi' });
    expect(response.output_text).toBe('Not kept');
    expect(response).toMatchObject({ store: false });
    const headers = { authorization: `Bearer ${KEY}` };
    const read = await call(`${stateless.url}/v1/responses/${response.id}`, undefined, headers);
    expect(read.status).toBe(404);
    expect(read.body.error.message).toContain('ENABLE_PERSISTENCE=false');
    const continued = await call(`${stateless.url}/v1/responses`, { model: 'default', input: 'more', previous_response_id: response.id }, headers);
    expect(continued.status).toBe(400);
    expect(continued.body.error).toMatchObject({ code: 'feature_disabled', param: 'previous_response_id' });
    expect(continued.body.error.message).toContain('ENABLE_PERSISTENCE=false');
  });
});

describe.skipIf(!stores.pg)('across two instances on one PostgreSQL', () => {
  let schema: Awaited<ReturnType<typeof createPgSchema>>;
  let a: TestApp;
  let b: TestApp;
  beforeAll(async () => {
    schema = await createPgSchema();
    const env = { OPENAI_BASE_URL: fake.url, CHASSIS_API_KEY: KEY, ENABLE_PERSISTENCE: 'true', DATABASE_URL: schema.url, UPSTREAM_MAX_RETRIES: '0' };
    a = await startApp(env);
    b = await startApp(env);
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await schema?.drop();
  });

  it('a response made on one instance is read and continued on the other, and goes when its session is deleted', async () => {
    fake.script({ kind: 'text', content: 'Answer from A' }, { kind: 'text', content: 'Answer from B' });
    const { data: first, response: http } = await client('carol', a).responses.create({ model: 'default', input: 'on A' }).withResponse();
    expect((await client('carol', b).responses.retrieve(first.id)).output_text).toBe('Answer from A');
    const second = await client('carol', b).responses.create({ model: 'default', input: 'on B', previous_response_id: first.id });
    expect(second.output_text).toBe('Answer from B');
    expect(sent(1).messages.map((message: any) => message.content)).toEqual(['on A', 'Answer from A', 'on B']);
    // Its owner deletes the conversation through the native API: its responses go with it.
    const sessionId = http.headers.get('x-session-id')!;
    const deleted = await fetch(`${a.url}/api/v1/agent/session/${sessionId}`, { method: 'DELETE', headers: { 'x-api-key': KEY, 'x-user-id': 'carol' } });
    expect(deleted.status).toBe(200);
    for (const id of [first.id, second.id]) {
      const read = await call(`${b.url}/v1/responses/${id}`, undefined, { authorization: `Bearer ${KEY}`, 'x-user-id': 'carol' });
      expect(read.status).toBe(404);
    }
  });
});

describe('a response is stored by its turn, in the same transaction', () => {
  it('when the response cannot be written, nothing of the turn is: the same previous_response_id continues once it can', async () => {
    const file = join(DIR, 'atomic.sqlite');
    const app = await startApp({ OPENAI_BASE_URL: fake.url, CHASSIS_API_KEY: KEY, UPSTREAM_MAX_RETRIES: '0', ENABLE_PERSISTENCE: 'true', DATABASE_URL: `sqlite:${file}` });
    const db = new SQLite(file);
    try {
      fake.script({ kind: 'text', content: 'first answer' }, { kind: 'text', content: 'lost answer' }, { kind: 'text', content: 'second answer' });
      const { data: first, response: http } = await client('alice', app).responses.create({ model: 'default', input: 'one' }).withResponse();
      const sessionId = http.headers.get('x-session-id')!;
      const messages = async () => {
        const response = await fetch(`${app.url}/api/v1/agent/session/${sessionId}/messages`, { headers: { 'x-api-key': KEY, 'x-user-id': 'alice' } });
        return ((await response.json()) as { messages: Array<{ content: string }> }).messages.map((message) => message.content);
      };
      // The database refuses the response row (as a full disk or a lost connection would).
      db.exec("create trigger refuse_responses before insert on openai_responses begin select raise(abort, 'refused'); end");
      const failed = await client('alice', app).responses.create({ model: 'default', input: 'two', previous_response_id: first.id }).catch((error: unknown) => error);
      expect(failed).toBeInstanceOf(OpenAI.APIError);
      expect((failed as InstanceType<typeof OpenAI.APIError>).status).toBe(503);
      expect(await messages()).toEqual(['one', 'first answer']);
      db.exec('drop trigger refuse_responses');
      // Not "conversation moved on": the failed turn left the session where the first response ends.
      const second = await client('alice', app).responses.create({ model: 'default', input: 'two', previous_response_id: first.id });
      expect(second.output_text).toBe('second answer');
      expect(await messages()).toEqual(['one', 'first answer', 'two', 'second answer']);
    } finally {
      db.close();
      await app.close();
    }
  });
});
