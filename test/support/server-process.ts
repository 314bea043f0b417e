import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('../../src/main.ts', import.meta.url));

export interface ServerProcess {
  child: ChildProcess;
  url: string;
  output(): string;
  /** Resolves with the exit code (or the signal name) once the process has ended. */
  exited: Promise<number | string>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/**
 * Runs the real entry point (src/main.ts) as a child process with only the given environment.
 * `ready` resolves once /health answers; it rejects if the process exits first.
 */
export function spawnServer(env: Record<string, string>, port?: number): { child: ChildProcess; exited: Promise<number | string>; output(): string; ready: Promise<ServerProcess> } {
  const portReady = port === undefined ? freePort() : Promise.resolve(port);
  let text = '';
  let child!: ChildProcess;
  const started = portReady.then((chosen) => {
    child = spawn(process.execPath, ['--import', 'tsx', MAIN], {
      env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', ENABLE_PERSISTENCE: 'false', ...env, PORT: String(chosen) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (chunk) => (text += chunk));
    child.stderr!.on('data', (chunk) => (text += chunk));
    const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
    return { chosen, exited };
  });
  const exited = started.then((s) => s.exited);
  const ready = started.then(async ({ chosen, exited: done }) => {
    const url = `http://127.0.0.1:${chosen}`;
    let ended = false;
    void done.then(() => (ended = true));
    for (;;) {
      if (ended) throw new Error(`server exited (${await done}) before it served:\n${text}`);
      const ok = await fetch(`${url}/health`).then((r) => r.status === 200, () => false);
      if (ok) return { child, url, output: () => text, exited: done };
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  });
  return {
    get child() {
      return child;
    },
    exited,
    output: () => text,
    ready,
  };
}
