import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { buildApp, type AppOverrides } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';

const NO_MCP_CONFIG = join(tmpdir(), 'chassis-tests-no-mcp-config', 'absent.json');

export interface TestApp {
  app: FastifyInstance;
  url: string;
  /** Every log line the app wrote, parsed. */
  logs: Array<Record<string, any>>;
  /** Raw log text, for "never contains" checks. */
  logText(): string;
  close(): Promise<void>;
}

/**
 * Config for a test: only `env`, plus what keeps a developer's files out (no MCP servers from the
 * repo's mcp_config.json, an in-memory database instead of ./data). Every test that builds an app
 * itself takes its config from here, never from loadConfig directly.
 */
export function testConfig(env: Record<string, string> = {}) {
  return loadConfig({ MCP_CONFIG_PATH: NO_MCP_CONFIG, DATABASE_URL: 'sqlite::memory:', ...env });
}

/**
 * A real server on a loopback port, configured only from `env` (never the process environment, never
 * a `.env` file; persistence and the general rate limit default to off). Files the repository may
 * hold on a developer's machine are never read either: without MCP_CONFIG_PATH there are no MCP
 * servers (not the repo's mcp_config.json), without DATABASE_URL the database is in memory.
 */
export async function startApp(env: Record<string, string> = {}, overrides: AppOverrides = {}): Promise<TestApp> {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, callback) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      callback();
    },
  });
  // The general rate limit is off unless a test asks for it: every test client shares 127.0.0.1.
  const config = testConfig({ ENABLE_PERSISTENCE: 'false', ENABLE_RATE_LIMITING: 'false', LOG_LEVEL: 'info', ...env });
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

/**
 * Reads a stream until `until(text so far)` holds and returns the text; throws as soon as the stream
 * ends first, so a test never spins on a finished stream (read() then gives no more bytes).
 */
export async function readStreamUntil(reader: ReadableStreamDefaultReader<Uint8Array>, until: (text: string) => boolean, decoder = new TextDecoder()): Promise<string> {
  let text = '';
  while (!until(text)) {
    const chunk = await reader.read();
    if (chunk.done) throw new Error(`the stream ended before the awaited point; it sent:\n${text}`);
    text += decoder.decode(chunk.value, { stream: true });
  }
  return text;
}

export function post(url: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}
