import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildApp } from '../src/app.js';
import { startFakeUpstream } from './support/fake-upstream.js';
import { post, startApp, testConfig } from './support/app.js';

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function toolsDir(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'chassis-tools-'));
  dirs.push(dir);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

// What `defineTool(...)` returns, written out: these modules live outside the package, where
// `import { defineTool } from 'agent-chassis'` needs an install (test/package.test.ts does that).
const SHOUT = `
export const shout = {
  name: 'shout',
  description: 'Upper-cases a text',
  parameters: { type: 'object', properties: { text: { type: 'string' } }, required: ['text'], additionalProperties: false },
  source: 'local',
  run: ({ text }) => text.toUpperCase() + '!',
};
`;
const TWO = `
const make = (name) => ({ name, description: 'Says ' + name, parameters: { type: 'object' }, run: () => name });
export default [make('one'), make('two')];
export const helper = 42;
`;

async function startError(files: Record<string, string>): Promise<string> {
  const dir = toolsDir(files);
  try {
    const app = await buildApp(testConfig({ ENABLE_PERSISTENCE: 'false', LOG_LEVEL: 'silent', AGENTS_DIR: '', TOOLS_DIR: dir }));
    await app.close();
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error('the start did not fail');
}

describe('TOOLS_DIR', () => {
  it('loads every tool a module exports (named, or a default array), offers it to the model and runs it', async () => {
    const fake = await startFakeUpstream();
    const dir = toolsDir({ 'shout.mjs': SHOUT, 'two.js': TWO, 'notes.txt': 'ignored', 'package.json': '{"type":"module"}' });
    const t = await startApp({ OPENAI_BASE_URL: fake.url, TOOLS_DIR: dir, AGENTS_DIR: '' });
    try {
      const listed = await (await fetch(`${t.url}/api/v1/tools`)).json();
      expect(listed.tools.map((tool: any) => tool.name).sort()).toEqual(['calculate', 'get_server_time', 'one', 'shout', 'two']);
      expect(listed.tools.find((tool: any) => tool.name === 'shout')).toMatchObject({ source: 'local', description: 'Upper-cases a text' });

      fake.script({ kind: 'tool_calls', calls: [{ name: 'shout', arguments: '{"text":"hi"}' }] }, { kind: 'text', content: 'done' });
      const response = await post(`${t.url}/api/v1/agent/completion`, { messages: [{ role: 'user', content: 'shout hi' }] });
      expect(response.status).toBe(200);
      expect(fake.requests[1]!.body.messages.at(-1)).toMatchObject({ role: 'tool', content: 'HI!' });
      // Its parameters schema is enforced like a built-in's.
      fake.reset();
      fake.script({ kind: 'tool_calls', calls: [{ name: 'shout', arguments: '{"text":5}' }] }, { kind: 'text', content: 'done' });
      await post(`${t.url}/api/v1/agent/completion`, { messages: [{ role: 'user', content: 'shout 5' }] });
      expect(fake.requests[1]!.body.messages.at(-1).content).toMatch(/invalid arguments for 'shout': \/text must be string/);
    } finally {
      await t.close();
      await fake.close();
    }
  });

  it.each([
    ['a module that throws while loading', { 'broken.mjs': 'throw new Error("no config here");' }, /broken\.mjs could not be loaded: no config here/],
    ['a syntax error', { 'typo.mjs': 'export const x = ;' }, /typo\.mjs could not be loaded/],
    ['a module exporting no tool', { 'empty.mjs': 'export const answer = 42;' }, /empty\.mjs exports no tool/],
    ['a tool without a description', { 'nodesc.mjs': 'export const t = { name: "t", parameters: {}, run() {} };' }, /nodesc\.mjs: export "t": tool "t": description must be a non-empty string/],
    ['a tool with a bad name', { 'badname.mjs': 'export const t = { name: "no spaces", description: "d", parameters: {}, run() {} };' }, /badname\.mjs: export "t": name must be/],
    ['a tool taking a built-in name', { 'calc.mjs': 'export const t = { name: "calculate", description: "d", parameters: {}, run() {} };' }, /calc\.mjs: tool "calculate" is already a built-in tool/],
    ['a parameters schema that does not compile', { 'schema.mjs': 'export const t = { name: "t", description: "d", parameters: { type: "nope" }, run() {} };' }, /schema\.mjs: tool "t": parameters is not a valid JSON Schema/],
  ])('%s stops the start, naming the module', async (_label, files, message) => {
    expect(await startError(files)).toMatch(message);
  });

  it('two modules defining one tool name stop the start naming both', async () => {
    const tool = 'export const t = { name: "dup", description: "d", parameters: {}, run() {} };';
    expect(await startError({ 'a.mjs': tool, 'b.mjs': tool })).toMatch(/b\.mjs: tool "dup" is already defined in .*a\.mjs/);
  });

  it('a TOOLS_DIR that does not exist stops the start', async () => {
    await expect(buildApp(testConfig({ ENABLE_PERSISTENCE: 'false', LOG_LEVEL: 'silent', TOOLS_DIR: join(tmpdir(), 'no-such-tools-xyz') }))).rejects.toThrow(/TOOLS_DIR .*no-such-tools-xyz does not exist/);
  });

  it('agents may name TOOLS_DIR tools', async () => {
    const dir = toolsDir({ 'shout.mjs': SHOUT });
    const agents = toolsDir({ 'loud.yaml': 'name: loud\ninstructions: Shout.\ntools: [shout]\n' });
    const t = await startApp({ TOOLS_DIR: dir, AGENTS_DIR: agents });
    expect(t.app.chassis.agents.get('loud')?.tools).toEqual(['shout']);
    await t.close();
  });
});
