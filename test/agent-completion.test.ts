import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Type } from 'typebox';
import { defineTool } from '../src/tools/index.js';
import { startFakeUpstream, type FakeUpstream } from './support/fake-upstream.js';
import { post, readSse, startApp, type TestApp } from './support/app.js';

const KEY = 'your-api-key';
let fake: FakeUpstream;
let t: TestApp;
let counterRuns = 0;
const releaseWaiters: Array<() => void> = [];
let waiting = 0;

// A tool that counts its runs: proves from outside whether the loop really ran a tool.
const counter = defineTool({
  name: 'counter',
  description: 'Counts how often it ran',
  parameters: Type.Object({}),
  run() {
    counterRuns++;
    return `ran ${counterRuns}`;
  },
});

// Two calls of this tool only finish once both have started: a serial loop would deadlock (and time out).
const rendezvous = defineTool({
  name: 'rendezvous',
  description: 'Waits until a second call is running',
  parameters: Type.Object({ label: Type.String() }),
  timeoutSeconds: 5,
  async run({ label }) {
    waiting++;
    if (waiting >= 2) for (const release of releaseWaiters.splice(0)) release();
    else await new Promise<void>((resolve) => releaseWaiters.push(resolve));
    return `met:${label}`;
  },
});

const failing = defineTool({
  name: 'failing',
  description: 'Always throws',
  parameters: Type.Object({}),
  run() {
    throw new Error('the disk is on fire');
  },
});

const sleepy = defineTool({
  name: 'sleepy',
  description: 'Sleeps until aborted',
  parameters: Type.Object({}),
  timeoutSeconds: 0.2,
  run(_args, { signal }) {
    return new Promise((resolve) => signal.addEventListener('abort', () => resolve('stopped')));
  },
});

beforeAll(async () => {
  fake = await startFakeUpstream();
  t = await startApp(
    { OPENAI_BASE_URL: fake.url, CHASSIS_API_KEY: KEY, MAX_AGENT_STEPS: '3' },
    { tools: [counter, rendezvous, failing, sleepy] },
  );
});
afterAll(async () => {
  await t.close();
  await fake.close();
});
beforeEach(() => {
  fake.reset();
  counterRuns = 0;
  waiting = 0;
});

const completion = (body: unknown) => post(`${t.url}/api/v1/agent/completion`, body, { 'X-API-Key': KEY });
const toolNames = (request: { body: any }) => (request.body.tools ?? []).map((tool: any) => tool.function.name).sort();

