// The server as a separate process (src/main.ts, `node --import tsx`), for what an in-process server
// cannot show: signals and exit codes, crashes (SIGKILL), its own descriptors and memory, and timing
// where the test's HTTP client would otherwise share the server's event loop.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MAIN = fileURLToPath(new URL('../../src/main.ts', import.meta.url));
// By absolute URL: the server runs in an empty directory, where a bare `tsx` would not resolve.
const TSX = pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href;
const EXIT_WITH_PARENT = pathToFileURL(fileURLToPath(new URL('./exit-with-parent.mjs', import.meta.url))).href;
const START_TIMEOUT_MS = 20_000;
const HEAP_PROBE = fileURLToPath(new URL('./heap-probe.mjs', import.meta.url));
/** Node arguments for a server whose retained memory a test measures with `retainedBytes`. */
export const HEAP_PROBE_ARGS = ['--expose-gc', '--import', HEAP_PROBE];

/** Resolves with the exit code, or the signal name, once the process has ended. */
type Exit = Promise<number | string>;

export interface ServerProcess {
  url: string;
  child: ChildProcess;
  /** Everything the process wrote so far, stdout and stderr interleaved. */
  output(): string;
  exited: Exit;
  /** SIGTERM, then wait for the exit. Does nothing to a process that has already ended. */
  stop(): Exit;
  /** SIGKILL, then wait for the exit. Does nothing to a process that has already ended. */
  kill(): Exit;
}

/** A process on its way up: `ready` resolves once /health answers, and rejects if it exits (or hangs) first. */
export interface StartingServer extends Omit<ServerProcess, 'url'> {
  ready: Promise<ServerProcess>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/**
 * Runs src/main.ts with PATH, HOST=127.0.0.1 and PORT (`port`, or a free one) plus `env`, and nothing
 * else from this process's environment: callers pass every setting they rely on. It runs in a fresh
 * empty directory, so a developer's `.env`, `mcp_config.json` or `./data` in the repository never
 * reach it (relative paths in `env` are relative to that directory). It exits by itself when the
 * test process goes away, even on SIGKILL, so an interrupted run leaves no server behind.
 * `nodeArgs` go before the script (e.g. `--expose-gc`); `script` replaces src/main.ts (a test entry
 * with extra tools; give it as an absolute path).
 */
export function spawnServer(env: Record<string, string>, port?: number, nodeArgs: string[] = [], script = MAIN): StartingServer {
  let text = '';
  let child!: ChildProcess;
  const started = (port === undefined ? freePort() : Promise.resolve(port)).then((chosen) => {
    const cwd = mkdtempSync(join(tmpdir(), 'chassis-server-'));
    child = spawn(process.execPath, [...nodeArgs, '--import', EXIT_WITH_PARENT, '--import', TSX, script], {
      cwd,
      env: { PATH: process.env.PATH ?? '', TSX_TSCONFIG_PATH: join(ROOT, 'tsconfig.json'), HOST: '127.0.0.1', ...env, PORT: String(chosen) },
      // The IPC channel is only a lifeline: it closes when this process dies (see exit-with-parent.mjs).
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    child.stdout!.on('data', (chunk) => (text += chunk));
    child.stderr!.on('data', (chunk) => (text += chunk));
    // 'close' rather than 'exit': by then all the output has been read.
    const exited: Exit = new Promise((resolve) =>
      child.once('close', (code, signal) => {
        rmSync(cwd, { recursive: true, force: true });
        resolve(code ?? signal ?? -1);
      }),
    );
    return { url: `http://127.0.0.1:${chosen}`, exited };
  });
  const exited = started.then((s) => s.exited);
  const signal = (name: NodeJS.Signals) => async () => {
    await started;
    child.kill(name); // a no-op once the process has ended
    return exited;
  };
  const stop = signal('SIGTERM');
  const kill = signal('SIGKILL');
  const output = () => text;
  const ready = started.then(async ({ url }): Promise<ServerProcess> => {
    let ended = false;
    void exited.then(() => (ended = true));
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      if (ended) throw new Error(`server exited (${await exited}) before it served:\n${text}`);
      const up = await fetch(`${url}/health`).then((response) => response.status === 200, () => false);
      if (up) return { url, child, output, exited, stop, kill };
      if (Date.now() > deadline) {
        await kill();
        throw new Error(`server did not start within ${START_TIMEOUT_MS} ms:\n${text}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  });
  return {
    get child() {
      return child;
    },
    output,
    exited,
    stop,
    kill,
    ready,
  };
}

/** What the server holds after a full GC (V8 heap and buffers), and its RSS after a memory-reducing GC; it must run with HEAP_PROBE_ARGS. */
export function memoryAfterGc(server: ServerProcess): Promise<{ retainedBytes: number; rssBytes: number; heapPhysicalBytes: number }> {
  const stderr = server.child.stderr!;
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => done(new Error(`the heap probe did not answer: ${seen}`)), 5_000);
    const onData = (chunk: Buffer) => {
      seen += chunk;
      const match = /retained-after-gc (\d+) rss (\d+) heap-physical (\d+)/.exec(seen);
      if (match !== null) done(null, { retainedBytes: Number(match[1]), rssBytes: Number(match[2]), heapPhysicalBytes: Number(match[3]) });
    };
    const done = (error: Error | null, memory = { retainedBytes: 0, rssBytes: 0, heapPhysicalBytes: 0 }) => {
      clearTimeout(timer);
      stderr.off('data', onData);
      if (error === null) resolve(memory);
      else reject(error);
    };
    stderr.on('data', onData);
    server.child.kill('SIGUSR2');
  });
}

/** Bytes the server holds after a full GC (V8 heap and buffers); it must run with HEAP_PROBE_ARGS. */
export async function retainedBytes(server: ServerProcess): Promise<number> {
  return (await memoryAfterGc(server)).retainedBytes;
}
