import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { post, startApp, type TestApp } from './support/app.js';
import { startFakeUpstream, type FakeUpstream } from './support/fake-upstream.js';
import { startStreamableHttpMcp, type TestHttpMcp } from './support/mcp-servers.js';

let fake: FakeUpstream;
let mcp: TestHttpMcp;
let dir: string;
let t: TestApp;

beforeAll(async () => {
  fake = await startFakeUpstream();
  mcp = await startStreamableHttpMcp({ only: ['echo', 'whoami'] });
  dir = mkdtempSync(join(tmpdir(), 'chassis-agents-mcp-'));
  writeFileSync(join(tmpdir(), `${dir.split('/').pop()}-mcp.json`), JSON.stringify({ mcpServers: { web: { url: `${mcp.url}/mcp` } } }));
  writeFileSync(join(dir, 'web.yaml'), 'name: web\ninstructions: Use the web tools.\ntools: ["web__*", calculate]\n');
  t = await startApp({ MCP_CONFIG_PATH: join(tmpdir(), `${dir.split('/').pop()}-mcp.json`), AGENTS_DIR: dir, OPENAI_BASE_URL: fake.url });
  await t.app.chassis.mcp.settled();
});
afterAll(async () => {
  await t.close();
  await mcp.close();
  await fake.close();
  rmSync(dir, { recursive: true, force: true });
  rmSync(join(tmpdir(), `${dir.split('/').pop()}-mcp.json`), { force: true });
});

it('"server__*" gives an agent every tool of that MCP server, and nothing of other sources but what it names', async () => {
  const response = await post(`${t.url}/api/v1/agent/completion`, { agent: 'web', messages: [{ role: 'user', content: 'hi' }] });
  expect(response.status).toBe(200);
  const offered = fake.requests[0]!.body.tools.map((tool: any) => tool.function.name).sort();
  expect(offered).toEqual(['calculate', 'echo', 'whoami']);
});
