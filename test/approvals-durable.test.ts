import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { approvalMigrations, DatabaseApprovalStore, type ApprovalRecord } from '../src/approvals/index.js';
import { migrate, openDatabase, type Database } from '../src/db/index.js';
import { post, readSse, startApp, type TestApp } from './support/app.js';
import { decide, finished, getJson, recordingTool, waitForRun } from './support/approvals.js';
import { startFakeUpstream, type FakeUpstream } from './support/fake-upstream.js';
import { spawnServer, type ServerProcess } from './support/server-process.js';
import { historyProblem, silentLog } from './support/sessions.js';
import { createPgSchema, REDIS_TEST_URL, storesAvailable, uniqueRedisPrefix } from './support/stores.js';

// Approvals that survive a restart, are shared by instances, and have one arbiter for every race.
const stores = await storesAvailable();
const APPROVAL_SERVER = fileURLToPath(new URL('./support/approval-server.ts', import.meta.url));

describe('a run waiting for approval survives a restart', () => {
  let fake: FakeUpstream;
  let dir: string;
  let server: ServerProcess | undefined;
  let dropSchema: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    fake = await startFakeUpstream();
  });
  afterAll(async () => {
    await server?.kill();
    await dropSchema?.();
    await fake?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(() => fake.reset());

  async function restartCase(databaseUrl: string) {
    dir = mkdtempSync(join(tmpdir(), 'approvals-'));
    const recordFile = join(dir, 'calls.log');
    writeFileSync(recordFile, '');
    const env = {
      OPENAI_BASE_URL: fake.url,
      UPSTREAM_MAX_RETRIES: '0',
      ENABLE_PERSISTENCE: 'true',
      DATABASE_URL: databaseUrl,
      ENABLE_RATE_LIMITING: 'false',
      LOG_LEVEL: 'warn',
      RECORD_FILE: recordFile,
    };
    server = await spawnServer(env, undefined, [], APPROVAL_SERVER).ready;
    fake.script({ kind: 'tool_calls', calls: [{ id: 'call_r', name: 'delete_file', arguments: '{"path":"/r"}' }], usage: { prompt_tokens: 5, completion_tokens: 1 } });
    const answer = (await (await post(`${server.url}/api/v1/agent/completion`, { message: 'remove /r' })).json()) as any;
    expect(answer.stop_reason).toBe('approval_required');
    const approvalId = answer.pending_approvals[0].approval_id;

    expect(await server.stop()).toBe(0);
    server = await spawnServer(env, undefined, [], APPROVAL_SERVER).ready;
    const status = await getJson(`${server.url}/api/v1/agent/runs/${answer.run_id}`);
    expect(status.body).toMatchObject({ status: 'waiting_approval', pending_approvals: [expect.objectContaining({ approval_id: approvalId })] });
    // The session is still busy after the restart.
    const busy = await post(`${server.url}/api/v1/agent/completion`, { session_id: answer.session_id, message: 'next' });
    expect(busy.status).toBe(409);
    expect(readFileSync(recordFile, 'utf8')).toBe('');

    fake.script({ kind: 'text', content: 'Removed.', usage: { prompt_tokens: 7, completion_tokens: 2 } });
    expect((await decide(server.url, answer.run_id, approvalId, { decision: 'approve' })).status).toBe(200);
    const done = await waitForRun(server.url, answer.run_id, finished);
    expect(done).toMatchObject({ status: 'completed', usage: { prompt_tokens: 12, completion_tokens: 3, total_tokens: 15 } });
    expect(readFileSync(recordFile, 'utf8').trim().split('\n')).toEqual(['{"path":"/r"}']);

    // The replay after the restart holds the events from before it, then the rest.
    const stream = await readSse(await fetch(`${server.url}/api/v1/agent/runs/${answer.run_id}/stream`));
    expect(stream.events.map((event) => event.type)).toEqual(['run_started', 'tool_call', 'approval_required', 'approval_decided', 'tool_result', 'content', 'done']);
    const history = await getJson(`${server.url}/api/v1/agent/session/${answer.session_id}/messages`);
    const messages = history.body.messages.map((entry: any) => entry.message ?? entry);
    expect(messages.map((message: any) => message.role)).toEqual(['user', 'assistant', 'tool', 'assistant']);
    expect(historyProblem(messages.slice(1))).toBeNull();
    expect(await server.stop()).toBe(0);
    server = undefined;
  }

  it('on a SQLite file: stop while waiting, start again, decide → the run completes, the tool ran once', async () => {
    const base = mkdtempSync(join(tmpdir(), 'approvals-db-'));
    try {
      await restartCase(`sqlite:${join(base, 'chassis.db')}`);
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  }, 60_000);

  it('after a crash (SIGKILL) while waiting: the next start takes the run up once the dead host\'s lease (30 s) runs out; a decision made before that is kept', async () => {
    const base = mkdtempSync(join(tmpdir(), 'approvals-crash-'));
    const recordFile = join(base, 'calls.log');
    writeFileSync(recordFile, '');
    const env = {
      OPENAI_BASE_URL: fake.url,
      UPSTREAM_MAX_RETRIES: '0',
      ENABLE_PERSISTENCE: 'true',
      DATABASE_URL: `sqlite:${join(base, 'chassis.db')}`,
      ENABLE_RATE_LIMITING: 'false',
      LOG_LEVEL: 'warn',
      RECORD_FILE: recordFile,
    };
    try {
      server = await spawnServer(env, undefined, [], APPROVAL_SERVER).ready;
      fake.script({ kind: 'tool_calls', calls: [{ id: 'call_k', name: 'delete_file', arguments: '{"path":"/k"}' }] });
      const answer = (await (await post(`${server.url}/api/v1/agent/completion`, { message: 'remove /k' })).json()) as any;
      await server.kill();
      server = await spawnServer(env, undefined, [], APPROVAL_SERVER).ready;
      fake.script({ kind: 'text', content: 'Removed after the crash.' });
      expect((await decide(server.url, answer.run_id, answer.pending_approvals[0].approval_id, { decision: 'approve' })).status).toBe(200);
      const done = await waitForRun(server.url, answer.run_id, (body) => body.status === 'completed', {}, 90_000);
      expect(done.status).toBe('completed');
      expect(readFileSync(recordFile, 'utf8').trim().split('\n')).toEqual(['{"path":"/k"}']);
      expect(await server.stop()).toBe(0);
      server = undefined;
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  }, 150_000);

  it.skipIf(!stores.pg)('on PostgreSQL: the same', async () => {
    const schema = await createPgSchema();
    dropSchema = schema.drop;
    await restartCase(schema.url);
  }, 60_000);
});

describe.skipIf(!stores.pg || !stores.redis)('approvals across two instances on PostgreSQL + Redis', () => {
  let fake: FakeUpstream;
  let a: TestApp;
  let b: TestApp;
  let dropSchema: () => Promise<void>;
  const toolA = recordingTool('delete_file');
  const toolB = recordingTool('delete_file');

  beforeAll(async () => {
    fake = await startFakeUpstream();
    const schema = await createPgSchema();
    dropSchema = schema.drop;
    const env = {
      OPENAI_BASE_URL: fake.url,
      UPSTREAM_MAX_RETRIES: '0',
      ENABLE_PERSISTENCE: 'true',
      DATABASE_URL: schema.url,
      REDIS_URL: REDIS_TEST_URL,
      REDIS_KEY_PREFIX: uniqueRedisPrefix(),
      APPROVAL_TIMEOUT_SECONDS: '2',
    };
    a = await startApp(env, { tools: [toolA] });
    b = await startApp(env, { tools: [toolB] });
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await dropSchema?.();
    await fake?.close();
  });
  beforeEach(() => {
    fake.reset();
    toolA.calls.length = 0;
    toolB.calls.length = 0;
  });

  it('start on A, decide on B, follow on A: the run goes on on A and the stream on A shows it to the end', async () => {
    fake.script({ kind: 'tool_calls', calls: [{ id: 'call_m', name: 'delete_file', arguments: '{"path":"/m"}' }] }, { kind: 'text', content: 'all done' });
    const onA = await post(`${a.url}/api/v1/agent/completion`, { messages: [{ role: 'user', content: 'go' }], stream: true });
    const runId = onA.headers.get('x-run-id')!;
    const reader = onA.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    while (!text.includes('approval_required')) text += decoder.decode((await reader.read()).value, { stream: true });
    const approvalId = /"approval_id":"([^"]+)"/.exec(text)![1]!;

    expect((await getJson(`${b.url}/api/v1/agent/runs/${runId}`)).body.status).toBe('waiting_approval');
    const decided = await decide(b.url, runId, approvalId, { decision: 'approve' });
    expect(decided.status).toBe(200);
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    expect(text).toContain('"type":"approval_decided"');
    const events = text.split('\n').filter((line) => line.startsWith('data: ')).map((line) => JSON.parse(line.slice(6)));
    expect(events.filter((event) => event.type === 'content').map((event) => event.content).join('')).toBe('all done');
    expect(events.at(-1)).toMatchObject({ type: 'done', stop_reason: 'stop' });
    // It ran on A (the host), once; B only recorded the decision.
    expect(toolA.calls).toEqual([{ path: '/m' }]);
    expect(toolB.calls).toEqual([]);
    const followed = await readSse(await fetch(`${a.url}/api/v1/agent/runs/${runId}/stream`));
    const types = followed.events.map((event) => event.type).filter((type, index, all) => type !== all[index - 1]);
    expect(types).toEqual(['run_started', 'tool_call', 'approval_required', 'approval_decided', 'tool_result', 'content', 'done']);
    expect((await decide(a.url, runId, approvalId, { decision: 'deny' })).status).toBe(409);
  });

  it('a decision racing the timeout on two instances: exactly one wins, and the tool ran only if the approval won', async () => {
    fake.setDefault({ kind: 'text', content: 'after' });
    fake.script({ kind: 'tool_calls', calls: [{ id: 'call_t', name: 'delete_file', arguments: '{"path":"/t"}' }] });
    const answer = (await (await post(`${a.url}/api/v1/agent/completion`, { messages: [{ role: 'user', content: 'go' }] })).json()) as any;
    const { approval_id: approvalId, expires_at: expiresAt } = answer.pending_approvals[0];
    // Fire approvals from both instances around the expiry, while A's timer denies it.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, Date.parse(expiresAt) - Date.now() - 30)));
    const attempts = await Promise.all(Array.from({ length: 6 }, (_, index) => decide(index % 2 ? a.url : b.url, answer.run_id, approvalId, { decision: 'approve' })));
    const statuses = attempts.map((response) => response.status);
    expect(statuses.every((status) => status === 200 || status === 409)).toBe(true);
    expect(statuses.filter((status) => status === 200).length).toBeLessThanOrEqual(1);
    await waitForRun(a.url, answer.run_id, finished);
    const listed = (await getJson(`${b.url}/api/v1/agent/runs/${answer.run_id}/approvals`)).body.approvals[0];
    if (statuses.includes(200)) {
      expect(listed).toMatchObject({ status: 'approved' });
      expect([...toolA.calls, ...toolB.calls]).toEqual([{ path: '/t' }]);
    } else {
      expect(listed).toMatchObject({ status: 'denied', reason: 'timed out' });
      expect([...toolA.calls, ...toolB.calls]).toEqual([]);
    }
  });
});

