// A scripted imitation of the OpenAI Chat Completions API on a real node:http server.
// Tests script one step per request; benchmarks run it as a CLI (see the bottom of the file).

import { createServer } from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { randomUUID } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

export type FakeUsage = { prompt_tokens: number; completion_tokens: number };
export type FakeToolCall = { id?: string; name: string; arguments: string };
export type FakeStep =
  | {
      kind: 'text';
      content: string;
      reasoning?: string;
      /** Explicit stream pieces (must join to `content`); overrides chunkSize. */
      chunks?: string[];
      chunkSize?: number;
      delayMs?: number;
      finishReason?: 'stop' | 'length';
      usage?: FakeUsage;
    }
  | { kind: 'tool_calls'; calls: FakeToolCall[]; content?: string; chunkSize?: number; delayMs?: number; usage?: FakeUsage }
  | { kind: 'status'; status: number; body?: unknown; headers?: Record<string, string> }
  /** Read the request and never answer; the socket stays open until the client or close() ends it. */
  | { kind: 'silent' }
  /** Stream `afterChunks` content chunks, then destroy the socket; non-stream requests are destroyed at once. */
  | { kind: 'drop'; content: string; afterChunks: number; chunkSize?: number; delayMs?: number }
  | { kind: 'handler'; handle: (req: RecordedRequest, res: ServerResponse) => void | Promise<void> };

export interface RecordedRequest {
  body: any;
  headers: IncomingHttpHeaders;
  path: string;
  /** The client closed the connection before the response finished (not set for `drop` or close()). */
  closedEarly: boolean;
}

export interface FakeUpstream {
  url: string;
  requests: RecordedRequest[];
  script(...steps: FakeStep[]): void;
  setDefault(step: FakeStep | ((req: RecordedRequest) => FakeStep)): void;
  waitForRequests(n: number, timeoutMs?: number): Promise<void>;
  reset(): void;
  close(): Promise<void>;
}

type DefaultStep = FakeStep | ((req: RecordedRequest) => FakeStep);

const INITIAL_DEFAULT: FakeStep = { kind: 'text', content: 'Hello from fake' };
const DEFAULT_ERROR_BODY = { error: { message: 'fake error', type: 'server_error' } };
const ROLE_DELTA = '{"role":"assistant","content":"","refusal":null}';
const DONE = 'data: [DONE]\n\n';
const DEFAULT_CHUNK_SIZE = 4;

const idPrefix = randomUUID().replaceAll('-', '').slice(0, 12);
let idCounter = 0;
const nextId = (): string => idPrefix + (idCounter++).toString(36);
const newCallId = (): string => `call_${randomUUID().replaceAll('-', '').slice(0, 24)}`;

// ---------------------------------------------------------------------------------------------
// Steps are rendered once into JSON fragments and cached, so a default step that serves
// thousands of requests costs only string concatenation per request.

interface Prepared {
  /** Delta JSON strings in stream order; a number is the index of a tool call whose first chunk needs its per-request id. */
  items: (string | number)[];
  calls: { id?: string; name: string; nameJson: string; arguments: string }[];
  content: string | null;
  reasoning: string | undefined;
  finish: 'stop' | 'length' | 'tool_calls';
  usageJson: string;
  /** Message JSON when it holds no tool calls (otherwise built per request with fresh ids). */
  messageJson: string | undefined;
}

const prepared = new WeakMap<FakeStep, Prepared>();

function splitCodePoints(text: string, size: number): string[] {
  const n = Math.max(1, Math.floor(size));
  const points = Array.from(text);
  const out: string[] = [];
  for (let i = 0; i < points.length; i += n) out.push(points.slice(i, i + n).join(''));
  return out;
}

function countWords(text: string | null | undefined): number {
  return text?.match(/\S+/g)?.length ?? 0;
}

function usageJson(usage: FakeUsage | undefined, content: string | null | undefined): string {
  const prompt = usage?.prompt_tokens ?? 10;
  const completion = usage?.completion_tokens ?? (countWords(content) || 5);
  return `{"prompt_tokens":${prompt},"completion_tokens":${completion},"total_tokens":${prompt + completion}}`;
}

