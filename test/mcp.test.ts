import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApp, post, type TestApp } from './support/app.js';
import { startFakeUpstream, type FakeUpstream } from './support/fake-upstream.js';
import {
  childProcesses,
  eventually,
  startSilentHttp,
  startSseMcp,
  startStreamableHttpMcp,
  stdioServer,
  STDIO_SERVER_SCRIPT,
  type TestHttpMcp,
} from './support/mcp-servers.js';

let fake: FakeUpstream;
let dir: string;
let configCount = 0;

beforeAll(async () => {
  fake = await startFakeUpstream();
  dir = mkdtempSync(join(tmpdir(), 'chassis-mcp-'));
});
afterAll(async () => {
  await fake.close();
  rmSync(dir, { recursive: true, force: true });
});

function writeConfig(content: unknown): string {
  const path = join(dir, `mcp-${++configCount}.json`);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

async function startWithMcp(config: unknown, env: Record<string, string> = {}): Promise<TestApp> {
  return startApp({ MCP_CONFIG_PATH: writeConfig(config), OPENAI_BASE_URL: fake.url, OPENAI_API_KEY: 'test', ...env });
}

interface ListedTool {
  name: string;
  description: string;
  source: string;
  parameters: Record<string, any>;
}

async function listTools(app: TestApp): Promise<ListedTool[]> {
  const response = await fetch(`${app.url}/api/v1/tools`);
  expect(response.status).toBe(200);
  return ((await response.json()) as { tools: ListedTool[] }).tools;
}

async function toolNames(app: TestApp): Promise<string[]> {
  return (await listTools(app)).map((tool) => tool.name).sort();
}

/**
 * One agent run in which the fake model calls `name` with `args` (a string is sent as it is),
 * then answers; returns the tool result the model received in its second request.
 */
async function callThroughModel(app: TestApp, name: string, args: unknown, allowedTools?: string[]): Promise<string> {
  fake.reset();
  const raw = typeof args === 'string' ? args : JSON.stringify(args);
  fake.script({ kind: 'tool_calls', calls: [{ name, arguments: raw }] }, { kind: 'text', content: 'done' });
  const response = await post(`${app.url}/api/v1/agent/completion`, {
    messages: [{ role: 'user', content: 'use the tool' }],
    ...(allowedTools === undefined ? {} : { allowed_tools: allowedTools }),
  });
  expect(response.status).toBe(200);
  expect(fake.requests).toHaveLength(2);
  const toolMessage = fake.requests[1]!.body.messages.at(-1);
  expect(toolMessage.role).toBe('tool');
  return toolMessage.content;
}

describe('the MCP config file', () => {
  it('runs without MCP tools when the file is missing', async () => {
    const app = await startApp({ MCP_CONFIG_PATH: join(dir, 'absent.json') });
    try {
      expect(await toolNames(app)).toEqual(['calculate', 'get_server_time']);
      expect(app.logs.filter((line) => line.level >= 50)).toEqual([]);
    } finally {
      await app.close();
    }
  });

  it.each([
    ['not JSON', '{"mcpServers": {', 'is not valid JSON'],
    ['without mcpServers', { servers: {} }, 'must be a JSON object with an "mcpServers" object'],
    ['mcpServers as a list', { mcpServers: [] }, 'must be a JSON object with an "mcpServers" object'],
  ])('logs one clear line and runs without MCP tools when the file is %s', async (_case, content, reason) => {
    const path = writeConfig(content);
    const app = await startApp({ MCP_CONFIG_PATH: path });
    try {
      await app.app.chassis.mcp.settled();
      expect(await toolNames(app)).toEqual(['calculate', 'get_server_time']);
      const errors = app.logs.filter((line) => line.level >= 50);
      expect(errors).toHaveLength(1);
      expect(errors[0]!.msg).toContain(path);
      expect(errors[0]!.msg).toContain(reason);
      expect((await fetch(`${app.url}/health`)).status).toBe(200);
    } finally {
      await app.close();
    }
  });

  it('skips a bad entry or one whose ${VAR} is unset, naming it, and serves the others', async () => {
    const good = await startStreamableHttpMcp({ only: ['echo'] });
    const app = await startWithMcp({
      mcpServers: {
        neither: { args: ['x'] },
        both: { command: 'node', url: 'http://127.0.0.1:1/mcp' },
        badtransport: { url: `${good.url}/mcp`, transport: 'websocket' },
        badurl: { url: 'ftp://example.com/mcp' },
        badenv: { command: 'node', env: { PORT: 8080 } },
        unset: { url: `${good.url}/mcp`, headers: { Authorization: 'Bearer ${MCP_TEST_UNSET_TOKEN}' } },
        good: { url: `${good.url}/mcp`, headers: { 'X-Ignored': 'yes' }, disabled: false },
      },
    });
    try {
      await app.app.chassis.mcp.settled();
      expect(await toolNames(app)).toEqual(['calculate', 'echo', 'get_server_time']);
      const skipped = app.logs.filter((line) => line.level >= 50).map((line) => line.msg);
      expect(skipped).toEqual([
        expect.stringMatching(/'neither' skipped: give either "command" \(stdio\) or "url"/),
        expect.stringMatching(/'both' skipped: give either "command" \(stdio\) or "url" \(HTTP\), not both/),
        expect.stringMatching(/'badtransport' skipped: "transport" must be one of/),
        expect.stringMatching(/'badurl' skipped: "url" must be an absolute http\(s\) URL/),
        expect.stringMatching(/'badenv' skipped: "env" must be an object of string values/),
      ]);
      // An unset ${VAR} is an expected skip (an entry waiting for its token): info, not error.
      expect(app.logs.filter((line) => line.mcpServer === 'unset').map((line) => [line.level, line.msg])).toEqual([
        [30, expect.stringMatching(/'unset' skipped: headers.Authorization uses \$\{MCP_TEST_UNSET_TOKEN\}, which is not set/)],
      ]);
    } finally {
      await app.close();
      await good.close();
    }
  });
});

describe('a stdio MCP server', () => {
  let app: TestApp;

  beforeAll(async () => {
    app = await startWithMcp(
      { mcpServers: { local: stdioServer(['--label', 'first'], { GREETING: 'hello ${MCP_TEST_GREETING}' }) } },
      { MCP_TEST_GREETING: 'from the environment', MCP_TOOL_TIMEOUT_SECONDS: '3' },
    );
    await app.app.chassis.mcp.settled();
  });
  afterAll(async () => {
    await app.close();
  });

  it('lists its tools beside the local ones, with their source and parameters', async () => {
    const tools = await listTools(app);
    expect(tools.map((tool) => tool.name)).toEqual(expect.arrayContaining(['calculate', 'get_server_time', 'echo', 'whoami', 'crash', 'slow']));
    const echo = tools.find((tool) => tool.name === 'echo')!;
    expect(echo).toEqual({
      name: 'echo',
      description: 'Echo the text back',
      source: 'mcp:local',
      parameters: { type: 'object', properties: { text: { type: 'string' } }, required: ['text'], additionalProperties: false },
    });
    // The remote 'calculate' collides with the local tool: the local one keeps the name.
    expect(tools.find((tool) => tool.name === 'calculate')!.source).toBe('local');
    expect(tools.find((tool) => tool.name === 'local__calculate')!.source).toBe('mcp:local');
  });

  it('runs a tool the model calls and gives the model its result', async () => {
    expect(await callThroughModel(app, 'echo', { text: 'hi there' })).toBe('echo: hi there');
    expect(fake.requests[0]!.body.tools.map((tool: any) => tool.function.name)).toContain('echo');
    expect(await callThroughModel(app, 'local__calculate', { a: 2, b: 3 })).toBe('remote sum 5');
    expect(await callThroughModel(app, 'calculate', { operation: 'add', a: 2, b: 3 })).toBe('5');
  });

  it('fills ${VAR} in env from the environment', async () => {
    expect(await callThroughModel(app, 'env', { name: 'GREETING' })).toBe('GREETING=hello from the environment');
    // The server gets its own env block plus PATH and friends, not the chassis' secrets.
    expect(await callThroughModel(app, 'env', { name: 'OPENAI_API_KEY' })).toBe('OPENAI_API_KEY=(unset)');
  });

  it('turns text, image, resource and link content into readable text', async () => {
    expect(await callThroughModel(app, 'mixed', {})).toBe(
      [
        'a chart follows',
        '[image image/png, 70 bytes, not shown]',
        '[resource file:///notes.txt (text/plain)]\nthe notes',
        '[resource file:///data.bin (application/octet-stream), 4 bytes of binary data, not shown]',
        '[resource link report: https://example.com/report (the full report)]',
      ].join('\n'),
    );
    expect(await callThroughModel(app, 'structured', {})).toBe('{"answer":42}');
  });

  it('gives isError results, bad arguments and unknown tools to the model as errors', async () => {
    expect(await callThroughModel(app, 'fail', { message: 'boom' })).toBe("Error: the tool 'fail' failed: failed on purpose: boom");
    expect(await callThroughModel(app, 'echo', { text: 5 })).toBe("Error: invalid arguments for 'echo': /text must be string");
    expect(await callThroughModel(app, 'echo', '{not json')).toMatch(/^Error: the arguments for 'echo' are not valid JSON/);
    expect(await callThroughModel(app, 'ech0', {})).toMatch(/^Error: there is no tool named 'ech0'\. Available tools: .*\becho\b/);
  });

  it('times out a call after MCP_TOOL_TIMEOUT_SECONDS and cancels it on the server', async () => {
    expect(await callThroughModel(app, 'slow', { ms: 300 })).toBe('slept 300 ms');
    const started = Date.now();
    expect(await callThroughModel(app, 'slow', { ms: 20_000 })).toBe("Error: the tool 'slow' timed out after 3 s");
    expect(Date.now() - started).toBeLessThan(6000);
    // The timeout reached the server as notifications/cancelled at once: the slow call stopped there too.
    const timedOut = Date.now();
    await eventually(async () => ((await callThroughModel(app, 'read_counter', {})).includes('cancelled=1') ? true : undefined), 5000, 'cancellation');
    expect(Date.now() - timedOut).toBeLessThan(2000);
  });

  it('cancels the call on the server when the run is aborted (the client left)', async () => {
    const cancelledBefore = Number(/cancelled=(\d+)/.exec(await callThroughModel(app, 'read_counter', {}))![1]);
    fake.reset();
    fake.script({ kind: 'tool_calls', calls: [{ name: 'slow', arguments: '{"ms": 9001}' }] });
    const client = new AbortController();
    const request = fetch(`${app.url}/api/v1/agent/completion`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'wait' }] }),
      signal: client.signal,
    }).catch(() => 'aborted');
    await eventually(() => (app.logs.some((line) => line.stderr === 'slow call 9001 started') ? true : undefined), 5000, 'the slow call to start');
    const left = Date.now();
    client.abort();
    expect(await request).toBe('aborted');
    const counter = `cancelled=${cancelledBefore + 1}`;
    await eventually(async () => ((await callThroughModel(app, 'read_counter', {})).includes(counter) ? true : undefined), 5000, counter);
    // Well before the 3 s tool timeout: the run's abort, not a timer, stopped the call.
    expect(Date.now() - left).toBeLessThan(2000);
  });

  it('refuses a tool outside allowed_tools however often the model asks, and never runs it', async () => {
    fake.reset();
    const increment = { kind: 'tool_calls' as const, calls: [{ name: 'increment', arguments: '{}' }] };
    fake.script(increment, increment, increment, { kind: 'text', content: 'gave up' });
    const response = await post(`${app.url}/api/v1/agent/completion`, { messages: [{ role: 'user', content: 'count' }], allowed_tools: [] });
    expect(response.status).toBe(200);
    expect(fake.requests[0]!.body.tools).toBeUndefined();
    expect(fake.requests[3]!.body.messages.at(-1).content).toMatch(/^Error: the tool 'increment' is not allowed in this conversation/);
    expect(await callThroughModel(app, 'read_counter', {}, ['read_counter'])).toMatch(/^counter=0 /);
    // The same call with the tool allowed does run: the test above could have failed.
    expect(await callThroughModel(app, 'increment', {}, ['increment'])).toBe('1');
    expect(fake.requests[0]!.body.tools.map((tool: any) => tool.function.name)).toEqual(['increment']);
  });

  it('refreshes its tools on notifications/tools/list_changed', async () => {
    expect(await toolNames(app)).not.toContain('fresh_tool');
    expect(await callThroughModel(app, 'add_tool', { name: 'fresh_tool' })).toBe('added fresh_tool');
    await eventually(async () => ((await toolNames(app)).includes('fresh_tool') ? true : undefined), 5000, 'fresh_tool to be listed');
    expect(await callThroughModel(app, 'fresh_tool', {})).toBe('fresh_tool ran');
  });

  it('turns a crash in the middle of a call into a tool error, keeps serving, and restarts the server', async () => {
    const before = await callThroughModel(app, 'whoami', {});
    expect(before).toMatch(/^first pid \d+$/);
    const result = await callThroughModel(app, 'crash', {});
    expect(result).toMatch(/^Error: the tool 'crash' failed: .*closed during the call/);
    expect((await fetch(`${app.url}/health`)).status).toBe(200);
    // The restart begins at once; waiting for it keeps a slow machine's start-up out of the call's timeout.
    await eventually(() => (app.app.chassis.mcp.status()[0]!.state === 'ready' ? true : undefined), 15_000, 'the restart');
    const after = await callThroughModel(app, 'whoami', {});
    expect(after).toMatch(/^first pid \d+$/);
    expect(after).not.toBe(before);
    expect(app.logs.some((line) => line.mcpServer === 'local' && line.msg === 'MCP server connection lost')).toBe(true);
  });

  it('logs the server stderr tagged with its name', () => {
    expect(app.logs.some((line) => line.mcpServer === 'local' && line.stderr === 'test server first ready')).toBe(true);
  });
});

