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
  writeFileSync(join(dir, 'guarded-web.yaml'), 'name: guarded-web\ninstructions: Ask first.\ntools: ["web__*", calculate]\napproval: ["web__*"]\n');
  writeFileSync(join(dir, 'echo-guarded.yaml'), 'name: echo-guarded\ninstructions: Ask before echoing.\ntools: ["web__*"]\napproval: [web__echo]\n');
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

it('approval: ["server__*"] makes every call to that MCP server\'s tools wait, whatever name the model uses; other tools run at once', async () => {
  fake.reset();
  fake.script({
    kind: 'tool_calls',
    calls: [
      { id: 'call_e', name: 'echo', arguments: '{"text":"a"}' },
      { id: 'call_w', name: 'web__whoami', arguments: '{}' },
      { id: 'call_c', name: 'calculate', arguments: '{"operation":"add","a":1,"b":2}' },
    ],
  });
  const response = await post(`${t.url}/api/v1/agent/completion`, { agent: 'guarded-web', messages: [{ role: 'user', content: 'hi' }] });
  expect(response.status).toBe(200);
  const answer = (await response.json()) as any;
  expect(answer.stop_reason).toBe('approval_required');
  expect(answer.pending_approvals.map((pending: any) => pending.tool_call_id)).toEqual(['call_e', 'call_w']);
  // Cancelled while waiting, so its stream ends: only calculate ran, neither MCP call.
  expect((await post(`${t.url}/api/v1/agent/runs/${answer.run_id}/cancel`, {})).status).toBe(200);
  const text = await (await fetch(`${t.url}/api/v1/agent/runs/${answer.run_id}/stream`)).text();
  const results = text.split('\n').filter((line) => line.startsWith('data: ')).map((line) => JSON.parse(line.slice(6))).filter((event) => event.type === 'tool_result');
  expect(results.map((event) => event.id)).toEqual(['call_c']);
});

it('approval may name one tool of a "server__*" the agent has by its qualified name: only that tool waits', async () => {
  fake.reset();
  fake.script({
    kind: 'tool_calls',
    calls: [
      { id: 'call_e', name: 'echo', arguments: '{"text":"a"}' },
      { id: 'call_w', name: 'whoami', arguments: '{}' },
    ],
  });
  const answer = (await (await post(`${t.url}/api/v1/agent/completion`, { agent: 'echo-guarded', messages: [{ role: 'user', content: 'hi' }] })).json()) as any;
  expect(answer.stop_reason).toBe('approval_required');
  expect(answer.pending_approvals.map((pending: any) => pending.tool_call_id)).toEqual(['call_e']);
  expect((await post(`${t.url}/api/v1/agent/runs/${answer.run_id}/cancel`, {})).status).toBe(200);
  const text = await (await fetch(`${t.url}/api/v1/agent/runs/${answer.run_id}/stream`)).text();
  const results = text.split('\n').filter((line) => line.startsWith('data: ')).map((line) => JSON.parse(line.slice(6))).filter((event) => event.type === 'tool_result');
  expect(results.map((event) => event.id)).toEqual(['call_w']);
});
