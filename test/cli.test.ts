// The `agent-chassis` CLI (packages/client/src/cli.ts) driven as a subprocess against a real server
// and the fake upstream: streaming, tool calls shown, Ctrl-C (SIGINT) cancels the run but not the
// program, --session continues, `runs <id>` shows and follows a run.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startFakeUpstream, type FakeUpstream } from './support/fake-upstream.js';
import { startApp, type TestApp } from './support/app.js';

const CLI = fileURLToPath(new URL('../packages/client/src/cli.ts', import.meta.url));
let fake: FakeUpstream;
let t: TestApp;

beforeAll(async () => {
  fake = await startFakeUpstream();
  t = await startApp({ OPENAI_BASE_URL: fake.url, CHASSIS_API_KEY: 'cli-key', ENABLE_PERSISTENCE: 'true', DATABASE_URL: 'sqlite::memory:' });
});
afterAll(async () => {
  await t.close();
  await fake.close();
});
beforeEach(() => fake.reset());

interface Cli {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves once stdout (or stderr) matches. */
  waitFor(pattern: RegExp, stream?: 'stdout' | 'stderr'): Promise<void>;
  exited: Promise<number | null>;
}

function cli(args: string[], env: Record<string, string> = {}): Cli {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], {
    env: { PATH: process.env.PATH ?? '', CHASSIS_URL: t.url, CHASSIS_API_KEY: 'cli-key', CHASSIS_USER_ID: 'carol', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  const waiters = new Set<() => void>();
  child.stdout!.on('data', (chunk) => ((out += chunk), waiters.forEach((wake) => wake())));
  child.stderr!.on('data', (chunk) => ((err += chunk), waiters.forEach((wake) => wake())));
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitFor: (pattern, stream = 'stdout') =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timed out waiting for ${pattern}\nstdout: ${out}\nstderr: ${err}`)), 20_000);
        const check = () => {
          if (pattern.test(stream === 'stdout' ? out : err)) {
            clearTimeout(timer);
            waiters.delete(check);
            resolve();
          }
        };
        waiters.add(check);
        check();
      }),
  };
}

/** Why a CLI run failed, for an assertion's message: its stderr and what the server warned of meanwhile. */
function explain(run: Cli): string {
  const warnings = t.logs.filter((line) => line.level >= 40).map((line) => JSON.stringify(line));
  return `cli stderr: ${run.stderr()}\nserver warnings and errors:\n${warnings.join('\n')}`;
}

describe('agent-chassis chat', () => {
  it('streams one answer with the tool call shown, then --session continues that session', async () => {
    fake.script(
      { kind: 'tool_calls', calls: [{ name: 'calculate', arguments: '{"operation":"multiply","a":6,"b":7}' }] },
      { kind: 'text', content: 'Six times seven is 42.', chunkSize: 3 },
    );
    const first = cli(['chat', 'What is 6*7?']);
    expect(await first.exited, explain(first)).toBe(0);
    expect(first.stdout()).toContain('tool calculate({"operation":"multiply","a":6,"b":7})');
    expect(first.stdout()).toContain('→ 42');
    expect(first.stdout()).toContain('Six times seven is 42.');
    const sessionId = /session ([\w-]{22})/.exec(first.stdout())?.[1];
    expect(sessionId).toBeDefined();

    fake.script({ kind: 'text', content: 'Still here.' });
    const second = cli(['chat', '--session', sessionId!, '--model', 'other-model', 'And again?']);
    expect(await second.exited, explain(second)).toBe(0);
    expect(second.stdout()).toContain('Still here.');
    // The second turn went to the model with the first turn's history and the chosen model.
    const sent = fake.requests.at(-1)!.body;
    expect(sent.model).toBe('other-model');
    expect(sent.messages.map((message: { content: string }) => message.content)).toContain('What is 6*7?');
  });

  it('Ctrl-C cancels the running answer but not the program; the next message is answered', async () => {
    fake.script({ kind: 'text', content: 'z'.repeat(600), chunkSize: 1, delayMs: 20 }, { kind: 'text', content: 'second answer' });
    const run = cli(['chat']);
    await run.waitFor(/you> /);
    run.child.stdin!.write('tell me a long story\n');
    await run.waitFor(/zzzzz/);
    run.child.kill('SIGINT');
    await run.waitFor(/\[cancelled\]/, 'stderr');
    expect(run.child.exitCode).toBeNull();
    run.child.stdin!.write('are you there?\n');
    await run.waitFor(/second answer/);
    run.child.stdin!.end();
    expect(await run.exited, explain(run)).toBe(0);
    expect(run.stdout().match(/z/g)!.length).toBeLessThan(600);
  });

  it('says clearly what failed: a wrong key, and an unknown session', async () => {
    const wrongKey = cli(['chat', 'hi'], { CHASSIS_API_KEY: 'nope' });
    expect(await wrongKey.exited).toBe(1);
    expect(wrongKey.stderr()).toMatch(/error: Invalid API key \(UNAUTHORIZED, HTTP 401\)/);
    const unknown = cli(['chat', '--session', 'missing-session-000000', 'hi']);
    expect(await unknown.exited).toBe(1);
    expect(unknown.stderr()).toMatch(/NOT_FOUND, HTTP 404/);
    // Session ids are base64url: one in 64 starts with "-", and is still taken as the session.
    const dashed = cli(['chat', '--session', '-issing-session-000000', 'hi']);
    expect(await dashed.exited).toBe(1);
    expect(dashed.stderr()).toMatch(/error: Session -issing-session-000000 not found \(NOT_FOUND, HTTP 404\)/);
  });
});

describe('agent-chassis runs', () => {
  it('shows a run’s status, and --follow replays its events', async () => {
    fake.script({ kind: 'text', content: 'an answer to follow' });
    const chat = cli(['chat', 'hi']);
    expect(await chat.exited, explain(chat)).toBe(0);
    const runId = /· run (\S+)/.exec(chat.stdout())?.[1];
    expect(runId).toBeDefined();

    const status = cli(['runs', runId!]);
    expect(await status.exited, explain(status)).toBe(0);
    expect(status.stdout()).toMatch(new RegExp(`run ${runId}: completed \\(stop\\)`));

    const follow = cli(['runs', runId!, '--follow']);
    expect(await follow.exited, explain(follow)).toBe(0);
    expect(follow.stdout()).toContain('an answer to follow');
    expect(follow.stdout()).toMatch(/completed/);

    const other = cli(['runs', runId!], { CHASSIS_USER_ID: 'mallory' });
    expect(await other.exited).toBe(1);
    expect(other.stderr()).toMatch(/FORBIDDEN/);
  });
});