describe.skipIf(!stores.pg)('approvals across two instances on PostgreSQL without Redis', () => {
  it('decide on B: A (the host) finds the decided step at its next upkeep and completes the run', async () => {
    const fake = await startFakeUpstream();
    const schema = await createPgSchema();
    const toolA = recordingTool('delete_file');
    const toolB = recordingTool('delete_file');
    const env = { OPENAI_BASE_URL: fake.url, UPSTREAM_MAX_RETRIES: '0', ENABLE_PERSISTENCE: 'true', DATABASE_URL: schema.url };
    const a = await startApp(env, { tools: [toolA] });
    const b = await startApp(env, { tools: [toolB] });
    try {
      fake.script({ kind: 'tool_calls', calls: [{ id: 'call_n', name: 'delete_file', arguments: '{"path":"/n"}' }] }, { kind: 'text', content: 'fine' });
      const answer = (await (await post(`${a.url}/api/v1/agent/completion`, { message: 'go' })).json()) as any;
      expect((await decide(b.url, answer.run_id, answer.pending_approvals[0].approval_id, { decision: 'approve' })).status).toBe(200);
      expect(await waitForRun(a.url, answer.run_id, finished)).toMatchObject({ status: 'completed' });
      expect(toolA.calls).toEqual([{ path: '/n' }]);
      expect(toolB.calls).toEqual([]);
      // B has no live copy of the run, but it can still list the decided approvals.
      expect((await getJson(`${b.url}/api/v1/agent/runs/${answer.run_id}/approvals`)).body.approvals[0]).toMatchObject({ status: 'approved' });
    } finally {
      await a.close();
      await b.close();
      await schema.drop();
      await fake.close();
    }
  }, 30_000);
});