describe('HTTP MCP servers', () => {
  let streamable: TestHttpMcp;
  let sse: TestHttpMcp;
  let app: TestApp;

  beforeAll(async () => {
    streamable = await startStreamableHttpMcp({ only: ['echo', 'whoami', 'increment'], label: 'streamable', authorization: 'Bearer s3cret' });
    sse = await startSseMcp({ only: ['echo', 'whoami', 'read_counter'], label: 'sse', authorization: 'Bearer s3cret' });
    app = await startWithMcp(
      {
        mcpServers: {
          web: { url: `${streamable.url}/mcp`, headers: { Authorization: 'Bearer ${MCP_TEST_TOKEN}' } },
          legacy: { url: `${sse.url}/sse`, transport: 'sse', headers: { Authorization: 'Bearer ${MCP_TEST_TOKEN}' } },
        },
      },
      { MCP_TEST_TOKEN: 's3cret' },
    );
    await app.app.chassis.mcp.settled();
  });
  afterAll(async () => {
    await app.close();
    await streamable.close();
    await sse.close();
  });

  it('connects over streamable HTTP and legacy SSE with the headers filled from the environment', async () => {
    expect(app.app.chassis.mcp.status()).toEqual([
      { name: 'web', state: 'ready', transport: 'streamable_http', tools: 3, lastError: null, required: false },
      { name: 'legacy', state: 'ready', transport: 'sse', tools: 3, lastError: null, required: false },
    ]);
    expect(streamable.requests.every((request) => request.authorization === 'Bearer s3cret')).toBe(true);
    expect(sse.requests.every((request) => request.authorization === 'Bearer s3cret')).toBe(true);
    expect(app.logText()).not.toContain('s3cret');
  });

  it('offers colliding names only as server__tool, and a unique one under its own name', async () => {
    const tools = await listTools(app);
    expect(tools.map((tool) => [tool.name, tool.source]).sort()).toEqual([
      ['calculate', 'local'],
      ['get_server_time', 'local'],
      ['increment', 'mcp:web'],
      ['legacy__echo', 'mcp:legacy'],
      ['legacy__whoami', 'mcp:legacy'],
      ['read_counter', 'mcp:legacy'],
      ['web__echo', 'mcp:web'],
      ['web__whoami', 'mcp:web'],
    ]);
    expect(await callThroughModel(app, 'web__echo', { text: 'a' })).toBe('echo: a');
    expect(await callThroughModel(app, 'legacy__whoami', {})).toMatch(/^sse pid /);
    expect(await callThroughModel(app, 'web__whoami', {})).toMatch(/^streamable pid /);
  });

  it('accepts the qualified name of a uniquely named tool as an alias, and refuses the ambiguous plain name', async () => {
    expect(await callThroughModel(app, 'increment', {}, ['web__increment'])).toMatch(/^\d+$/);
    expect(fake.requests[0]!.body.tools.map((tool: any) => tool.function.name)).toEqual(['increment']);
    const response = await post(`${app.url}/api/v1/agent/completion`, { messages: [{ role: 'user', content: 'x' }], allowed_tools: ['echo'] });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { detail: string }).detail).toBe(
      "allowed_tools: 'echo' is offered by more than one MCP server; name one of legacy__echo, web__echo",
    );
  });

  it('starts a new streamable HTTP session when the server forgot the old one, without losing the call', async () => {
    const initializesBefore = streamable.requests.length;
    streamable.forgetSessions();
    expect(await callThroughModel(app, 'web__echo', { text: 'again' })).toBe('echo: again');
    expect(streamable.requests.length).toBeGreaterThan(initializesBefore + 1);
    expect(app.logs.some((line) => line.mcpServer === 'web' && line.msg === 'MCP session expired; starting a new one')).toBe(true);
  });

  it('reconnects a legacy SSE server whose stream dropped', async () => {
    sse.forgetSessions();
    await eventually(() => (app.logs.some((line) => line.mcpServer === 'legacy' && line.msg === 'MCP server connection lost') ? true : undefined), 5000, 'the drop to be seen');
    expect(await callThroughModel(app, 'legacy__echo', { text: 'back' })).toBe('echo: back');
    expect(app.app.chassis.mcp.status()[1]).toMatchObject({ state: 'ready', transport: 'sse' });
  });
});

