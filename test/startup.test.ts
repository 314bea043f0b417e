import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, spawnServer } from './support/server-process.js';
import { createPgSchema, REDIS_TEST_URL, storesAvailable, uniqueRedisPrefix } from './support/stores.js';

// Issue 12 #3: a start says what it runs with in one line, and every failed start names the
// setting and the reason in the log's JSON format and exits non-zero, promptly.

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const lines = (output: string) =>
  output
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, any>);

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'startup-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function failedStart(env: Record<string, string>) {
  const server = spawnServer(env);
  server.ready.catch(() => undefined);
  const code = await server.exited;
  const fatal = lines(server.output()).filter((line) => line.level === 60);
  return { code, fatal, output: server.output() };
}

describe('the start-up line', () => {
  it('names the auth mode, model and base URL host, database kind, Redis, MCP servers and listen address, and no secret', async () => {
    const mcpConfig = join(dir, 'mcp.json');
    writeFileSync(mcpConfig, JSON.stringify({ mcpServers: { notes: { url: 'http://127.0.0.1:9/mcp' } } }));
    const server = await spawnServer({
      CHASSIS_API_KEY: 'key-that-must-not-be-logged',
      OPENAI_API_KEY: 'sk-must-not-be-logged',
      OPENAI_BASE_URL: 'http://llm.internal:11434/v1',
      OPENAI_MODEL: 'llama3.1',
      DATABASE_URL: `sqlite:${join(dir, 'chassis.db')}`,
      MCP_CONFIG_PATH: mcpConfig,
    }).ready;
    try {
      const started = lines(server.output()).filter((line) => line.msg === 'started');
      expect(started).toHaveLength(1);
      expect(started[0]).toMatchObject({
        level: 30,
        auth: 'api_key',
        model: 'llama3.1',
        model_base_url_host: 'llm.internal:11434',
        model_configured: true,
        database: `sqlite:${join(dir, 'chassis.db')}`,
        redis: 'off',
        mcp_servers: ['notes'],
        listen: server.url,
      });
      expect(server.output()).not.toContain('must-not-be-logged');
    } finally {
      await server.stop();
    }
  });

  it('shows PostgreSQL and Redis by host only (no user, no password) and accounts + API key together', async (context) => {
    const stores = await storesAvailable();
    if (!stores.pg || !stores.redis) return context.skip();
    const schema = await createPgSchema();
    // The shared servers trust loopback, so a password in the URL is accepted and ignored.
    const database = new URL(schema.url);
    database.password = 'pg-password-secret';
    const redis = new URL(REDIS_TEST_URL);
    redis.password = 'redis-password-secret';
    try {
      const server = await spawnServer({
        CHASSIS_API_KEY: 'k',
        ENABLE_USER_AUTH: 'true',
        JWT_SECRET_KEY: 'a-secret-of-at-least-32-characters-long',
        DATABASE_URL: database.href,
        REDIS_URL: redis.href,
        REDIS_KEY_PREFIX: uniqueRedisPrefix(),
      }).ready;
      try {
        const [started] = lines(server.output()).filter((line) => line.msg === 'started');
        expect(started).toMatchObject({ auth: 'api_key+accounts', database: `postgres://${database.host}${database.pathname}`, redis: `on (${redis.host})`, mcp_servers: [] });
        expect(server.output()).not.toMatch(/password-secret/);
      } finally {
        await server.stop();
      }
    } finally {
      await schema.drop();
    }
  });
});