describe.skipIf(!stores.pg)('the store is the single arbiter (PostgreSQL, two connections)', () => {
  let one: Database;
  let two: Database;
  let dropSchema: () => Promise<void>;

  beforeAll(async () => {
    const schema = await createPgSchema();
    dropSchema = schema.drop;
    one = openDatabase({ url: schema.url, connectTimeoutSeconds: 5, log: silentLog });
    two = openDatabase({ url: schema.url, connectTimeoutSeconds: 5, log: silentLog });
    await migrate(one, approvalMigrations);
  });
  afterAll(async () => {
    await one?.close();
    await two?.close();
    await dropSchema?.();
  });

  it('a decision and the timeout, or two decisions, race on two connections for each of 40 approvals: exactly one write wins each time', async () => {
    const first = new DatabaseApprovalStore(one);
    const second = new DatabaseApprovalStore(two);
    const expiresAt = Date.now() + 60_000;
    // One run per approval, so the timeout of one cannot touch another.
    const cases = Array.from({ length: 40 }, (_, index) => ({ runId: `run_race_${index}`, approvalId: `apr_${index}` }));
    for (const { runId, approvalId } of cases) {
      const approval: ApprovalRecord = { approvalId, runId, step: 1, position: 0, toolCallId: 'call', name: 'delete_file', arguments: '{}', status: 'pending', reason: null, createdAt: 0, expiresAt, decidedAt: null };
      await first.park({ runId, ownerId: null, sessionId: null, sessionOwnerId: null, status: 'waiting', step: 1, state: '{}', events: '[]', host: 'x', hostUntil: 0, createdAt: 0, updatedAt: 0 }, [approval]);
    }
    await Promise.all(
      cases.map(async ({ runId, approvalId }, index) => {
        // Even: approve against deny. Odd: an approval just in time against the timeout just after it.
        const [approve, other] = await Promise.all([
          first.decide(runId, approvalId, true, null, expiresAt - 1),
          index % 2 === 0 ? second.decide(runId, approvalId, false, 'no', expiresAt - 1) : second.expire(runId, expiresAt).then((count) => (count === 1 ? 'decided' : 'lost')),
        ]);
        expect([approve, other].filter((result) => result === 'decided')).toHaveLength(1);
        const [row] = await first.list(runId);
        expect(row!.status).toBe(approve === 'decided' ? 'approved' : 'denied');
        if (index % 2 === 1 && approve !== 'decided') expect(row!.reason).toBe('timed out');
        // A replay changes nothing.
        expect(await second.decide(runId, approvalId, true, null, expiresAt - 1)).toBe('already_decided');
      }),
    );
  });
});
