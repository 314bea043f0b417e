import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withoutAddresses } from '../src/http/ready-routes.js';
import { startApp } from './support/app.js';
import { eventually, startStreamableHttpMcp, type TestHttpMcp } from './support/mcp-servers.js';

let dir: string;
let mcpServer: TestHttpMcp;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'chassis-ready-'));
  mcpServer = await startStreamableHttpMcp();
});
afterAll(async () => {
  await mcpServer.close();
  rmSync(dir, { recursive: true, force: true });
});

function mcpConfig(servers: Record<string, unknown>): string {
  const path = join(dir, `mcp-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(path, JSON.stringify({ mcpServers: servers }));
  return path;
}

const ready = async (url: string) => {
  const response = await fetch(`${url}/ready`);
  return { status: response.status, body: await response.json() };
};

describe('GET /ready', () => {
  it('is ready with nothing configured, and checks the database when there is one', async () => {
    const bare = await startApp({ MCP_CONFIG_PATH: join(dir, 'none.json') });
    try {
      expect(await ready(bare.url)).toEqual({ status: 200, body: { status: 'ready', checks: { db: null, redis: null }, mcp: [] } });
    } finally {
      await bare.close();
    }
    const withDb = await startApp({ ENABLE_PERSISTENCE: 'true', DATABASE_URL: `sqlite:${join(dir, 'ready.db')}`, MCP_CONFIG_PATH: join(dir, 'none.json') });
    try {
      expect(await ready(withDb.url)).toMatchObject({ status: 200, body: { status: 'ready', checks: { db: true, redis: null } } });
    } finally {
      await withDb.close();
    }
  });

  it('is not ready while Redis is configured and down (where /health only says degraded)', async () => {
    const t = await startApp({ REDIS_URL: 'redis://127.0.0.1:1', MCP_CONFIG_PATH: join(dir, 'none.json') });
    try {
      expect(await ready(t.url)).toMatchObject({ status: 503, body: { status: 'not_ready', checks: { redis: false } } });
      const health = await fetch(`${t.url}/health`);
      expect(health.status).toBe(200);
      expect((await health.json()).status).toBe('degraded');
    } finally {
      await t.close();
    }
  });

  it('waits for required MCP servers only, and shows each server without its address', async () => {
    const config = mcpConfig({
      tools: { url: `${mcpServer.url}/mcp` },
      gone: { url: 'http://127.0.0.1:1/mcp', required: true },
    });
    const t = await startApp({ MCP_CONFIG_PATH: config });
    try {
      await t.app.chassis.mcp.settled();
      const { status, body } = await ready(t.url);
      expect(status).toBe(503);
      expect(body.status).toBe('not_ready');
      const byName = Object.fromEntries(body.mcp.map((server: any) => [server.name, server]));
      expect(byName.tools).toMatchObject({ state: 'ready', transport: 'streamable_http', required: false, last_error: null });
      expect(byName.tools.tools).toBeGreaterThan(0);
      expect(byName.gone).toMatchObject({ state: 'down', required: true, tools: 0 });
      expect(typeof byName.gone.last_error).toBe('string');
      expect(JSON.stringify(body)).not.toContain('127.0.0.1');
      expect(JSON.stringify(body)).not.toContain(mcpServer.url);
    } finally {
      await t.close();
    }
    const optional = await startApp({ MCP_CONFIG_PATH: mcpConfig({ tools: { url: `${mcpServer.url}/mcp`, required: true }, gone: { url: 'http://127.0.0.1:1/mcp' } }) });
    try {
      await eventually(async () => ((await ready(optional.url)).status === 200 ? true : undefined), 10_000, 'ready');
    } finally {
      await optional.close();
    }
  });

  it('skips an MCP entry whose "required" is not a boolean', async () => {
    const t = await startApp({ MCP_CONFIG_PATH: mcpConfig({ odd: { url: `${mcpServer.url}/mcp`, required: 'yes' } }) });
    try {
      expect((await ready(t.url)).body.mcp).toEqual([]);
      expect(t.logs.some((line) => line.msg === `MCP server 'odd' skipped: "required" must be true or false`)).toBe(true);
    } finally {
      await t.close();
    }
  });

  it('removes URLs, addresses and paths from an error reason', () => {
    expect(withoutAddresses('fetch failed (connect ECONNREFUSED 10.1.2.3:8080)')).toBe('fetch failed (connect ECONNREFUSED <address>)');
    expect(withoutAddresses('Error POSTing to endpoint https://mcp.internal.example:9000/mcp?token=x')).toBe('Error POSTing to endpoint <url>');
    expect(withoutAddresses('getaddrinfo ENOTFOUND db.internal:5432')).toBe('getaddrinfo ENOTFOUND <address>');
    expect(withoutAddresses('connect ECONNREFUSED [::1]:3000')).toBe('connect ECONNREFUSED <address>');
    expect(withoutAddresses('spawn /opt/secret/bin/server ENOENT')).toBe('spawn <path> ENOENT');
    expect(withoutAddresses('no answer within 10 s (MCP_CONNECT_TIMEOUT_SECONDS)')).toBe('no answer within 10 s (MCP_CONNECT_TIMEOUT_SECONDS)');
  });
});