describe('a failed start names the setting and the reason, as a JSON log line, and exits non-zero', () => {
  it('OPENAI_BASE_URL=not-a-url', async () => {
    const { code, fatal } = await failedStart({ OPENAI_BASE_URL: 'not-a-url' });
    expect(code).not.toBe(0);
    expect(fatal).toHaveLength(1);
    expect(fatal[0]).toMatchObject({ setting: 'OPENAI_BASE_URL', reason: expect.stringContaining('http://') });
  });

  it('an unreachable PostgreSQL DATABASE_URL, without its password', async () => {
    const port = await freePort();
    const { code, fatal, output } = await failedStart({ DATABASE_URL: `postgres://postgres:hunter2-secret@127.0.0.1:${port}/x`, DB_CONNECT_TIMEOUT_SECONDS: '2' });
    expect(code).not.toBe(0);
    expect(fatal[0]).toMatchObject({ setting: 'DATABASE_URL', reason: expect.stringContaining('ECONNREFUSED') });
    expect(output).not.toContain('hunter2-secret');
  });

  it('DATABASE_URL=sqlite:/proc/nope/x.db stops instead of spinning', async () => {
    const { code, fatal } = await failedStart({ DATABASE_URL: 'sqlite:/proc/nope/x.db' });
    expect(code).not.toBe(0);
    expect(fatal[0]).toMatchObject({ setting: 'DATABASE_URL', reason: expect.stringContaining('/proc/nope') });
  });

  it('a SQLite file in a directory that cannot be created (a file is in the way)', async () => {
    writeFileSync(join(dir, 'a-file'), '');
    const { code, fatal } = await failedStart({ DATABASE_URL: `sqlite:${join(dir, 'a-file', 'x.db')}` });
    expect(code).not.toBe(0);
    expect(fatal[0]).toMatchObject({ setting: 'DATABASE_URL' });
  });

  it('DATABASE_URL with an unknown scheme, and a bad REDIS_URL', async () => {
    const mysql = await failedStart({ DATABASE_URL: 'mysql://db/x' });
    expect(mysql.code).toBe(78);
    expect(mysql.fatal[0]).toMatchObject({ setting: 'DATABASE_URL' });
    const redis = await failedStart({ REDIS_URL: 'localhost:6379' });
    expect(redis.fatal[0]).toMatchObject({ setting: 'REDIS_URL' });
  });

  it('a port in use names PORT', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;
    try {
      const server = spawnServer({ ENABLE_PERSISTENCE: 'false' }, port);
      server.ready.catch(() => undefined);
      expect(await server.exited).not.toBe(0);
      expect(lines(server.output()).filter((line) => line.level === 60)[0]).toMatchObject({ setting: 'PORT', reason: expect.stringContaining('in use') });
    } finally {
      blocker.close();
    }
  });
});

describe('npm start', () => {
  // `npm start` runs `sh -c "<script>"`: without `exec` the shell stays in between, and npm's SIGTERM
  // never reaches node. The script is run as package.json has it, from a directory of its own (so
  // no .env is read), against the built dist/ (CI builds before it tests).
  const built = existsSync(join(ROOT, 'dist/main.js'));
  it.skipIf(!built)('passes SIGTERM on to the server, which drains and exits 0', async () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
    const home = mkdtempSync(join(tmpdir(), 'npm-start-'));
    try {
      mkdirSync(join(home, 'app'));
      const app = join(home, 'app');
      writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'npm-start-probe', private: true, type: 'module', scripts: { start: pkg.scripts.start } }));
      symlinkSync(join(ROOT, 'dist'), join(app, 'dist'));
      const port = await freePort();
      const npm = spawn('npm', ['start', '--silent'], {
        cwd: app,
        env: { PATH: process.env.PATH ?? '', HOME: home, PORT: String(port), ENABLE_PERSISTENCE: 'false', npm_config_update_notifier: 'false' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      npm.stdout.on('data', (chunk) => (output += chunk));
      npm.stderr.on('data', (chunk) => (output += chunk));
      const exited = new Promise<number | null>((resolve) => npm.once('close', (code) => resolve(code)));
      const deadline = Date.now() + 20_000;
      while (!(await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.ok, () => false))) {
        if (Date.now() > deadline) throw new Error(`npm start did not serve:\n${output}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      const serverPid = lines(output).find((line) => line.msg === 'started')!.pid as number;
      npm.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(lines(output).some((line) => line.msg === 'shutting down' && line.signal === 'SIGTERM')).toBe(true);
      const gone = Date.now() + 5_000;
      const alive = () => {
        try {
          process.kill(serverPid, 0);
          return true;
        } catch {
          return false;
        }
      };
      while (alive() && Date.now() < gone) await new Promise((resolve) => setTimeout(resolve, 50));
      expect(alive()).toBe(false);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });
});
