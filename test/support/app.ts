import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { buildApp, type AppOverrides } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';

export interface TestApp {
  app: FastifyInstance;
  url: string;
  /** Every log line the app wrote, parsed. */
  logs: Array<Record<string, any>>;
  /** Raw log text, for "never contains" checks. */
  logText(): string;
  close(): Promise<void>;
}

/** A real server on a loopback port, configured only from `env` (never the process environment; persistence and the general rate limit default to off). */
export async function startApp(env: Record<string, string> = {}, overrides: AppOverrides = {}): Promise<TestApp> {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, callback) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      callback();
    },
  });
  // The general rate limit is off unless a test asks for it: every test client shares 127.0.0.1.
  const config = loadConfig({ ENABLE_PERSISTENCE: 'false', ENABLE_RATE_LIMITING: 'false', LOG_LEVEL: 'info', ...env });
  const app = await buildApp(config, { logStream: stream, ...overrides });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return {
    app,
    url: `http://127.0.0.1:${address.port}`,
    get logs() {
      return lines.map((line) => JSON.parse(line));
    },
    logText: () => lines.join('\n'),
    close: () => app.close(),
  };
}

export interface SseEvent {
  id?: string;
  data: any;
}

/** Reads a whole SSE response: data events parsed as JSON, plus the count of comment lines (heartbeats). */
export async function readSse(response: Response): Promise<{ events: any[]; comments: number; raw: string }> {
  const raw = await response.text();
  const events: any[] = [];
  let comments = 0;
  for (const frame of raw.split('\n\n')) {
    if (frame.trim() === '') continue;
    const data: string[] = [];
    for (const line of frame.split('\n')) {
      if (line.startsWith(':')) comments++;
      else if (line.startsWith('data: ')) data.push(line.slice(6));
    }
    if (data.length > 0) events.push(JSON.parse(data.join('\n')));
  }
  return { events, comments, raw };
}

export function post(url: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}