describe('POST /api/v1/agent/completion (client-side mode)', () => {
  it('answers the reference curl example verbatim, offering only calculate', async () => {
    fake.script(
      { kind: 'tool_calls', calls: [{ name: 'calculate', arguments: '{"operation":"add","a":2,"b":2}' }] },
      { kind: 'text', content: '2 + 2 = 4' },
    );
    const response = await completion(
      JSON.parse('{"messages":[{"role":"user","content":"What is 2+2?"}],"model":"kimi-k2-thinking","allowed_tools":["calculate"]}'),
    );
    expect(response.status).toBe(200);
    const body = await response.json();
    expect(body).toMatchObject({ role: 'assistant', content: '2 + 2 = 4', session_id: null, stop_reason: 'stop' });
    expect(body.run_id).toBe(response.headers.get('x-run-id'));
    expect(body.tool_calls[0].function).toEqual({ name: 'calculate', arguments: '{"operation":"add","a":2,"b":2}' });
    expect(fake.requests).toHaveLength(2);
    expect(fake.requests[0]!.body.model).toBe('kimi-k2-thinking');
    expect(toolNames(fake.requests[0]!)).toEqual(['calculate']);
    // The tool result went back to the model, paired with its call.
    const second = fake.requests[1]!.body.messages;
    expect(second.at(-2).tool_calls[0].id).toBe(second.at(-1).tool_call_id);
    expect(second.at(-1)).toMatchObject({ role: 'tool', content: '4' });
  });

  it('runs a dozen tool calls of one message at once without a MaxListenersExceededWarning (each listens to the run)', async () => {
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on('warning', onWarning);
    try {
      const calls = Array.from({ length: 12 }, (_, index) => ({ id: `call_${index}`, name: 'calculate', arguments: `{"operation":"add","a":${index},"b":1}` }));
      fake.script({ kind: 'tool_calls', calls }, { kind: 'text', content: 'summed' });
      const response = await completion({ messages: [{ role: 'user', content: 'add them' }] });
      expect(response.status).toBe(200);
      expect(fake.requests[1]!.body.messages.filter((m: any) => m.role === 'tool').map((m: any) => m.content)).toEqual(calls.map((_, index) => String(index + 1)));
      // Warnings are emitted on the next tick.
      await new Promise((resolve) => setImmediate(resolve));
      expect(warnings.map((warning) => warning.name)).not.toContain('MaxListenersExceededWarning');
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('sums usage over every model call of the run', async () => {
    fake.script(
      { kind: 'tool_calls', calls: [{ name: 'counter', arguments: '{}' }], usage: { prompt_tokens: 7, completion_tokens: 3 } },
      { kind: 'text', content: 'done', usage: { prompt_tokens: 11, completion_tokens: 5 } },
    );
    const body = await (await completion({ messages: [{ role: 'user', content: 'go' }] })).json();
    expect(body.usage).toEqual({ prompt_tokens: 18, completion_tokens: 8, total_tokens: 26 });
  });

  it('puts system_prompt first and uses OPENAI_MODEL when no model is named', async () => {
    fake.script({ kind: 'text', content: 'ok' });
    await completion({ system_prompt: 'Be brief.', messages: [{ role: 'user', content: 'hi' }], temperature: 0.2, max_tokens: 50 });
    const sent = fake.requests[0]!.body;
    expect(sent.messages[0]).toEqual({ role: 'system', content: 'Be brief.' });
    expect(sent.model).toBe('kimi-k2-thinking');
    expect(sent.temperature).toBe(0.2);
    expect(sent.max_tokens).toBe(50);
  });

  it('runs the tool calls of one model message concurrently and returns results in call order', async () => {
    fake.script(
      {
        kind: 'tool_calls',
        calls: [
          { id: 'call_a', name: 'rendezvous', arguments: '{"label":"first"}' },
          { id: 'call_b', name: 'rendezvous', arguments: '{"label":"second"}' },
        ],
      },
      { kind: 'text', content: 'both met' },
    );
    const response = await completion({ messages: [{ role: 'user', content: 'meet' }] });
    expect(response.status).toBe(200);
    const tools = fake.requests[1]!.body.messages.filter((m: any) => m.role === 'tool');
    expect(tools.map((m: any) => [m.tool_call_id, m.content])).toEqual([
      ['call_a', 'met:first'],
      ['call_b', 'met:second'],
    ]);
  });

  it('offers every tool when allowed_tools is absent or null, and none for []', async () => {
    fake.setDefault({ kind: 'text', content: 'ok' });
    await completion({ messages: [{ role: 'user', content: 'a' }] });
    await completion({ messages: [{ role: 'user', content: 'b' }], allowed_tools: null });
    await completion({ messages: [{ role: 'user', content: 'c' }], allowed_tools: [] });
    const all = ['calculate', 'counter', 'failing', 'get_server_time', 'rendezvous', 'sleepy'];
    expect(toolNames(fake.requests[0]!)).toEqual(all);
    expect(toolNames(fake.requests[1]!)).toEqual(all);
    expect(fake.requests[2]!.body.tools).toBeUndefined();
  });

  it('never runs a tool outside allowed_tools, however often the model asks', async () => {
    fake.setDefault({ kind: 'tool_calls', calls: [{ name: 'counter', arguments: '{}' }] });
    const response = await completion({ messages: [{ role: 'user', content: 'count' }], allowed_tools: [] });
    expect(response.status).toBe(200);
    expect((await response.json()).stop_reason).toBe('max_steps');
    expect(counterRuns).toBe(0);
    const refusal = fake.requests[1]!.body.messages.at(-1);
    expect(refusal.role).toBe('tool');
    expect(refusal.content).toMatch(/not allowed/);
  });

  it('rejects allowed_tools naming a tool that does not exist', async () => {
    const response = await completion({ messages: [{ role: 'user', content: 'x' }], allowed_tools: ['nope'] });
    expect(response.status).toBe(400);
    expect((await response.json()).detail).toMatch(/nope/);
    expect(fake.requests).toHaveLength(0);
  });

  it('stops after MAX_AGENT_STEPS model calls with stop_reason max_steps', async () => {
    fake.setDefault({ kind: 'tool_calls', calls: [{ name: 'counter', arguments: '{}' }] });
    const response = await completion({ messages: [{ role: 'user', content: 'loop' }] });
    expect(response.status).toBe(200);
    const body = await response.json();
    expect(body.stop_reason).toBe('max_steps');
    expect(fake.requests).toHaveLength(3);
    // The calls of the last step are not run: every run tool has its result in the transcript.
    expect(counterRuns).toBe(2);
    expect(body.usage.total_tokens).toBeGreaterThan(0);
  });

  it('reports stop_reason length when the model ran out of tokens', async () => {
    fake.script({ kind: 'text', content: 'cut sh', finishReason: 'length' });
    const body = await (await completion({ messages: [{ role: 'user', content: 'x' }] })).json();
    expect(body.stop_reason).toBe('length');
  });

  it('turns every tool failure into a result the model reads, and the run goes on', async () => {
    fake.script(
      {
        kind: 'tool_calls',
        calls: [
          { name: 'calculate', arguments: '{"operation":"add","a":1' },
          { name: 'calculate', arguments: '{"operation":"pow","a":1,"b":2}' },
          { name: 'failing', arguments: '{}' },
          { name: 'sleepy', arguments: '{}' },
          { name: 'no_such_tool', arguments: '{}' },
          { name: 'calculate', arguments: '{"operation":"divide","a":1,"b":0}' },
        ],
      },
      { kind: 'text', content: 'recovered' },
    );
    const response = await completion({ messages: [{ role: 'user', content: 'break things' }] });
    expect(response.status).toBe(200);
    expect((await response.json()).content).toBe('recovered');
    const results = fake.requests[1]!.body.messages.filter((m: any) => m.role === 'tool').map((m: any) => m.content);
    expect(results[0]).toMatch(/not valid JSON/);
    expect(results[1]).toMatch(/invalid arguments.*operation/);
    expect(results[2]).toMatch(/failed: the disk is on fire/);
    expect(results[3]).toMatch(/timed out after 0.2 s/);
    expect(results[4]).toMatch(/no tool named 'no_such_tool'/);
    expect(results[5]).toMatch(/division by zero/);
  });
});

describe('streaming', () => {
  it('sends content, reasoning, tool_call, tool_result and a final done as SSE', async () => {
    fake.script(
      { kind: 'tool_calls', calls: [{ id: 'call_1', name: 'calculate', arguments: '{"operation":"multiply","a":6,"b":7}' }] },
      { kind: 'text', content: 'It is 42.', reasoning: 'six sevens' },
    );
    const response = await completion({ messages: [{ role: 'user', content: '6*7?' }], stream: true });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    expect(response.headers.get('cache-control')).toContain('no-cache');
    expect(response.headers.get('x-accel-buffering')).toBe('no');
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
    const runId = response.headers.get('x-run-id');
    expect(runId).toMatch(/^run_[A-Za-z0-9_-]{22}$/);
    const { events, raw } = await readSse(response);
    expect(events[0]).toEqual({ type: 'run_started', run_id: runId, session_id: null });
    expect(events[1]).toEqual({ type: 'tool_call', id: 'call_1', name: 'calculate', arguments: '{"operation":"multiply","a":6,"b":7}' });
    expect(events[2]).toEqual({ type: 'tool_result', id: 'call_1', name: 'calculate', result: '42' });
    // Every event carries `id: <run_id>:<seq>` with seq counting 1, 2, 3…
    const ids = [...raw.matchAll(/^id: (.+)$/gm)].map((match) => match[1]);
    expect(ids).toEqual(events.map((_, index) => `${runId}:${index + 1}`));
    expect(events.filter((e) => e.type === 'reasoning').map((e) => e.content).join('')).toBe('six sevens');
    expect(events.filter((e) => e.type === 'content').map((e) => e.content).join('')).toBe('It is 42.');
    const last = events.at(-1);
    expect(last).toMatchObject({ type: 'done', run_id: runId, session_id: null, stop_reason: 'stop' });
    expect(last.usage.total_tokens).toBeGreaterThan(0);
    expect(events.filter((e) => e.type === 'done' || e.type === 'error')).toHaveLength(1);
    expect(fake.requests[0]!.body.stream_options).toEqual({ include_usage: true });
  });

  it('streams the same answer the JSON call returns, for any chunking', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.string({ unit: 'grapheme', minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 12 }), async (chunks) => {
        const content = chunks.join('');
        fake.reset();
        fake.script({ kind: 'text', content, chunks }, { kind: 'text', content, chunks });
        const json = await (await completion({ messages: [{ role: 'user', content: 'say it' }] })).json();
        const { events } = await readSse(await completion({ messages: [{ role: 'user', content: 'say it' }], stream: true }));
        const streamed = events.filter((e) => e.type === 'content').map((e) => e.content).join('');
        expect(json.content).toBe(content);
        expect(streamed).toBe(content);
      }),
      { numRuns: 25 },
    );
  });

  it('sends heartbeat comments while a tool runs long', async () => {
    const slow = await startFakeUpstream();
    const quick = await startApp(
      { OPENAI_BASE_URL: slow.url, SSE_HEARTBEAT_SECONDS: '0.05' },
      {
        tools: [
          defineTool({
            name: 'slow',
            description: 'takes a while',
            parameters: Type.Object({}),
            run: () => new Promise((resolve) => setTimeout(resolve, 300, 'finally')),
          }),
        ],
      },
    );
    try {
      slow.script({ kind: 'tool_calls', calls: [{ name: 'slow', arguments: '{}' }] }, { kind: 'text', content: 'ok' });
      const response = await post(`${quick.url}/api/v1/agent/completion`, { messages: [{ role: 'user', content: 'x' }], stream: true });
      const { comments, events } = await readSse(response);
      expect(comments).toBeGreaterThanOrEqual(2);
      expect(events.at(-1).type).toBe('done');
    } finally {
      await quick.close();
      await slow.close();
    }
  });
});