describe('tool definitions from any MCP server', () => {
  it('offers valid schemas of any draft, skips one that does not compile, and qualifies names providers refuse', async () => {
    const raw = await startStreamableHttpMcp({
      rawTools: [
        {
          name: 'search',
          description: 'draft 2020-12 schema',
          inputSchema: { $schema: 'https://json-schema.org/draft/2020-12/schema', type: 'object', properties: { q: { type: 'string' } }, required: ['q'] },
        },
        { name: 'broken', inputSchema: { type: 'object', properties: { x: { type: 'no-such-type' } } } },
        { name: 'files.read', inputSchema: { type: 'object' } },
      ],
    });
    const app = await startWithMcp({ mcpServers: { raw: { url: `${raw.url}/mcp` } } });
    try {
      await app.app.chassis.mcp.settled();
      const tools = (await listTools(app)).filter((tool) => tool.source === 'mcp:raw');
      expect(tools).toEqual([
        { name: 'search', description: 'draft 2020-12 schema', source: 'mcp:raw', parameters: { type: 'object', properties: { q: { type: 'string' } }, required: ['q'] } },
        { name: 'raw__files_read', description: '', source: 'mcp:raw', parameters: { type: 'object', properties: {} } },
      ]);
      const skipped = app.logs.filter((line) => line.level === 40 && line.mcpServer === 'raw');
      expect(skipped).toHaveLength(1);
      expect(skipped[0]).toMatchObject({ tool: 'broken' });
      expect(skipped[0]!.msg).toMatch(/^MCP tool skipped: its input schema is not valid JSON Schema/);
      expect(await callThroughModel(app, 'search', { q: 'mcp' })).toBe('search got {"q":"mcp"}');
      expect(await callThroughModel(app, 'search', {})).toBe("Error: invalid arguments for 'search': (arguments) must have required property 'q'");
      // The server is called with its own name for the tool.
      expect(await callThroughModel(app, 'raw__files_read', {})).toBe('files.read got {}');
    } finally {
      await app.close();
      await raw.close();
    }
  });
});

