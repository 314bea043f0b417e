// The server as a separate process (src/main.ts, `node --import tsx`), for what an in-process server
// cannot show: signals and exit codes, crashes (SIGKILL), its own descriptors and memory, and timing
// where the test's HTTP client would otherwise share the server's event loop.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MAIN = fileURLToPath(new URL('../../src/main.ts', import.meta.url));
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
 * else from this process's environment: callers pass every setting they rely on. `nodeArgs` go
 * before the script (e.g. `--expose-gc`); `script` replaces src/main.ts (a test entry with extra tools).
 */
export function spawnServer(env: Record<string, string>, port?: number, nodeArgs: string[] = [], script = MAIN): StartingServer {
  let text = '';
  let child!: ChildProcess;
  const started = (port === undefined ? freePort() : Promise.resolve(port)).then((chosen) => {
    child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', script], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', ...env, PORT: String(chosen) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (chunk) => (text += chunk));
    child.stderr!.on('data', (chunk) => (text += chunk));
    // 'close' rather than 'exit': by then all the output has been read.
    const exited: Exit = new Promise((resolve) => child.once('close', (code, signal) => resolve(code ?? signal ?? -1)));
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

/** Bytes the server holds after a full GC (V8 heap and buffers); it must run with HEAP_PROBE_ARGS. */
export function retainedBytes(server: ServerProcess): Promise<number> {
  const stderr = server.child.stderr!;
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => done(new Error(`the heap probe did not answer: ${seen}`)), 5_000);
    const onData = (chunk: Buffer) => {
      seen += chunk;
      const match = /retained-after-gc (\d+)/.exec(seen);
      if (match !== null) done(null, Number(match[1]));
    };
    const done = (error: Error | null, bytes = 0) => {
      clearTimeout(timer);
      stderr.off('data', onData);
      if (error === null) resolve(bytes);
      else reject(error);
    };
    stderr.on('data', onData);
    server.child.kill('SIGUSR2');
  });
}
