import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { spawnServer } from './support/server-process.js';
import { startApp } from './support/app.js';

// Issue 12 #1: a developer's `.env` (which the README tells users to create), `mcp_config.json` and
// environment must never reach a test server, and an interrupted test run leaves no server behind.
// .ci/run also runs the whole suite with a hostile .env and mcp_config.json in the clone root.

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('test servers are isolated from the developer machine', () => {
  it('a spawned server runs in an empty directory of its own, with only the env the test gave it', async () => {
    const server = await spawnServer({ ENABLE_PERSISTENCE: 'false', LOG_LEVEL: 'warn' }).ready;
    try {
      const cwd = readlinkSync(`/proc/${server.child.pid}/cwd`);
      expect(cwd).not.toBe(ROOT.replace(/\/$/, ''));
      expect(existsSync(join(cwd, '.env'))).toBe(false);
      expect(existsSync(join(cwd, 'mcp_config.json'))).toBe(false);
      const environ = readFileSync(`/proc/${server.child.pid}/environ`, 'utf8').split('\0').filter(Boolean);
      // Node's own IPC variables aside (the lifeline of exit-with-parent.mjs).
      const names = environ.map((entry) => entry.slice(0, entry.indexOf('='))).filter((name) => !name.startsWith('NODE_CHANNEL_'));
      expect(names.sort()).toEqual(['ENABLE_PERSISTENCE', 'HOST', 'LOG_LEVEL', 'PATH', 'PORT', 'TSX_TSCONFIG_PATH'].sort());
      // Open mode: no key from anywhere.
      expect((await fetch(`${server.url}/api/v1/tools`)).status).toBe(200);
    } finally {
      await server.stop();
    }
  });

  it('an in-process test app reads neither the repository mcp_config.json nor its ./data', async () => {
    const app = await startApp();
    try {
      expect(app.app.chassis.config.mcpConfigPath).not.toBe('mcp_config.json');
      expect(app.app.chassis.config.databaseUrl).toBe('sqlite::memory:');
      expect(app.app.chassis.mcp.status()).toEqual([]);
    } finally {
      await app.close();
    }
  });

  it('a server does not outlive the test process that started it, even one killed with SIGKILL', async () => {
    const parent = spawn(process.execPath, ['--import', 'tsx', 'test/__fixtures__/server-parent.ts'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    const [line] = (await once(parent.stdout!, 'data')) as [Buffer];
    const serverPid = Number(String(line).trim());
    expect(Number.isInteger(serverPid) && serverPid > 0).toBe(true);
    expect(alive(serverPid)).toBe(true);
    parent.kill('SIGKILL');
    await once(parent, 'close');
    const deadline = Date.now() + 10_000;
    while (alive(serverPid) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(alive(serverPid)).toBe(false);
  });
});
