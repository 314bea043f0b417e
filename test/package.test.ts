import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeUpstream, type FakeUpstream } from './support/fake-upstream.js';

const run = promisify(execFile);
const repo = resolve(import.meta.dirname, '..');
let work: string;
let app: string;
let fake: FakeUpstream;

/**
 * The package as a user gets it: built, `npm pack`ed, the tarball unpacked into a project
 * outside the repository, imported by its name. The project's other dependencies are links to
 * this checkout's node_modules, so no network is needed (npm install --offline would need every
 * dependency in the npm cache).
 */
beforeAll(async () => {
  fake = await startFakeUpstream();
  work = mkdtempSync(join(tmpdir(), 'chassis-package-'));
  // Packed from a copy with its own fresh build (what `npm pack`'s prepack does), so this checkout's
  // dist/ is never rewritten under a test or benchmark that may be reading it.
  const stage = join(work, 'stage');
  mkdirSync(stage);
  for (const entry of ['package.json', 'README.md', '.env.example', 'mcp_config.example.json', 'agents']) cpSync(join(repo, entry), join(stage, entry), { recursive: true });
  await run(process.execPath, [join(repo, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(repo, 'tsconfig.build.json'), '--outDir', join(stage, 'dist')], { cwd: repo });
  const { stdout } = await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work], { cwd: stage, maxBuffer: 16 * 1024 * 1024 });
  const packed = JSON.parse(stdout.slice(stdout.indexOf('[')))[0];
  app = join(work, 'app');
  const modules = join(app, 'node_modules');
  mkdirSync(join(modules, 'agent-chassis'), { recursive: true });
  await run('tar', ['-xzf', join(work, packed.filename), '-C', join(modules, 'agent-chassis'), '--strip-components=1']);
  for (const entry of readdirSync(join(repo, 'node_modules'))) {
    if (entry.startsWith('.') || entry === 'agent-chassis') continue;
    symlinkSync(join(repo, 'node_modules', entry), join(modules, entry));
  }
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  mkdirSync(join(app, 'tools'));
  // A TOOLS_DIR module the way a user writes one: defineTool from the package, by name.
  writeFileSync(
    join(app, 'tools', 'shout.mjs'),
    `import { defineTool, Type } from 'agent-chassis';
export const shout = defineTool({
  name: 'shout',
  description: 'Upper-cases a text',
  parameters: Type.Object({ text: Type.String() }),
  run: ({ text }) => text.toUpperCase(),
});
`,
  );
  mkdirSync(join(app, 'agents'));
  writeFileSync(join(app, 'agents', 'echo.yaml'), 'name: echo\ninstructions: Reverse and shout.\ntools: [reverse, shout]\n');
  writeFileSync(
    join(app, 'main.ts'),
    `import { createChassis, defineTool, Type, type AgentDefinition } from 'agent-chassis';

const reverse = defineTool({
  name: 'reverse',
  description: 'Reverses a text',
  parameters: Type.Object({ text: Type.String() }),
  run: ({ text }) => [...text].reverse().join(''),
});
// The argument type follows from the schema: a wrong field is a compile error.
// @ts-expect-error 'nope' is not a parameter
defineTool({ name: 'bad', description: 'x', parameters: Type.Object({ text: Type.String() }), run: ({ nope }) => nope });

const coded: AgentDefinition = { name: 'coded', description: 'From code', instructions: 'Use reverse.', tools: ['reverse'], approval: [] };

const chassis = await createChassis({
  env: { OPENAI_BASE_URL: process.env.FAKE_URL, PORT: '0', ENABLE_PERSISTENCE: 'false', LOG_LEVEL: 'warn', TOOLS_DIR: './tools' },
  tools: [reverse],
  agents: [coded],
});
const agents = await (await fetch(chassis.url + '/api/v1/agents')).json();
const response = await fetch(chassis.url + '/api/v1/agent/completion', {
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ agent: 'echo', messages: [{ role: 'user', content: 'go' }] }),
});
const answer = await response.json();
await chassis.close();
console.log(JSON.stringify({ status: response.status, answer, agents: agents.agents.map((agent: { name: string }) => agent.name) }));
`,
  );
  writeFileSync(
    join(app, 'tsconfig.json'),
    JSON.stringify({ compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, outDir: 'out', skipLibCheck: true, types: ['node'] }, files: ['main.ts'] }),
  );
}, 300_000);

afterAll(async () => {
  await fake?.close();
  if (work !== undefined) rmSync(work, { recursive: true, force: true });
});

describe('the package, installed from its tarball and imported by name', () => {
  it('type-checks a TypeScript consumer, then runs it: tools from code and TOOLS_DIR, agents from code and files, a completion', async () => {
    // Types: the consumer compiles against the package's own .d.ts (and @ts-expect-error proves they are not `any`).
    await run(process.execPath, [join(repo, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], { cwd: app });

    fake.script(
      { kind: 'tool_calls', calls: [{ name: 'reverse', arguments: '{"text":"abc"}' }, { name: 'shout', arguments: '{"text":"hey"}' }] },
      { kind: 'text', content: 'cba HEY' },
    );
    const { stdout } = await run(process.execPath, [join(app, 'out', 'main.js')], { cwd: app, env: { ...process.env, FAKE_URL: fake.url } });
    const result = JSON.parse(stdout.trim().split('\n').at(-1)!);
    expect(result).toMatchObject({ status: 200, answer: { content: 'cba HEY', stop_reason: 'stop' }, agents: ['coded', 'echo'] });
    expect(fake.requests[0]!.body.messages[0]).toEqual({ role: 'system', content: 'Reverse and shout.' });
    expect(fake.requests[0]!.body.tools.map((tool: any) => tool.function.name).sort()).toEqual(['reverse', 'shout']);
    expect(fake.requests[1]!.body.messages.slice(-2).map((message: any) => message.content)).toEqual(['cba', 'HEY']);
  }, 120_000);
});
