import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { startApp } from './support/app.js';
import { ToolRegistry } from '../src/tools/index.js';
import { withoutAddresses } from '../src/tools/mcp/addresses.js';

// Issue 12 #4: the MCP example works as copied, expected skips are not errors, nothing prints
// outside the JSON log, and the model never sees our internal addresses.

const ROOT = fileURLToPath(new URL('..', import.meta.url));

afterEach(() => vi.restoreAllMocks());

describe('mcp_config.example.json', () => {
  const example = JSON.parse(readFileSync(join(ROOT, 'mcp_config.example.json'), 'utf8'));

  it('points every stdio server at paths that exist in a fresh clone, and names no local port', () => {
    for (const [name, server] of Object.entries<any>(example.mcpServers)) {
      if (server.command !== undefined) {
        for (const arg of (server.args ?? []).filter((a: string) => a.startsWith('./') || isAbsolute(a))) {
          expect(existsSync(join(ROOT, arg)), `${name}: ${arg}`).toBe(true);
        }
      }
      if (server.url !== undefined) expect(server.url, name).not.toMatch(/127\.0\.0\.1|localhost/);
    }
  });

  it('loads with its token unset: the GitHub entry is skipped at info, not error', async () => {
    // Only the HTTP entry (no process is started): the stdio one is checked above.
    const { writeFileSync, mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(join(tmpdir(), 'mcp-example-'));
    const path = join(dir, 'mcp.json');
    writeFileSync(path, JSON.stringify({ mcpServers: { github: example.mcpServers.github } }));
    const app = await startApp({ MCP_CONFIG_PATH: path });
    try {
      const skipped = app.logs.filter((line) => line.mcpServer === 'github');
      expect(skipped).toEqual([expect.objectContaining({ level: 30, msg: expect.stringContaining('GITHUB_TOKEN') })]);
      expect(app.logs.filter((line) => line.level >= 50)).toEqual([]);
    } finally {
      await app.close();
    }
  });
});

describe('tool schemas with formats', () => {
  it('compile without printing to the console (it would break the JSON log)', () => {
    const printed = [vi.spyOn(console, 'warn'), vi.spyOn(console, 'log'), vi.spyOn(console, 'error')];
    const registry = new ToolRegistry(30);
    registry.register({
      name: 'fetch_page',
      description: 'x',
      source: 'local',
      parameters: { type: 'object', properties: { url: { type: 'string', format: 'uri' }, when: { type: 'string', format: 'date-time' } } } as any,
      run: () => 'ok',
    });
    for (const spy of printed) expect(spy).not.toHaveBeenCalled();
  });
});

describe('connection errors given to the model', () => {
  it.each([
    ['connect ECONNREFUSED 127.0.0.1:9000', 'connect ECONNREFUSED <address>'],
    ['fetch failed for http://mcp.internal:8080/mcp (timeout)', 'fetch failed for <address> (timeout)'],
    ['getaddrinfo ENOTFOUND tools.corp.local:443', 'getaddrinfo ENOTFOUND <address>'],
    ['connect ECONNREFUSED [::1]:9000', 'connect ECONNREFUSED <address>'],
    ['the server process exited', 'the server process exited'],
  ])('%s → %s', (raw, shown) => {
    expect(withoutAddresses(raw)).toBe(shown);
  });
});