describe('transport auto-detection for a URL without "transport"', () => {
  it('uses streamable HTTP when the server speaks it, and falls back to legacy SSE otherwise', async () => {
    const streamable = await startStreamableHttpMcp({ only: ['whoami'], label: 'new' });
    const sse = await startSseMcp({ only: ['read_counter'] });
    const app = await startWithMcp({ mcpServers: { modern: { url: `${streamable.url}/mcp` }, old: { url: `${sse.url}/sse` } } });
    try {
      await app.app.chassis.mcp.settled();
      expect(app.app.chassis.mcp.status().map((server) => [server.name, server.state, server.transport])).toEqual([
        ['modern', 'ready', 'streamable_http'],
        ['old', 'ready', 'sse'],
      ]);
      expect(await callThroughModel(app, 'whoami', {})).toMatch(/^new pid/);
      expect(await callThroughModel(app, 'read_counter', {})).toMatch(/^counter=0/);
      // The fallback was tried after streamable HTTP failed: a POST to /sse first, then the GET.
      expect(sse.requests.slice(0, 2).map((request) => `${request.method} ${request.path}`)).toEqual(['POST /sse', 'GET /sse']);
    } finally {
      await app.close();
      await streamable.close();
      await sse.close();
    }
  });
});

describe('servers that never answer', () => {
  it('serves at once, skips servers that are silent past MCP_CONNECT_TIMEOUT_SECONDS, exit or do not exist, and keeps the working ones', async () => {
    const silent = await startSilentHttp();
    const good = await startStreamableHttpMcp({ only: ['echo'] });
    const started = Date.now();
    const app = await startWithMcp(
      {
        mcpServers: {
          hung: stdioServer(['--hang']),
          silent: { url: `${silent.url}/mcp` },
          quits: { command: process.execPath, args: ['-e', 'console.error("missing API key"); process.exit(1)'] },
          absent: { command: 'no-such-mcp-server-command' },
          good: { url: `${good.url}/mcp` },
        },
      },
      { MCP_CONNECT_TIMEOUT_SECONDS: '1.5' },
    );
    try {
      // The API answers while the servers are still connecting.
      expect(await toolNames(app)).toEqual(expect.arrayContaining(['calculate', 'get_server_time']));
      expect(Date.now() - started).toBeLessThan(1500);
      expect(app.app.chassis.mcp.status().find((server) => server.name === 'hung')!.state).toBe('connecting');
      await app.app.chassis.mcp.settled();
      expect(await toolNames(app)).toEqual(['calculate', 'echo', 'get_server_time']);
      const warnings = app.logs.filter((line) => line.level === 40 && line.msg.startsWith('MCP server could not be reached'));
      const reasons = Object.fromEntries(warnings.map((line) => [line.mcpServer, line.reason]));
      expect(reasons).toEqual({
        hung: 'no answer within 1.5 s (MCP_CONNECT_TIMEOUT_SECONDS)',
        silent: 'no answer within 1.5 s (MCP_CONNECT_TIMEOUT_SECONDS)',
        quits: 'the server process exited during start-up (its stderr is in the log)',
        absent: 'spawn no-such-mcp-server-command ENOENT',
      });
      expect(app.logs.some((line) => line.mcpServer === 'quits' && line.stderr === 'missing API key')).toBe(true);
      expect(await callThroughModel(app, 'echo', { text: 'still works' })).toBe('echo: still works');
    } finally {
      await app.close();
      await silent.close();
      await good.close();
    }
    expect(childProcesses(STDIO_SERVER_SCRIPT)).toEqual([]);
  });

  it('reports an unreachable server when a tool of it is called during its backoff', async () => {
    const web = await startStreamableHttpMcp({ only: ['whoami'], label: 'flaky' });
    const app = await startWithMcp({ mcpServers: { flaky: { url: `${web.url}/mcp` } } });
    try {
      await app.app.chassis.mcp.settled();
      await web.close();
      // Two failures in a row: the call finds the server gone, then the immediate reconnect is refused.
      const first = await callThroughModel(app, 'whoami', {});
      expect(first).toMatch(/^Error: the tool 'whoami' failed: the MCP server could not be reached/);
      // Never our internal addresses (the log has them).
      expect(first).not.toMatch(/127\.0\.0\.1|localhost|:\d{2,5}\b|http:/);
      await eventually(() => (app.logs.some((line) => line.mcpServer === 'flaky' && line.msg.startsWith('MCP server could not be reached')) ? true : undefined), 5000, 'the reconnect to fail');
      expect(await callThroughModel(app, 'whoami', {})).toMatch(/^Error: the tool 'whoami' failed: the MCP server 'flaky' is unavailable; the next attempt to reach it is in \d+ s$/);
      expect(await toolNames(app)).toContain('whoami');
    } finally {
      await app.close();
    }
  });
});

describe('shutdown', () => {
  it('stops every stdio server process', async () => {
    const app = await startWithMcp({ mcpServers: { one: stdioServer(['--only', 'echo']), two: stdioServer(['--only', 'whoami']) } });
    await app.app.chassis.mcp.settled();
    expect(childProcesses(STDIO_SERVER_SCRIPT)).toHaveLength(2);
    await app.close();
    expect(childProcesses(STDIO_SERVER_SCRIPT)).toEqual([]);
  });
});