function buildMessage(p: Prepared, ids: string[]): string {
  const message: Record<string, unknown> = { role: 'assistant', content: p.content };
  if (p.reasoning !== undefined) message.reasoning_content = p.reasoning;
  if (p.calls.length > 0) {
    message.tool_calls = p.calls.map((c, i) => ({
      id: ids[i],
      type: 'function',
      function: { name: c.name, arguments: c.arguments },
    }));
  }
  message.refusal = null;
  message.annotations = [];
  return JSON.stringify(message);
}

type GeneratingStep = Extract<FakeStep, { kind: 'text' | 'tool_calls' | 'drop' }>;

function prepare(step: GeneratingStep): Prepared {
  const cached = prepared.get(step);
  if (cached) return cached;

  const items: (string | number)[] = [];
  let p: Prepared;
  if (step.kind === 'tool_calls') {
    const size = step.chunkSize ?? DEFAULT_CHUNK_SIZE;
    if (step.content) for (const piece of splitCodePoints(step.content, size)) items.push(JSON.stringify({ content: piece }));
    const calls = step.calls.map((c, i) => {
      items.push(i);
      for (const piece of splitCodePoints(c.arguments, size)) {
        items.push(`{"tool_calls":[{"index":${i},"function":{"arguments":${JSON.stringify(piece)}}}]}`);
      }
      return { id: c.id, name: c.name, nameJson: JSON.stringify(c.name), arguments: c.arguments };
    });
    p = {
      items,
      calls,
      content: step.content ?? null,
      reasoning: undefined,
      finish: 'tool_calls',
      usageJson: usageJson(step.usage, step.content),
      messageJson: undefined,
    };
  } else {
    const reasoning = step.kind === 'text' ? step.reasoning : undefined;
    if (reasoning) {
      for (const piece of splitCodePoints(reasoning, step.chunkSize ?? DEFAULT_CHUNK_SIZE)) {
        items.push(JSON.stringify({ reasoning_content: piece }));
      }
    }
    let pieces: string[];
    if (step.kind === 'text' && step.chunks) {
      if (step.chunks.join('') !== step.content) throw new Error('fake-upstream: text step chunks must join to its content');
      pieces = step.chunks;
    } else {
      pieces = splitCodePoints(step.content, step.chunkSize ?? DEFAULT_CHUNK_SIZE);
    }
    for (const piece of pieces) items.push(JSON.stringify({ content: piece }));
    p = {
      items,
      calls: [],
      content: step.content,
      reasoning,
      finish: (step.kind === 'text' && step.finishReason) || 'stop',
      usageJson: usageJson(step.kind === 'text' ? step.usage : undefined, step.content),
      messageJson: undefined,
    };
    p.messageJson = buildMessage(p, []);
  }
  prepared.set(step, p);
  return p;
}

function isGenerating(step: FakeStep): step is GeneratingStep {
  return step.kind === 'text' || step.kind === 'tool_calls' || step.kind === 'drop';
}

// ---------------------------------------------------------------------------------------------
// Per-response pacing that stops as soon as the connection closes.

class Life {
  closed = false;
  private timer: NodeJS.Timeout | undefined;
  private wake: ((alive: boolean) => void) | undefined;

  /** Resolves true after ms, or false as soon as the connection closes. */
  sleep(ms: number): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    return new Promise((resolve) => {
      this.wake = resolve;
      this.timer = setTimeout(() => {
        this.wake = undefined;
        resolve(true);
      }, ms);
    });
  }

  end(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.wake?.(false);
    this.wake = undefined;
  }
}

function readBody(req: IncomingMessage): Promise<string | null> {
  return new Promise((resolve) => {
    let data = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      data += chunk;
    });
    req.on('end', () => resolve(data));
    req.on('error', () => resolve(null));
    req.on('close', () => resolve(null)); // no effect after 'end'
  });
}

function sendJson(res: ServerResponse, status: number, body: string, extra?: Record<string, string>): void {
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'x-request-id': `req_${nextId()}`,
    ...extra,
  });
  res.end(body);
}

function openAiError(message: string, type: string): string {
  return JSON.stringify({ error: { message, type, param: null, code: null } });
}

// ---------------------------------------------------------------------------------------------

