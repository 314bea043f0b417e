import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { post, readSse, startApp, type TestApp } from './support/app.js';
import { decide, finished, getJson, recordingTool, waitForRun } from './support/approvals.js';
import { startFakeUpstream, type FakeUpstream } from './support/fake-upstream.js';
import { historyProblem, sessionEnv } from './support/sessions.js';

// Agents from files and tool approvals together, black-box: an agent file's `approval` makes calls
// wait, and a run that waited goes on with its agent's max_steps and response_format, read back
// from the parked state in the database (every resume reads it from the DatabaseApprovalStore).
const headers = { 'X-API-Key': 'k', 'X-User-ID': 'alice' };

const GUARDED = `
name: guarded
description: Deletes only with a human's yes
instructions: You tidy up files.
max_steps: 2
tools: [delete_file, read_file]
approval: [delete_file]
`;

const CAREFUL = `
name: careful
description: Every call waits
instructions: You are careful.
tools: [delete_file, read_file]
approval: all
`;

const REPORT = JSON.stringify({
  name: 'report',
  description: 'Deletes, then reports as JSON',
  instructions: 'You delete and report.',
  tools: ['delete_file'],
  approval: ['delete_file'],
  response_format: { type: 'object', additionalProperties: false, required: ['total'], properties: { total: { type: 'number' } } },
});

/** What the run sent as its answer: its content events (with a response_format, only the checked answer is sent). */
async function contentOf(url: string, runId: string): Promise<string> {
  const stream = await readSse(await fetch(`${url}/api/v1/agent/runs/${runId}/stream`, { headers }));
  return stream.events.filter((event) => event.type === 'content').map((event) => event.content).join('');
}

const deleteCall = (path = '/tmp/a', id = 'call_1') => ({ id, name: 'delete_file', arguments: JSON.stringify({ path }) });
const readCall = (path = '/r', id = 'call_2') => ({ id, name: 'read_file', arguments: JSON.stringify({ path }) });

