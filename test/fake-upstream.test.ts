import { spawn } from 'node:child_process';
import { request, Agent } from 'node:http';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { modeDefault, startFakeUpstream } from './support/fake-upstream.js';
import type { FakeUpstream } from './support/fake-upstream.js';

let fake: FakeUpstream;
let client: OpenAI;
const messages = [{ role: 'user' as const, content: 'hi' }];

beforeAll(async () => {
  fake = await startFakeUpstream();
  client = new OpenAI({ baseURL: fake.url, apiKey: 'x', maxRetries: 0 });
});
afterAll(async () => {
  await fake.close();
});
beforeEach(() => {
  fake.reset();
});

describe('fake upstream with the openai SDK', () => {
  it('answers a non-stream text completion', async () => {
    fake.script({ kind: 'text', content: 'two words', reasoning: 'because' });
    const completion = await client.chat.completions.create({ model: 'm-1', messages });
    expect(completion.object).toBe('chat.completion');
    expect(completion.id).toMatch(/^chatcmpl-/);
    expect(completion.model).toBe('m-1');
    expect(completion.choices[0]?.message).toMatchObject({ role: 'assistant', content: 'two words' });
    expect((completion.choices[0]?.message as any).reasoning_content).toBe('because');
    expect(completion.choices[0]?.finish_reason).toBe('stop');
    expect(completion.usage).toMatchObject({ prompt_tokens: 10, completion_tokens: 2, total_tokens: 12 });
    expect(fake.requests).toHaveLength(1);
    expect(fake.requests[0]?.path).toBe('/v1/chat/completions');
    expect(fake.requests[0]?.body).toMatchObject({ model: 'm-1', messages });
    expect(fake.requests[0]?.headers.authorization).toBe('Bearer x');
  });

  it('uses the default step when the queue is empty', async () => {
    const first = await client.chat.completions.create({ model: 'm', messages });
    expect(first.choices[0]?.message.content).toBe('Hello from fake');
    fake.setDefault((req) => ({ kind: 'text', content: `echo ${req.body.model}` }));
    const second = await client.chat.completions.create({ model: 'm2', messages });
    expect(second.choices[0]?.message.content).toBe('echo m2');
  });

  it('streams text in code-point chunks, with usage only when asked', async () => {
    const content = 'Grüße 😀🎉 from the fake upstream';
    fake.script({ kind: 'text', content, chunkSize: 1, usage: { prompt_tokens: 7, completion_tokens: 3 } });
    const stream = await client.chat.completions.create({
      model: 'm',
      messages,
      stream: true,
      stream_options: { include_usage: true },
    });
    const pieces: string[] = [];
    const finishes: (string | null)[] = [];
    let usage: OpenAI.CompletionUsage | null | undefined;
    let roleSeen = false;
    for await (const chunk of stream) {
      expect(chunk.object).toBe('chat.completion.chunk');
      if (chunk.usage) {
        expect(chunk.choices).toEqual([]);
        usage = chunk.usage;
      }
      const choice = chunk.choices[0];
      if (!choice) continue;
      if (choice.delta.role === 'assistant') roleSeen = true;
      if (choice.delta.content) pieces.push(choice.delta.content);
      if (choice.finish_reason) finishes.push(choice.finish_reason);
    }
    expect(roleSeen).toBe(true);
    expect(pieces.join('')).toBe(content);
    expect(pieces).toHaveLength(Array.from(content).length);
    for (const piece of pieces) expect(Array.from(piece)).toHaveLength(1);
    expect(finishes).toEqual(['stop']);
    expect(usage).toEqual({ prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 });

    fake.script({ kind: 'text', content: 'no usage here' });
    let usageChunks = 0;
    for await (const chunk of await client.chat.completions.create({ model: 'm', messages, stream: true })) {
      if (chunk.usage) usageChunks++;
    }
    expect(usageChunks).toBe(0);
  });

  it('streams tool calls that reassemble from deltas', async () => {
    const calls = [
      { name: 'calculate', arguments: '{"operation":"add","a":2,"b":2}' },
      { id: 'call_fixed', name: 'lookup', arguments: '{"q":"weather in Zürich"}' },
    ];
    fake.script({ kind: 'tool_calls', calls });
    const stream = await client.chat.completions.create({ model: 'm', messages, stream: true });
    const built: { id?: string; name: string; arguments: string; chunks: number }[] = [];
    let finish: string | null = null;
    for await (const chunk of stream) {
      const choice = chunk.choices[0];
      for (const delta of choice?.delta.tool_calls ?? []) {
        const slot = (built[delta.index] ??= { name: '', arguments: '', chunks: 0 });
        if (delta.id) slot.id = delta.id;
        if (delta.function?.name) slot.name += delta.function.name;
        if (delta.function?.arguments) {
          slot.arguments += delta.function.arguments;
          slot.chunks++;
        }
      }
      if (choice?.finish_reason) finish = choice.finish_reason;
    }
    expect(finish).toBe('tool_calls');
    expect(built.map(({ name, arguments: args }) => ({ name, arguments: args }))).toEqual(
      calls.map(({ name, arguments: args }) => ({ name, arguments: args })),
    );
    expect(built[0]?.id).toMatch(/^call_\w+$/);
    expect(built[1]?.id).toBe('call_fixed');
    expect(built[0]?.chunks).toBeGreaterThan(1);

    fake.script({ kind: 'tool_calls', calls });
    const completion = await client.chat.completions.create({ model: 'm', messages });
    const message = completion.choices[0]?.message;
    expect(message?.content).toBeNull();
    expect(completion.choices[0]?.finish_reason).toBe('tool_calls');
    expect(message?.tool_calls).toEqual([
      { id: expect.stringMatching(/^call_/), type: 'function', function: calls[0] },
      { id: 'call_fixed', type: 'function', function: { name: 'lookup', arguments: calls[1]?.arguments } },
    ]);
    expect(completion.usage?.completion_tokens).toBe(5);
  });

  it('streams reasoning deltas before the content', async () => {
    fake.script({ kind: 'text', reasoning: 'Let me think about it.', content: 'Answer.' });
    const order: string[] = [];
    let reasoning = '';
    let content = '';
    for await (const chunk of await client.chat.completions.create({ model: 'm', messages, stream: true })) {
      const delta = chunk.choices[0]?.delta;
      const piece = (delta as any)?.reasoning_content as string | undefined;
      if (piece) {
        reasoning += piece;
        order.push('r');
      }
      if (delta?.content) {
        content += delta.content;
        order.push('c');
      }
    }
    expect(reasoning).toBe('Let me think about it.');
    expect(content).toBe('Answer.');
    expect(order.join('')).toMatch(/^r+c+$/);
  });

  it('answers a status step with an APIError and its headers', async () => {
    fake.script({ kind: 'status', status: 500, headers: { 'retry-after': '1' } });
    const err = await client.chat.completions.create({ model: 'm', messages }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect((err as InstanceType<typeof OpenAI.APIError>).status).toBe(500);
    expect((err as InstanceType<typeof OpenAI.APIError>).message).toContain('fake error');
    expect((err as InstanceType<typeof OpenAI.APIError>).headers?.get('retry-after')).toBe('1');

    fake.script({ kind: 'status', status: 429, body: { error: { message: 'slow down', type: 'rate_limit' } } });
    const limited = await client.chat.completions.create({ model: 'm', messages }).catch((e: unknown) => e);
    expect(limited).toBeInstanceOf(OpenAI.RateLimitError);
  });

  it('ends the SDK stream with an error when the upstream drops mid-stream', async () => {
    fake.script({ kind: 'drop', content: 'one two three four five six', afterChunks: 3 });
    const stream = await client.chat.completions.create({ model: 'm', messages, stream: true });
    const pieces: string[] = [];
    const err = await (async () => {
      for await (const chunk of stream) {
        const piece = chunk.choices[0]?.delta.content;
        if (piece) pieces.push(piece);
      }
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(pieces).toEqual(['one ', 'two ', 'thre']);
    expect(fake.requests[0]?.closedEarly).toBe(false);

    fake.script({ kind: 'drop', content: 'x', afterChunks: 0 });
    const nonStream = await client.chat.completions.create({ model: 'm', messages }).catch((e: unknown) => e);
    expect(nonStream).toBeInstanceOf(OpenAI.APIConnectionError);
  });

  it('marks closedEarly when the client gives up on a silent or slow answer', async () => {
    fake.script({ kind: 'silent' }, { kind: 'text', content: 'a b c d e f g h', chunkSize: 2, delayMs: 50 });
    const silent = await client.chat.completions.create({ model: 'm', messages }, { timeout: 200 }).catch((e: unknown) => e);
    expect(silent).toBeInstanceOf(OpenAI.APIConnectionTimeoutError);

    // Leaving the loop makes the SDK abort the request (it ends the stream quietly, without an error).
    const stream = await client.chat.completions.create({ model: 'm', messages, stream: true });
    let seen = '';
    for await (const chunk of stream) {
      seen += chunk.choices[0]?.delta.content ?? '';
      if (seen) break;
    }
    expect(seen).toBe('a ');

    await expect.poll(() => fake.requests.map((r) => r.closedEarly)).toEqual([true, true]);
  });

  it('keeps connections alive across requests and waits for requests', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const post = () =>
      new Promise<{ port: number | undefined; body: string }>((resolve, reject) => {
        const req = request(
          `${fake.url}/chat/completions`,
          { method: 'POST', agent, headers: { 'content-type': 'application/json' } },
          (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (c: string) => (body += c));
            res.on('end', () => resolve({ port: req.socket?.localPort, body }));
          },
        );
        req.on('error', reject);
        req.end(JSON.stringify({ model: 'm', messages, stream: true }));
      });
    const waited = fake.waitForRequests(3);
    const answers = [await post(), await post(), await post()];
    await waited;
    agent.destroy();
    expect(new Set(answers.map((a) => a.port)).size).toBe(1);
    expect(answers[0]?.body.endsWith('data: [DONE]\n\n')).toBe(true);
    await expect(fake.waitForRequests(4, 50)).rejects.toThrow(/3 of 4/);
  });

  it('serves the tool2 mode: a tool call, then text50 after the tool result', async () => {
    fake.setDefault(modeDefault('tool2'));
    const first = await client.chat.completions.create({ model: 'm', messages });
    const call = first.choices[0]?.message.tool_calls?.[0];
    expect(call?.type === 'function' && call.function).toEqual({ name: 'calculate', arguments: '{"operation":"add","a":2,"b":2}' });
    const second = await client.chat.completions.create({
      model: 'm',
      messages: [
        ...messages,
        first.choices[0]!.message,
        { role: 'tool', tool_call_id: call!.id, content: '4' },
      ],
    });
    expect(second.usage?.completion_tokens).toBe(50);
  });
});

describe('fake upstream CLI', () => {
  it('prints its url and serves text50', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/fake-upstream.ts', '--port', '0', '--mode', 'text50'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      const line = await new Promise<string>((resolve, reject) => {
        createInterface({ input: child.stdout }).once('line', resolve);
        child.once('exit', (code) => reject(new Error(`fake-upstream CLI exited with ${code}`)));
      });
      const { url } = JSON.parse(line) as { url: string };
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1$/);

      const cli = new OpenAI({ baseURL: url, apiKey: 'x', maxRetries: 0 });
      const stream = await cli.chat.completions.create({
        model: 'm',
        messages,
        stream: true,
        stream_options: { include_usage: true },
      });
      const pieces: string[] = [];
      let completionTokens = 0;
      for await (const chunk of stream) {
        const piece = chunk.choices[0]?.delta.content;
        if (piece) pieces.push(piece);
        if (chunk.usage) completionTokens = chunk.usage.completion_tokens;
      }
      expect(pieces).toHaveLength(50);
      expect(pieces.join('')).toBe(Array.from({ length: 50 }, (_, i) => `w${i + 1}`).join(' '));
      expect(completionTokens).toBe(50);
    } finally {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill();
      await exited;
    }
  }, 20_000);
});
