// The rules behind MCP tool names, reconnect delays and MCP settings, checked without servers.

import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';
import { assignNames, qualifiedName } from '../src/tools/mcp/names.js';
import { backoffMs } from '../src/tools/mcp/server-handle.js';

describe('qualified MCP tool names', () => {
  it('joins server and tool with two underscores and replaces characters providers refuse', () => {
    expect(qualifiedName('github', 'create_issue')).toBe('github__create_issue');
    expect(qualifiedName('my.server', 'files/read v2')).toBe('my_server__files_read_v2');
  });

  it('keeps a name of exactly 64 characters and shortens a longer one to 64 with a hash', () => {
    const at = qualifiedName('s', 't'.repeat(61));
    expect(at).toBe(`s__${'t'.repeat(61)}`);
    expect(at).toHaveLength(64);
    const past = qualifiedName('s', 't'.repeat(62));
    expect(past).toHaveLength(64);
    expect(past).toMatch(/^s__t{52}_[0-9a-f]{8}$/);
    // Two long names that share their first 55 characters stay apart.
    expect(qualifiedName('s', `${'t'.repeat(70)}a`)).not.toBe(qualifiedName('s', `${'t'.repeat(70)}b`));
  });
});

describe('assigning MCP tool names', () => {
  const named = (assignments: ReturnType<typeof assignNames>) =>
    assignments.map((entry) => ('name' in entry ? `${entry.server}/${entry.tool} -> ${entry.name} [${entry.aliases.join(',')}]` : `${entry.server}/${entry.tool} skipped`));

  it('keeps a unique valid name, with its qualified name as an alias', () => {
    expect(named(assignNames(new Set(['calculate']), [{ server: 'fs', tools: ['read_file'] }]))).toEqual(['fs/read_file -> read_file [fs__read_file]']);
  });

  it('qualifies a tool that collides with a local tool or with another server, and leaves the local tool alone', () => {
    const result = named(
      assignNames(new Set(['calculate']), [
        { server: 'a', tools: ['calculate', 'search'] },
        { server: 'b', tools: ['search', 'fetch'] },
      ]),
    );
    expect(result.sort()).toEqual(['a/calculate -> a__calculate []', 'a/search -> a__search []', 'b/fetch -> fetch [b__fetch]', 'b/search -> b__search []']);
  });

  it('gives the same names whichever server is listed first', () => {
    const servers = [
      { server: 'a', tools: ['search', 'b__search'] },
      { server: 'b', tools: ['search'] },
    ];
    const forward = named(assignNames(new Set(), servers)).sort();
    expect(named(assignNames(new Set(), [...servers].reverse())).sort()).toEqual(forward);
    // 'a' offers a tool literally named b__search: plain names are claimed first, so b's qualified name is the one skipped.
    expect(forward).toEqual(['a/b__search -> b__search [a__b__search]', 'a/search -> a__search []', 'b/search skipped']);
  });

  it('qualifies a tool whose own name providers would refuse', () => {
    expect(named(assignNames(new Set(), [{ server: 'fs', tools: ['read.file', 'x'.repeat(65)] }]))).toEqual([
      'fs/read.file -> fs__read_file []',
      `fs/${'x'.repeat(65)} -> ${qualifiedName('fs', 'x'.repeat(65))} []`,
    ]);
  });

  it('skips a name a server lists twice', () => {
    expect(named(assignNames(new Set(), [{ server: 'fs', tools: ['read', 'read'] }]))).toEqual(['fs/read skipped', 'fs/read -> read [fs__read]']);
  });
});

describe('reconnect backoff', () => {
  it('retries at once after the first failure, then waits 1 s doubling up to 60 s', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8, 9, 50].map(backoffMs)).toEqual([0, 1000, 2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000, 60_000]);
  });
});

describe('MCP settings', () => {
  it('defaults the MCP call timeout to TOOL_TIMEOUT_SECONDS and the connect timeout to 10 s', () => {
    expect(loadConfig({}).mcpConnectTimeoutSeconds).toBe(10);
    expect(loadConfig({}).mcpToolTimeoutSeconds).toBe(30);
    expect(loadConfig({ TOOL_TIMEOUT_SECONDS: '5' }).mcpToolTimeoutSeconds).toBe(5);
    expect(loadConfig({ TOOL_TIMEOUT_SECONDS: '5', MCP_TOOL_TIMEOUT_SECONDS: '120' }).mcpToolTimeoutSeconds).toBe(120);
  });

  it.each([
    ['MCP_CONNECT_TIMEOUT_SECONDS', '0.1', '0.09'],
    ['MCP_CONNECT_TIMEOUT_SECONDS', '600', '601'],
    ['MCP_TOOL_TIMEOUT_SECONDS', '0.01', '0.009'],
    ['MCP_TOOL_TIMEOUT_SECONDS', '3600', '3601'],
  ])('accepts %s=%s and refuses the next value past it', (name, at, past) => {
    expect(() => loadConfig({ [name]: at })).not.toThrow();
    expect(() => loadConfig({ [name]: past })).toThrow(ConfigError);
    expect(() => loadConfig({ [name]: past })).toThrow(name);
  });

  it('keeps the environment it was given for ${VAR} in the MCP config, and nothing else', () => {
    expect(loadConfig({ TOKEN: 'abc' }).mcpVariables).toEqual({ TOKEN: 'abc' });
  });
});
