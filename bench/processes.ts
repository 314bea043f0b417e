// Child processes of a benchmark: the fake upstream and the chassis, each in its own process so
// their CPU and memory can be read from /proc apart from the load generator's.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';

export const repoRoot = fileURLToPath(new URL('..', import.meta.url));

export interface Child {
  pid: number;
  /** Origin for HTTP requests, e.g. http://127.0.0.1:41234 */
  origin: string;
  /** SIGTERM, then SIGKILL if it has not exited within `graceMs`; resolves with the exit code. */
  stop(graceMs?: number): Promise<number | null>;
}

const children = new Set<ChildProcess>();

// A benchmark that fails or is interrupted must not leave servers behind.
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    process.stderr.write(`\nbench: ${signal}, stopping child processes\n`);
    process.exit(130);
  });
}

function track(child: ChildProcess, name: string): { exited: Promise<number | null>; stderr: () => string } {
  children.add(child);
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (text: string) => {
    // Keep only the tail: a chatty child must not grow the bench's memory.
    stderr = (stderr + text).slice(-4000);
  });
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code, signal) => {
      children.delete(child);
      // Nobody asked it to stop: say so at once, with its last words, or the bench only sees ECONNREFUSED.
      if (!child.killed) process.stderr.write(`bench: ${name} exited by itself (code ${code}, signal ${signal})\n${stderr}\n`);
      resolve(code ?? (signal ? null : 0));
    });
  });
  child.once('error', (error) => process.stderr.write(`bench: ${name}: ${error.message}\n`));
  return { exited, stderr: () => stderr };
}

function stopper(child: ChildProcess, exited: Promise<number | null>) {
  return async (graceMs = 5_000): Promise<number | null> => {
    if (child.exitCode !== null || child.signalCode !== null) return exited;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    try {
      return await exited;
    } finally {
      clearTimeout(timer);
    }
  };
}

async function failWithin<T>(promise: Promise<T>, exited: Promise<number | null>, ms: number, what: string, stderr: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not ready after ${ms} ms\n${stderr()}`)), ms);
  });
  const died = exited.then((code) => {
    throw new Error(`${what}: exited with ${code} before it was ready\n${stderr()}`);
  });
  try {
    return await Promise.race([promise, timeout, died]);
  } finally {
    clearTimeout(timer);
  }
}

import type { FakeMode } from './exchanges.js';

/** The fake OpenAI-compatible upstream from test/support, as its own process on a loopback port. */
export function startFakeProcess(mode: FakeMode, delayMs = 0): Promise<Child & { url: string }> {
  return startAnnouncingProcess('fake upstream', ['test/support/fake-upstream.ts', '--port', '0', '--host', '127.0.0.1', '--mode', mode, '--delay-ms', String(delayMs)]);
}

/** The bare agent endpoint of bench/bare-server.ts in front of `upstreamUrl`: the yardstick. */
export function startBareProcess(upstreamUrl: string): Promise<Child & { url: string }> {
  return startAnnouncingProcess('bare server', ['bench/bare-server.ts', '--upstream', upstreamUrl]);
}

/** A TypeScript server of ours that prints `{"url": …}` on its first line once it listens. */
async function startAnnouncingProcess(name: string, args: string[]): Promise<Child & { url: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', ...args], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '' } });
  const { exited, stderr } = track(child, name);
  const firstLine = new Promise<string>((resolve) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
  });
  const line = await failWithin(firstLine, exited, 15_000, name, stderr);
  const url = (JSON.parse(line) as { url: string }).url;
  return { pid: child.pid!, url, origin: new URL(url).origin, stop: stopper(child, exited) };
}

/** A free loopback port (the chassis is told its port, so it is chosen here). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

async function waitForHealth(origin: string, exited: Promise<number | null>, stderr: () => string, timeoutMs: number): Promise<void> {
  let exitCode: number | null | undefined;
  void exited.then((code) => {
    exitCode = code;
  });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (exitCode !== undefined) throw new Error(`chassis: exited with ${exitCode} before it was ready\n${stderr()}`);
    if (Date.now() > deadline) throw new Error(`chassis: /health not 200 after ${timeoutMs / 1000} s\n${stderr()}`);
    try {
      const response = await request(`${origin}/health`);
      await response.body.dump();
      if (response.statusCode === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** `--env NAME=VALUE` options of a bench script as the chassis settings they name. */
export function envFromPairs(pairs: readonly string[]): Record<string, string> {
  return Object.fromEntries(
    pairs.map((pair) => {
      const at = pair.indexOf('=');
      if (at < 1) throw new Error(`--env wants NAME=VALUE, got ${pair}`);
      return [pair.slice(0, at), pair.slice(at + 1)];
    }),
  );
}

export interface ChassisOptions {
  upstreamUrl: string;
  /** Extra node flags, e.g. --cpu-prof. */
  nodeArgs?: string[];
  /** A command that runs node, e.g. ['valgrind', '--tool=callgrind']. */
  wrapper?: string[];
  /** Another build to run instead of dist/main.js (an A/B of two builds: copy dist away first). */
  main?: string;
  /** How long it may take to answer /health (default 20 s). */
  readyTimeoutMs?: number;
  env?: Record<string, string>;
}

/**
 * `node dist/main.js` (run `npm run build` first) with a minimal environment: nothing from the
 * caller's shell or a .env file may change what is measured, so it runs in an empty temp directory.
 */
export async function startChassisProcess(options: ChassisOptions): Promise<Child> {
  const port = await freePort();
  const cwd = mkdtempSync(join(tmpdir(), 'chassis-bench-'));
  const [command, ...args] = [...(options.wrapper ?? []), process.execPath, ...(options.nodeArgs ?? []), options.main ?? join(repoRoot, 'dist', 'main.js')];
  const child = spawn(command!, args, {
    cwd,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: {
      PATH: process.env.PATH ?? '',
      PORT: String(port),
      HOST: '127.0.0.1',
      OPENAI_BASE_URL: options.upstreamUrl,
      OPENAI_API_KEY: 'bench',
      OPENAI_MODEL: 'bench-model',
      ENABLE_PERSISTENCE: 'false',
      ENABLE_USER_AUTH: 'false',
      ENABLE_RATE_LIMITING: 'false',
      LOG_LEVEL: 'warn',
      MAX_CONCURRENT_RUNS: '100000',
      ...options.env,
    },
  });
  const { exited, stderr } = track(child, 'chassis');
  void exited.then(() => rmSync(cwd, { recursive: true, force: true }));
  const origin = `http://127.0.0.1:${port}`;
  await waitForHealth(origin, exited, stderr, options.readyTimeoutMs ?? 20_000);
  return { pid: child.pid!, origin, stop: stopper(child, exited) };
}