export async function startFakeUpstream(opts: { host?: string; port?: number } = {}): Promise<FakeUpstream> {
  const host = opts.host ?? '127.0.0.1';
  const requests: RecordedRequest[] = [];
  const queue: FakeStep[] = [];
  let fallback: DefaultStep = INITIAL_DEFAULT;
  let closing = false;
  const sockets = new Set<Socket>();
  const waiters = new Set<{ n: number; resolve: () => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();

  function notify(): void {
    for (const w of waiters) {
      if (requests.length >= w.n) {
        clearTimeout(w.timer);
        waiters.delete(w);
        w.resolve();
      }
    }
  }

  function validate(step: DefaultStep): void {
    if (typeof step !== 'function' && isGenerating(step)) prepare(step);
  }

  async function serve(step: FakeStep, rec: RecordedRequest, res: ServerResponse, life: Life, drop: () => void): Promise<void> {
    switch (step.kind) {
      case 'silent':
        return;
      case 'handler':
        await step.handle(rec, res);
        return;
      case 'status': {
        const raw = typeof step.body === 'string';
        const payload = raw ? (step.body as string) : JSON.stringify(step.body ?? DEFAULT_ERROR_BODY);
        sendJson(res, step.status, payload, { ...(raw ? { 'content-type': 'text/plain' } : {}), ...step.headers });
        return;
      }
    }

    const p = prepare(step);
    const body = rec.body as { model?: unknown; stream?: unknown; stream_options?: { include_usage?: unknown } } | undefined;
    const stream = body?.stream === true;
    const delayMs = step.delayMs ?? 0;
    const id = `chatcmpl-${nextId()}`;
    const created = Math.floor(Date.now() / 1000);
    const modelJson = JSON.stringify(typeof body?.model === 'string' ? body.model : 'fake-model');

    if (step.kind === 'drop' && !stream) {
      drop();
      return;
    }
    const ids = p.calls.map((c) => c.id ?? newCallId());

    if (!stream) {
      // A non-stream answer takes as long as the stream would have.
      if (delayMs > 0 && !(await life.sleep(delayMs * (p.items.length + 2)))) return;
      const message = p.messageJson ?? buildMessage(p, ids);
      sendJson(
        res,
        200,
        `{"id":"${id}","object":"chat.completion","created":${created},"model":${modelJson},"choices":[{"index":0,"message":${message},"logprobs":null,"finish_reason":"${p.finish}"}],"usage":${p.usageJson},"service_tier":"default","system_fingerprint":"fp_fake"}`,
      );
      return;
    }

    const includeUsage = body?.stream_options?.include_usage === true;
    const head = `data: {"id":"${id}","object":"chat.completion.chunk","created":${created},"model":${modelJson},"service_tier":"default","system_fingerprint":"fp_fake",`;
    const open = `${head}"choices":[{"index":0,"delta":`;
    const tail = includeUsage ? ',"usage":null}\n\n' : '}\n\n';
    const mid = `,"logprobs":null,"finish_reason":null}]${tail}`;

    const events: string[] = [open + ROLE_DELTA + mid];
    const items = step.kind === 'drop' ? p.items.slice(0, Math.max(0, step.afterChunks)) : p.items;
    for (const item of items) {
      if (typeof item === 'string') {
        events.push(open + item + mid);
      } else {
        const call = p.calls[item];
        events.push(
          `${open}{"tool_calls":[{"index":${item},"id":${JSON.stringify(ids[item])},"type":"function","function":{"name":${call?.nameJson},"arguments":""}}]}${mid}`,
        );
      }
    }
    if (step.kind !== 'drop') {
      events.push(`${open}{},"logprobs":null,"finish_reason":"${p.finish}"}]${tail}`);
      if (includeUsage) events.push(`${head}"choices":[],"usage":${p.usageJson}}\n\n`);
      events.push(DONE);
    }

    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      'x-request-id': `req_${nextId()}`,
    });

    if (delayMs <= 0) {
      if (step.kind === 'drop') res.write(events.join(''), drop);
      else res.end(events.join(''));
      return;
    }
    for (const [i, event] of events.entries()) {
      if (event !== DONE && !(await life.sleep(delayMs))) return;
      if (step.kind === 'drop' && i === events.length - 1) res.write(event, drop);
      else res.write(event);
    }
    if (step.kind !== 'drop') res.end();
  }

  async function onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    const raw = await readBody(req);
    if (raw === null || res.destroyed) return;

    let body: any;
    let parsed = true;
    try {
      body = raw === '' ? undefined : JSON.parse(raw);
    } catch {
      body = raw;
      parsed = false;
    }
    const rec: RecordedRequest = { body, headers: req.headers, path, closedEarly: false };
    requests.push(rec);
    if (waiters.size > 0) notify();

    const life = new Life();
    let dropped = false;
    const drop = (): void => {
      dropped = true;
      req.socket.destroy();
    };
    res.on('close', () => {
      if (!res.writableFinished && !dropped && !closing) rec.closedEarly = true;
      life.end();
    });

    if (req.method !== 'POST' || (path !== '/v1/chat/completions' && path !== '/chat/completions')) {
      sendJson(res, 404, openAiError(`Invalid URL (${req.method} ${path})`, 'invalid_request_error'));
      return;
    }
    if (!parsed) {
      sendJson(res, 400, openAiError('We could not parse the JSON body of your request.', 'invalid_request_error'));
      return;
    }

    try {
      const step = queue.shift() ?? (typeof fallback === 'function' ? fallback(rec) : fallback);
      await serve(step, rec, res, life, drop);
    } catch (err) {
      if (res.headersSent) res.destroy();
      else sendJson(res, 500, openAiError(`fake-upstream: ${(err as Error).message}`, 'fake_upstream_error'));
    }
  }

  const server = createServer((req, res) => void onRequest(req, res));
  server.keepAliveTimeout = 30_000;
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('fake-upstream: no TCP address');
  const urlHost = host.includes(':') ? `[${host}]` : host;

  return {
    url: `http://${urlHost}:${address.port}/v1`,
    requests,
    script(...steps) {
      steps.forEach(validate);
      queue.push(...steps);
    },
    setDefault(step) {
      validate(step);
      fallback = step;
    },
    waitForRequests(n, timeoutMs = 5_000) {
      if (requests.length >= n) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const w = {
          n,
          resolve,
          reject,
          timer: setTimeout(() => {
            waiters.delete(w);
            reject(new Error(`fake-upstream: ${requests.length} of ${n} requests after ${timeoutMs} ms`));
          }, timeoutMs),
        };
        waiters.add(w);
      });
    },
    reset() {
      queue.length = 0;
      requests.length = 0;
      fallback = INITIAL_DEFAULT;
    },
    close() {
      closing = true;
      for (const w of waiters) {
        clearTimeout(w.timer);
        w.reject(new Error('fake-upstream: closed'));
      }
      waiters.clear();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      return closed;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Modes for benchmarks: `tsx test/support/fake-upstream.ts --port 0 --mode text50|tool2 [--delay-ms N]`

export type FakeMode = 'text50' | 'tool2';

/** The default step of a CLI mode; exported so tests can use the same behaviour in process. */
export function modeDefault(mode: FakeMode, delayMs = 0): DefaultStep {
  const words = Array.from({ length: 50 }, (_, i) => `w${i + 1}`);
  const text50: FakeStep = {
    kind: 'text',
    content: words.join(' '),
    chunks: words.map((w, i) => (i === 0 ? w : ` ${w}`)),
    delayMs,
  };
  if (mode === 'text50') return text50;
  const toolCall: FakeStep = {
    kind: 'tool_calls',
    calls: [{ name: 'calculate', arguments: '{"operation":"add","a":2,"b":2}' }],
    delayMs,
  };
  return (req) => {
    const messages: unknown = req.body?.messages;
    const last = Array.isArray(messages) ? (messages[messages.length - 1] as { role?: unknown } | undefined) : undefined;
    return last?.role === 'tool' ? text50 : toolCall;
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '0' },
      host: { type: 'string', default: '127.0.0.1' },
      mode: { type: 'string', default: 'text50' },
      'delay-ms': { type: 'string', default: '0' },
    },
  });
  const mode = values.mode;
  if (mode !== 'text50' && mode !== 'tool2') {
    process.stderr.write(`fake-upstream: unknown --mode ${mode}; use text50 or tool2\n`);
    process.exit(2);
  }
  const fake = await startFakeUpstream({ host: values.host, port: Number(values.port) });
  fake.setDefault(modeDefault(mode, Number(values['delay-ms'])));
  // A long-running server must not keep every request it saw.
  setInterval(() => {
    fake.requests.length = 0;
  }, 1_000).unref();
  process.stdout.write(`${JSON.stringify({ url: fake.url })}\n`);
}

function isMain(): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMain()) {
  main().catch((err: unknown) => {
    process.stderr.write(`${String(err)}\n`);
    process.exit(1);
  });
}