describe('an agent file\'s approval list, with approvals', () => {
  let fake: FakeUpstream;
  let app: TestApp;
  let dir: string;
  let deleter: ReturnType<typeof recordingTool>;
  let reader: ReturnType<typeof recordingTool>;

  beforeAll(async () => {
    fake = await startFakeUpstream();
  });
  afterAll(async () => {
    await fake?.close();
  });
  beforeEach(async () => {
    fake.reset();
    dir = mkdtempSync(join(tmpdir(), 'chassis-agent-approvals-'));
    writeFileSync(join(dir, 'guarded.yaml'), GUARDED);
    writeFileSync(join(dir, 'careful.yaml'), CAREFUL);
    writeFileSync(join(dir, 'report.json'), REPORT);
    // needsApproval false: only the agent file's `approval` can make these calls wait.
    deleter = recordingTool('delete_file', false);
    reader = recordingTool('read_file', false);
    app = await startApp(sessionEnv(fake.url, { CHASSIS_API_KEY: 'k', AGENTS_DIR: dir, MAX_AGENT_STEPS: '10' }), { tools: [deleter, reader] });
  });
  afterEach(async () => {
    await app?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const complete = (body: Record<string, unknown>) => post(`${app.url}/api/v1/agent/completion`, body, headers);

  async function paused(body: Record<string, unknown>, calls: Array<ReturnType<typeof deleteCall>>) {
    fake.script({ kind: 'tool_calls', calls, usage: { prompt_tokens: 10, completion_tokens: 5 } });
    const response = await complete(body);
    expect(response.status).toBe(200);
    const answer = (await response.json()) as any;
    expect(answer.stop_reason).toBe('approval_required');
    return answer;
  }

  it('without the agent nothing waits: the same tools run at once (the agent file is what makes them wait)', async () => {
    fake.script({ kind: 'tool_calls', calls: [deleteCall()] }, { kind: 'text', content: 'gone' });
    const response = await complete({ messages: [{ role: 'user', content: 'tidy' }], allowed_tools: ['delete_file'] });
    expect(await response.json()).toMatchObject({ stop_reason: 'stop', content: 'gone' });
    expect(deleter.calls).toEqual([{ path: '/tmp/a' }]);
  });

  it('approval: [delete_file] → that call waits, the other call of the step runs at once; approve → it ran once and the run completes', async () => {
    const answer = await paused({ agent: 'guarded', messages: [{ role: 'user', content: 'tidy' }] }, [deleteCall(), readCall()]);
    expect(answer.pending_approvals.map((pending: any) => pending.name)).toEqual(['delete_file']);
    expect(deleter.calls).toEqual([]);
    expect(reader.calls).toEqual([{ path: '/r' }]);
    // The system prompt the model got is the agent's instructions.
    expect(fake.requests[0]!.body.messages[0]).toEqual({ role: 'system', content: 'You tidy up files.' });

    fake.script({ kind: 'text', content: 'Deleted.' });
    expect((await decide(app.url, answer.run_id, answer.pending_approvals[0].approval_id, { decision: 'approve' }, headers)).status).toBe(200);
    const done = await waitForRun(app.url, answer.run_id, finished, headers);
    expect(done).toMatchObject({ status: 'completed', stop_reason: 'stop' });
    expect(deleter.calls).toEqual([{ path: '/tmp/a' }]);
    expect(reader.calls).toEqual([{ path: '/r' }]);
    expect(fake.requests[1]!.body.messages.slice(-2)).toEqual([
      expect.objectContaining({ role: 'tool', tool_call_id: 'call_1', content: 'ran delete_file on /tmp/a' }),
      expect.objectContaining({ role: 'tool', tool_call_id: 'call_2', content: 'ran read_file on /r' }),
    ]);
  });

  it('deny → the tool never ran and the model reads the refusal', async () => {
    const answer = await paused({ agent: 'guarded', messages: [{ role: 'user', content: 'tidy' }] }, [deleteCall()]);
    fake.script({ kind: 'text', content: 'Kept it.' });
    expect((await decide(app.url, answer.run_id, answer.pending_approvals[0].approval_id, { decision: 'deny', reason: 'no' }, headers)).status).toBe(200);
    expect(await waitForRun(app.url, answer.run_id, finished, headers)).toMatchObject({ status: 'completed' });
    expect(deleter.calls).toEqual([]);
    expect(fake.requests[1]!.body.messages.at(-1)).toMatchObject({ role: 'tool', tool_call_id: 'call_1', content: 'Denied by the user: no' });
  });

  it('approval: all → every call of the agent waits, read_file too', async () => {
    const answer = await paused({ agent: 'careful', messages: [{ role: 'user', content: 'look' }] }, [readCall('/r', 'call_r')]);
    expect(answer.pending_approvals.map((pending: any) => pending.name)).toEqual(['read_file']);
    expect(reader.calls).toEqual([]);
    fake.script({ kind: 'text', content: 'ok' });
    await decide(app.url, answer.run_id, answer.pending_approvals[0].approval_id, { decision: 'deny' }, headers);
    expect(await waitForRun(app.url, answer.run_id, finished, headers)).toMatchObject({ status: 'completed' });
    expect(reader.calls).toEqual([]);
  });

  it('a server-side session remembers its agent from a first turn that waited: its next turn (no "agent") waits again', async () => {
    const first = await paused({ agent: 'guarded', message: 'tidy' }, [deleteCall('/one')]);
    fake.script({ kind: 'text', content: 'Deleted one.' });
    await decide(app.url, first.run_id, first.pending_approvals[0].approval_id, { decision: 'approve' }, headers);
    expect(await waitForRun(app.url, first.run_id, finished, headers)).toMatchObject({ status: 'completed' });
    expect(deleter.calls).toEqual([{ path: '/one' }]);
    const session = await getJson(`${app.url}/api/v1/agent/session/${first.session_id}`, headers);
    expect(session.body.agent).toBe('guarded');

    const second = await paused({ session_id: first.session_id, message: 'and two' }, [deleteCall('/two', 'call_9')]);
    expect(fake.requests.at(-1)!.body.messages[0]).toEqual({ role: 'system', content: 'You tidy up files.' });
    // Busy while it waits, naming the run.
    const busy = await complete({ session_id: first.session_id, message: 'hello?' });
    expect(busy.status).toBe(409);
    expect(await busy.json()).toMatchObject({ code: 'SESSION_BUSY', run_id: second.run_id });
    fake.script({ kind: 'text', content: 'Kept two.' });
    await decide(app.url, second.run_id, second.pending_approvals[0].approval_id, { decision: 'deny', reason: 'keep two' }, headers);
    expect(await waitForRun(app.url, second.run_id, finished, headers)).toMatchObject({ status: 'completed' });
    expect(deleter.calls).toEqual([{ path: '/one' }]);

    const history = await getJson(`${app.url}/api/v1/agent/session/${first.session_id}/messages`, headers);
    const messages = history.body.messages.map((entry: any) => entry.message ?? entry);
    expect(messages.map((message: any) => message.role)).toEqual(['user', 'assistant', 'tool', 'assistant', 'user', 'assistant', 'tool', 'assistant']);
    expect(historyProblem(messages)).toBeNull();
  });

  it('a resumed run keeps its agent\'s max_steps (2), not MAX_AGENT_STEPS (10)', async () => {
    const answer = await paused({ agent: 'guarded', messages: [{ role: 'user', content: 'tidy' }] }, [deleteCall()]);
    // Step 2 asks for another tool: at the agent's limit the run stops instead of running it.
    fake.script({ kind: 'tool_calls', calls: [readCall()], content: 'And one more look.' }, { kind: 'text', content: 'never asked' });
    await decide(app.url, answer.run_id, answer.pending_approvals[0].approval_id, { decision: 'approve' }, headers);
    const done = await waitForRun(app.url, answer.run_id, finished, headers);
    expect(done).toMatchObject({ status: 'completed', stop_reason: 'max_steps' });
    expect(fake.requests).toHaveLength(2);
    expect(deleter.calls).toEqual([{ path: '/tmp/a' }]);
    expect(reader.calls).toEqual([]);
  });

  it('a resumed run checks its final answer against the agent\'s response_format: a bad one gets its repair, the good one is the answer', async () => {
    const answer = await paused({ agent: 'report', messages: [{ role: 'user', content: 'delete and count' }] }, [deleteCall()]);
    fake.script({ kind: 'text', content: 'I deleted one file.' }, { kind: 'text', content: '```json\n{"total": 1}\n```' });
    await decide(app.url, answer.run_id, answer.pending_approvals[0].approval_id, { decision: 'approve' }, headers);
    const done = await waitForRun(app.url, answer.run_id, finished, headers);
    expect(done).toMatchObject({ status: 'completed', stop_reason: 'stop' });
    expect(await contentOf(app.url, answer.run_id)).toBe('{"total": 1}');
    expect(fake.requests).toHaveLength(3);
    expect(fake.requests[2]!.body.messages.at(-1)).toMatchObject({ role: 'user', content: expect.stringContaining('the answer is not valid JSON') });
  });

  it('a resumed run whose answer still fails after the repair fails with RESPONSE_FORMAT_INVALID', async () => {
    const answer = await paused({ agent: 'report', messages: [{ role: 'user', content: 'delete and count' }] }, [deleteCall()]);
    fake.script({ kind: 'text', content: '{"count": 1}' }, { kind: 'text', content: '{"total": "one"}' });
    await decide(app.url, answer.run_id, answer.pending_approvals[0].approval_id, { decision: 'approve' }, headers);
    const done = await waitForRun(app.url, answer.run_id, finished, headers);
    expect(done).toMatchObject({ status: 'failed', error: { code: 'RESPONSE_FORMAT_INVALID' } });
    expect(deleter.calls).toEqual([{ path: '/tmp/a' }]);
  });

  it('the agent file deleted while the run waits: the run ends under the rules it started with (its response_format still checked); new runs get AGENT_NOT_FOUND', async () => {
    const answer = await paused({ agent: 'report', messages: [{ role: 'user', content: 'delete and count' }] }, [deleteCall()]);
    unlinkSync(join(dir, 'report.json'));
    const deadline = Date.now() + 10_000;
    while ((await getJson(`${app.url}/api/v1/agents/report`, headers)).status !== 404) {
      if (Date.now() > deadline) throw new Error('the catalog did not notice the deleted file');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    fake.script({ kind: 'text', content: 'one file' }, { kind: 'text', content: '{"total": 1}' });
    await decide(app.url, answer.run_id, answer.pending_approvals[0].approval_id, { decision: 'approve' }, headers);
    const done = await waitForRun(app.url, answer.run_id, finished, headers);
    expect(done).toMatchObject({ status: 'completed' });
    expect(await contentOf(app.url, answer.run_id)).toBe('{"total": 1}');
    expect(fake.requests).toHaveLength(3);
    const fresh = await complete({ agent: 'report', messages: [{ role: 'user', content: 'again' }] });
    expect(fresh.status).toBe(404);
    expect(await fresh.json()).toMatchObject({ code: 'AGENT_NOT_FOUND' });
  });
});

describe('an agent run waiting for approval across a restart (SQLite file, in process)', () => {
  let fake: FakeUpstream;
  let dir: string;

  beforeAll(async () => {
    fake = await startFakeUpstream();
    dir = mkdtempSync(join(tmpdir(), 'chassis-agent-restart-'));
    writeFileSync(join(dir, 'guarded.yaml'), GUARDED);
    writeFileSync(join(dir, 'report.json'), REPORT);
  });
  afterAll(async () => {
    await fake?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it.each([
    ['max_steps', 'guarded'],
    ['response_format', 'report'],
  ])('the %s of the agent survives the stop and the next start', async (_what, agent) => {
    fake.reset();
    const env = sessionEnv(fake.url, { CHASSIS_API_KEY: 'k', AGENTS_DIR: dir, MAX_AGENT_STEPS: '10', DATABASE_URL: `sqlite:${join(dir, `${agent}.db`)}`, LOG_LEVEL: 'silent' });
    const deleter = recordingTool('delete_file', false);
    const reader = recordingTool('read_file', false);
    let app = await startApp(env, { tools: [deleter, reader] });
    let answer: any;
    try {
      fake.script({ kind: 'tool_calls', calls: [deleteCall()] });
      answer = await (await post(`${app.url}/api/v1/agent/completion`, { agent, message: 'go' }, headers)).json();
      expect(answer.stop_reason).toBe('approval_required');
    } finally {
      await app.close();
    }
    app = await startApp(env, { tools: [deleter, reader] });
    try {
      if (agent === 'guarded') fake.script({ kind: 'tool_calls', calls: [readCall()] }, { kind: 'text', content: 'never asked' });
      else fake.script({ kind: 'text', content: 'not json' }, { kind: 'text', content: '{"total": 1}' });
      expect((await decide(app.url, answer.run_id, answer.pending_approvals[0].approval_id, { decision: 'approve' }, headers)).status).toBe(200);
      const done = await waitForRun(app.url, answer.run_id, finished, headers);
      if (agent === 'guarded') {
        expect(done).toMatchObject({ status: 'completed', stop_reason: 'max_steps' });
        expect(fake.requests).toHaveLength(2);
        expect(reader.calls).toEqual([]);
      } else {
        expect(done).toMatchObject({ status: 'completed', stop_reason: 'stop' });
        expect(await contentOf(app.url, answer.run_id)).toBe('{"total": 1}');
        expect(fake.requests[2]!.body.messages.at(-1)).toMatchObject({ role: 'user', content: expect.stringContaining('not valid JSON') });
        expect(fake.requests).toHaveLength(3);
      }
      expect(deleter.calls).toEqual([{ path: '/tmp/a' }]);
      const session = await getJson(`${app.url}/api/v1/agent/session/${answer.session_id}`, headers);
      expect(session.body.agent).toBe(agent);
    } finally {
      await app.close();
    }
  });
});
