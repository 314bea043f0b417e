import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { ApprovalService } from '../src/approvals/index.js';
import { post, readSse, startApp, type TestApp } from './support/app.js';
import { decide, finished, getJson, recordingTool, waitForRun } from './support/approvals.js';
import { startFakeUpstream, type FakeUpstream } from './support/fake-upstream.js';
import { historyProblem, sessionEnv } from './support/sessions.js';

// Black-box rules of tool approvals on one instance with a database (SQLite in memory). Restart,
// PostgreSQL and two instances are in approvals-durable.test.ts.
const alice = { 'X-API-Key': 'k', 'X-User-ID': 'alice' };
const bob = { 'X-API-Key': 'k', 'X-User-ID': 'bob' };

describe('tool approvals', () => {
  let fake: FakeUpstream;
  let app: TestApp;
  let tool: ReturnType<typeof recordingTool>;
  let other: ReturnType<typeof recordingTool>;
  let free: ReturnType<typeof recordingTool>;

  beforeAll(async () => {
    fake = await startFakeUpstream();
  });
  afterAll(async () => {
    await fake?.close();
  });
  beforeEach(async () => {
    fake.reset();
    tool = recordingTool('delete_file');
    other = recordingTool('send_mail');
    free = recordingTool('read_file', false);
    app = await startApp(sessionEnv(fake.url, { CHASSIS_API_KEY: 'k' }), { tools: [tool, other, free] });
  });
  afterEach(async () => {
    await app?.close();
  });

  const complete = (body: Record<string, unknown>, headers = alice) => post(`${app.url}/api/v1/agent/completion`, body, headers);
  const runUrl = (runId: string) => `${app.url}/api/v1/agent/runs/${runId}`;

  async function pausedRun(calls = [{ id: 'call_1', name: 'delete_file', arguments: '{"path":"/tmp/a"}' }], body: Record<string, unknown> = { message: 'clean up' }) {
    fake.script({ kind: 'tool_calls', calls, content: 'Let me do that.', usage: { prompt_tokens: 10, completion_tokens: 5 } });
    const response = await complete(body);
    expect(response.status).toBe(200);
    return (await response.json()) as any;
  }

  it('does not run the tool; the JSON answer returns at the pause with the pending approvals; GET /runs shows waiting_approval', async () => {
    const answer = await pausedRun();
    expect(answer.stop_reason).toBe('approval_required');
    expect(answer.pending_approvals).toHaveLength(1);
    const pending = answer.pending_approvals[0];
    expect(pending).toMatchObject({ tool_call_id: 'call_1', name: 'delete_file', arguments: '{"path":"/tmp/a"}' });
    expect(pending.approval_id).toMatch(/^apr_/);
    expect(Date.parse(pending.expires_at)).toBeGreaterThan(Date.now() + 3_000_000); // default APPROVAL_TIMEOUT_SECONDS = 3600
    expect(tool.calls).toEqual([]);
    expect(fake.requests).toHaveLength(1);

    const status = await getJson(runUrl(answer.run_id), alice);
    expect(status.status).toBe(200);
    expect(status.body).toMatchObject({ status: 'waiting_approval', pending_approvals: [pending] });
    const listed = await getJson(`${runUrl(answer.run_id)}/approvals`, alice);
    expect(listed.body.approvals).toEqual([expect.objectContaining({ approval_id: pending.approval_id, status: 'pending', reason: null, decided_at: null })]);
  });

  it('approve → the tool runs once and the run completes by itself; the stream shows approval_required, approval_decided and the rest', async () => {
    const answer = await pausedRun();
    const pending = answer.pending_approvals[0];
    fake.script({ kind: 'text', content: 'Deleted.', usage: { prompt_tokens: 20, completion_tokens: 2 } });
    const decided = await decide(app.url, answer.run_id, pending.approval_id, { decision: 'approve' }, alice);
    expect(decided.status).toBe(200);
    expect(await decided.json()).toEqual({ approval_id: pending.approval_id, decision: 'approve' });

    const done = await waitForRun(app.url, answer.run_id, finished, alice);
    expect(done).toMatchObject({ status: 'completed', stop_reason: 'stop', usage: { prompt_tokens: 30, completion_tokens: 7, total_tokens: 37 } });
    expect(tool.calls).toEqual([{ path: '/tmp/a' }]);
    // The model got the real result for the approved call.
    const sent = fake.requests[1]!.body.messages;
    expect(sent.at(-1)).toMatchObject({ role: 'tool', tool_call_id: 'call_1', content: 'ran delete_file on /tmp/a' });

    const stream = await readSse(await fetch(`${runUrl(answer.run_id)}/stream`, { headers: alice }));
    const types = stream.events.map((event) => event.type);
    expect(types).toEqual(['run_started', 'content', 'tool_call', 'approval_required', 'approval_decided', 'tool_result', 'content', 'done']);
    expect(stream.events[3]).toMatchObject({ approval_id: pending.approval_id, tool_call_id: 'call_1', name: 'delete_file', arguments: '{"path":"/tmp/a"}', expires_at: pending.expires_at });
    expect(stream.events[4]).toMatchObject({ approval_id: pending.approval_id, decision: 'approve', reason: null });

    // Resuming from Last-Event-ID after the pause gives the rest only.
    const resumed = await readSse(await fetch(`${runUrl(answer.run_id)}/stream`, { headers: { ...alice, 'Last-Event-ID': `${answer.run_id}:4` } }));
    expect(resumed.events.map((event) => event.type)).toEqual(['approval_decided', 'tool_result', 'content', 'done']);

    // The session holds the whole turn exactly once: no half pair, no second copy of the tool call.
    const history = await getJson(`${app.url}/api/v1/agent/session/${answer.session_id}/messages`, alice);
    const messages = history.body.messages.map((entry: any) => entry.message ?? entry);
    expect(messages.map((message: any) => message.role)).toEqual(['user', 'assistant', 'tool', 'assistant']);
    expect(historyProblem(messages.slice(1))).toBeNull();
  });

  it('GET /runs/{id} asks the approval store only about a run whose latest events are approvals', async () => {
    const waiting = vi.spyOn(ApprovalService.prototype, 'waiting');
    try {
      // A run that never pauses: polled while it streams, no store query.
      fake.script({ kind: 'text', content: 'slow answer', chunkSize: 1, delayMs: 30 });
      const streamed = await complete({ message: 'hi', stream: true });
      const runId = streamed.headers.get('x-run-id')!;
      await fake.waitForRequests(1);
      expect((await getJson(runUrl(runId), alice)).body.status).toBe('running');
      expect((await getJson(runUrl(runId), alice)).body.status).toBe('running');
      await readSse(streamed);
      expect(waiting).not.toHaveBeenCalled();

      // A paused run: the store tells waiting_approval and its pending approvals; once resumed and done, no more queries.
      const answer = await pausedRun();
      expect((await getJson(runUrl(answer.run_id), alice)).body).toMatchObject({ status: 'waiting_approval', pending_approvals: answer.pending_approvals });
      expect(waiting).toHaveBeenCalledTimes(1);
      fake.script({ kind: 'text', content: 'Deleted.' });
      await decide(app.url, answer.run_id, answer.pending_approvals[0].approval_id, { decision: 'approve' }, alice);
      await waitForRun(app.url, answer.run_id, finished, alice);
      const calls = waiting.mock.calls.length;
      expect((await getJson(runUrl(answer.run_id), alice)).body.status).toBe('completed');
      expect(waiting).toHaveBeenCalledTimes(calls);
    } finally {
      waiting.mockRestore();
    }
  });

  it('deny → the tool never runs and the model reads "Denied by the user: <reason>"', async () => {
    const answer = await pausedRun();
    fake.script({ kind: 'text', content: 'OK, I will not.' });
    const decided = await decide(app.url, answer.run_id, answer.pending_approvals[0].approval_id, { decision: 'deny', reason: 'keep that file' }, alice);
    expect(await decided.json()).toEqual({ approval_id: answer.pending_approvals[0].approval_id, decision: 'deny' });
    const done = await waitForRun(app.url, answer.run_id, finished, alice);
    expect(done.status).toBe('completed');
    expect(tool.calls).toEqual([]);
    expect(fake.requests[1]!.body.messages.at(-1)).toMatchObject({ role: 'tool', tool_call_id: 'call_1', content: 'Denied by the user: keep that file' });
  });

  it('two approvals in one step decided in reverse order: the run waits for both, then runs only the approved one; a free call of the step runs once at once', async () => {
    const answer = await pausedRun([
      { id: 'call_a', name: 'delete_file', arguments: '{"path":"/a"}' },
      { id: 'call_free', name: 'read_file', arguments: '{"path":"/r"}' },
      { id: 'call_b', name: 'send_mail', arguments: '{"path":"/b"}' },
    ]);
    expect(answer.pending_approvals.map((pending: any) => pending.tool_call_id)).toEqual(['call_a', 'call_b']);
    expect(free.calls).toEqual([{ path: '/r' }]);
    const [first, second] = answer.pending_approvals;
    fake.script({ kind: 'text', content: 'done' });
    expect((await decide(app.url, answer.run_id, second.approval_id, { decision: 'approve' }, alice)).status).toBe(200);
    // One of two decided: still waiting, nothing ran, the model was not called again.
    const listed = await getJson(`${runUrl(answer.run_id)}/approvals`, alice);
    expect(listed.body.approvals.map((approval: any) => [approval.tool_call_id, approval.status])).toEqual([
      ['call_a', 'pending'],
      ['call_b', 'approved'],
    ]);
    const half = await getJson(runUrl(answer.run_id), alice);
    expect(half.body.status).toBe('waiting_approval');
    expect(half.body.pending_approvals.map((pending: any) => pending.approval_id)).toEqual([first.approval_id]);
    expect(other.calls).toEqual([]);
    expect(fake.requests).toHaveLength(1);
    expect((await decide(app.url, answer.run_id, first.approval_id, { decision: 'deny' }, alice)).status).toBe(200);
    await waitForRun(app.url, answer.run_id, finished, alice);
    expect(other.calls).toEqual([{ path: '/b' }]);
    expect(tool.calls).toEqual([]);
    expect(free.calls).toEqual([{ path: '/r' }]);
    const results = fake.requests[1]!.body.messages.slice(-3);
    expect(results).toEqual([
      expect.objectContaining({ tool_call_id: 'call_a', content: 'Denied by the user: no reason given' }),
      expect.objectContaining({ tool_call_id: 'call_free', content: 'ran read_file on /r' }),
      expect.objectContaining({ tool_call_id: 'call_b', content: 'ran send_mail on /b' }),
    ]);
  });

  it('a run that pauses again in a later step, with the same tool_call_id: the earlier approval never applies to the new call, the old id cannot decide it', async () => {
    const answer = await pausedRun();
    const firstId = answer.pending_approvals[0].approval_id;
    // Some providers number calls per answer: the next step's call has the same id as the approved one.
    fake.script({ kind: 'tool_calls', calls: [{ id: 'call_1', name: 'send_mail', arguments: '{"path":"/mail"}' }] }, { kind: 'text', content: 'both done' });
    await decide(app.url, answer.run_id, firstId, { decision: 'approve' }, alice);
    const second = await waitForRun(app.url, answer.run_id, (body) => body.status === 'waiting_approval' && body.pending_approvals[0]?.name === 'send_mail', alice);
    const secondId = second.pending_approvals[0].approval_id;
    expect(secondId).not.toBe(firstId);
    expect((await decide(app.url, answer.run_id, firstId, { decision: 'deny' }, alice)).status).toBe(409);
    expect(other.calls).toEqual([]);
    await decide(app.url, answer.run_id, secondId, { decision: 'approve' }, alice);
    expect(await waitForRun(app.url, answer.run_id, finished, alice)).toMatchObject({ status: 'completed' });
    expect(tool.calls).toEqual([{ path: '/tmp/a' }]);
    expect(other.calls).toEqual([{ path: '/mail' }]);
    const history = await getJson(`${app.url}/api/v1/agent/session/${answer.session_id}/messages`, alice);
    const messages = history.body.messages.map((entry: any) => entry.message ?? entry);
    expect(messages.map((message: any) => message.role)).toEqual(['user', 'assistant', 'tool', 'assistant', 'tool', 'assistant']);
    const listed = await getJson(`${app.url}/api/v1/agent/runs/${answer.run_id}/approvals`, alice);
    expect(listed.body.approvals.map((approval: any) => [approval.tool_call_id, approval.name, approval.status])).toEqual([
      ['call_1', 'delete_file', 'approved'],
      ['call_1', 'send_mail', 'approved'],
    ]);
  });

  it('a decision replayed → 409 APPROVAL_ALREADY_DECIDED, and the first decision stands', async () => {
    const answer = await pausedRun();
    fake.script({ kind: 'text', content: 'ok' });
    const id = answer.pending_approvals[0].approval_id;
    expect((await decide(app.url, answer.run_id, id, { decision: 'deny', reason: 'no' }, alice)).status).toBe(200);
    for (const decision of ['deny', 'approve']) {
      const again = await decide(app.url, answer.run_id, id, { decision }, alice);
      expect(again.status).toBe(409);
      expect((await again.json()).code).toBe('APPROVAL_ALREADY_DECIDED');
    }
    await waitForRun(app.url, answer.run_id, finished, alice);
    expect(tool.calls).toEqual([]);
    const listed = await getJson(`${runUrl(answer.run_id)}/approvals`, alice);
    expect(listed.body.approvals[0]).toMatchObject({ status: 'denied', reason: 'no' });
  });

  it('an approval id of another run, or an unknown one → 404; the right one still works', async () => {
    const first = await pausedRun();
    const second = await pausedRun([{ id: 'call_1', name: 'delete_file', arguments: '{"path":"/tmp/b"}' }]);
    const crossed = await decide(app.url, first.run_id, second.pending_approvals[0].approval_id, { decision: 'approve' }, alice);
    expect(crossed.status).toBe(404);
    expect((await crossed.json()).code).toBe('NOT_FOUND');
    expect((await decide(app.url, first.run_id, 'apr_nope', { decision: 'approve' }, alice)).status).toBe(404);
    expect((await decide(app.url, 'run_nope', first.pending_approvals[0].approval_id, { decision: 'approve' }, alice)).status).toBe(404);
    expect(tool.calls).toEqual([]);
    const status = await getJson(runUrl(second.run_id), alice);
    expect(status.body.status).toBe('waiting_approval');
  });

  it('only the run owner (or the session owner) may decide or list: another user → 403; bad bodies → 400', async () => {
    const answer = await pausedRun();
    const id = answer.pending_approvals[0].approval_id;
    const denied = await decide(app.url, answer.run_id, id, { decision: 'approve' }, bob);
    expect(denied.status).toBe(403);
    expect((await denied.json()).code).toBe('FORBIDDEN');
    expect((await getJson(`${runUrl(answer.run_id)}/approvals`, bob)).status).toBe(403);
    for (const body of [{}, { decision: 'maybe' }, { decision: 'approve', extra: 1 }, { decision: 'deny', reason: 'x'.repeat(2001) }]) {
      const bad = await decide(app.url, answer.run_id, id, body, alice);
      expect(bad.status).toBe(400);
      expect((await bad.json()).code).toBeTypeOf('string');
    }
    expect((await decide(app.url, answer.run_id, id, { decision: 'deny', reason: 'x'.repeat(2000) }, alice)).status).toBe(200);
    expect(tool.calls).toEqual([]);
  });

  it("the session's owner may decide a run another user started in it; a third user may not", async () => {
    fake.script({ kind: 'text', content: 'first' });
    const made = (await (await complete({ message: 'hello' })).json()) as any;
    const shared = await fetch(`${app.url}/api/v1/agent/session/${made.session_id}/access`, {
      method: 'PATCH',
      headers: { ...alice, 'content-type': 'application/json' },
      body: JSON.stringify({ add_to_whitelist: ['bob'] }),
    });
    expect(shared.status).toBe(200);
    fake.script({ kind: 'tool_calls', calls: [{ id: 'call_1', name: 'delete_file', arguments: '{"path":"/shared"}' }] });
    const byBob = (await (await complete({ session_id: made.session_id, message: 'delete it' }, bob)).json()) as any;
    expect(byBob.stop_reason).toBe('approval_required');
    const id = byBob.pending_approvals[0].approval_id;
    const carol = { 'X-API-Key': 'k', 'X-User-ID': 'carol' };
    expect((await decide(app.url, byBob.run_id, id, { decision: 'approve' }, carol)).status).toBe(403);
    fake.script({ kind: 'text', content: 'done' });
    expect((await decide(app.url, byBob.run_id, id, { decision: 'approve' }, alice)).status).toBe(200);
    await waitForRun(app.url, byBob.run_id, finished, bob);
    expect(tool.calls).toEqual([{ path: '/shared' }]);
  });

  it('the OpenAPI document lists the approval routes with operationIds, security and a response schema for every status', async () => {
    const document = await (await fetch(`${app.url}/api/v1/openapi.json`)).json();
    const list = document.paths['/api/v1/agent/runs/{run_id}/approvals'].get;
    const decideOp = document.paths['/api/v1/agent/runs/{run_id}/approvals/{approval_id}'].post;
    expect(list.operationId).toBe('listRunApprovals');
    expect(decideOp.operationId).toBe('decideRunApproval');
    for (const operation of [list, decideOp]) {
      expect(operation.security).toBeDefined();
      for (const [status, response] of Object.entries<any>(operation.responses)) {
        expect(response.description, status).toBeTruthy();
        expect(response.content?.['application/json']?.schema, status).toBeDefined();
      }
    }
    expect(Object.keys(decideOp.responses)).toEqual(expect.arrayContaining(['200', '403', '404', '409']));
    expect(decideOp.requestBody.content['application/json'].schema.properties.decision.anyOf ?? decideOp.requestBody.content['application/json'].schema.properties.decision.enum).toBeDefined();
    const runStatus = document.paths['/api/v1/agent/runs/{run_id}'].get.responses['200'].content['application/json'].schema;
    expect(runStatus.properties.pending_approvals).toBeDefined();
    const completion = document.paths['/api/v1/agent/completion'].post.responses['200'].content['application/json'].schema;
    expect(completion.properties.pending_approvals).toBeDefined();
  });

  it('the session stays busy while the run waits (409 naming the run), and takes the next turn after it completes', async () => {
    const answer = await pausedRun();
    const busy = await complete({ session_id: answer.session_id, message: 'next' });
    expect(busy.status).toBe(409);
    const body = await busy.json();
    expect(body).toMatchObject({ code: 'SESSION_BUSY', run_id: answer.run_id });
    fake.script({ kind: 'text', content: 'done' });
    await decide(app.url, answer.run_id, answer.pending_approvals[0].approval_id, { decision: 'approve' }, alice);
    await waitForRun(app.url, answer.run_id, finished, alice);
    fake.script({ kind: 'text', content: 'second' });
    const next = await complete({ session_id: answer.session_id, message: 'next' });
    expect(next.status).toBe(200);
    expect(fake.requests.at(-1)!.body.messages.map((message: any) => message.role)).toEqual(['user', 'assistant', 'tool', 'assistant', 'user']);
  });

  it('cancel works while waiting: the run ends cancelled, the tool never runs, later decisions get 409, the session is free with no half pair', async () => {
    const answer = await pausedRun();
    const cancelled = await post(`${runUrl(answer.run_id)}/cancel`, {}, alice);
    expect(cancelled.status).toBe(200);
    expect((await cancelled.json()).status).toBe('cancelled');
    const late = await decide(app.url, answer.run_id, answer.pending_approvals[0].approval_id, { decision: 'approve' }, alice);
    expect(late.status).toBe(409);
    expect(tool.calls).toEqual([]);
    const history = await getJson(`${app.url}/api/v1/agent/session/${answer.session_id}/messages`, alice);
    const messages = history.body.messages.map((entry: any) => entry.message ?? entry);
    expect(messages.some((message: any) => message.tool_calls)).toBe(false);
    fake.script({ kind: 'text', content: 'fresh' });
    expect((await complete({ session_id: answer.session_id, message: 'again' })).status).toBe(200);
  });

  it('a streaming request shows the pause and follows the run to its end after the decision', async () => {
    fake.script({ kind: 'tool_calls', calls: [{ id: 'call_s', name: 'delete_file', arguments: '{"path":"/s"}' }] }, { kind: 'text', content: 'finished' });
    const response = await complete({ message: 'go', stream: true });
    const runId = response.headers.get('x-run-id')!;
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    while (!text.includes('approval_required')) text += decoder.decode((await reader.read()).value, { stream: true });
    const approvalId = /"approval_id":"([^"]+)"/.exec(text)![1]!;
    await decide(app.url, runId, approvalId, { decision: 'approve' }, alice);
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    expect(text).toContain('"type":"approval_decided"');
    expect(text).toContain('"type":"done"');
    expect(tool.calls).toEqual([{ path: '/s' }]);
  });
});

describe('tool approvals without persistence (memory)', () => {
  let fake: FakeUpstream;
  let app: TestApp;
  const tool = recordingTool('delete_file');

  beforeAll(async () => {
    fake = await startFakeUpstream();
    app = await startApp({ OPENAI_BASE_URL: fake.url, UPSTREAM_MAX_RETRIES: '0', APPROVAL_TIMEOUT_SECONDS: '1' }, { tools: [tool] });
  });
  afterAll(async () => {
    await app?.close();
    await fake?.close();
  });

  it('a client-side run waits, is approved, and completes; an undecided one times out as denied and goes on', async () => {
    fake.script({ kind: 'tool_calls', calls: [{ id: 'c1', name: 'delete_file', arguments: '{"path":"/m"}' }] }, { kind: 'text', content: 'ok' });
    const first = (await (await post(`${app.url}/api/v1/agent/completion`, { messages: [{ role: 'user', content: 'hi' }] })).json()) as any;
    expect(first.stop_reason).toBe('approval_required');
    await decide(app.url, first.run_id, first.pending_approvals[0].approval_id, { decision: 'approve' });
    expect(await waitForRun(app.url, first.run_id, finished)).toMatchObject({ status: 'completed' });
    expect(tool.calls).toEqual([{ path: '/m' }]);

    fake.script({ kind: 'tool_calls', calls: [{ id: 'c2', name: 'delete_file', arguments: '{"path":"/t"}' }] }, { kind: 'text', content: 'timed' });
    const second = (await (await post(`${app.url}/api/v1/agent/completion`, { messages: [{ role: 'user', content: 'hi' }] })).json()) as any;
    expect(await waitForRun(app.url, second.run_id, finished)).toMatchObject({ status: 'completed' });
    expect(tool.calls).toEqual([{ path: '/m' }]);
    expect(fake.requests.at(-1)!.body.messages.at(-1)).toMatchObject({ role: 'tool', content: 'Denied by the user: timed out' });
    const late = await decide(app.url, second.run_id, second.pending_approvals[0].approval_id, { decision: 'approve' });
    expect(late.status).toBe(409);
    const listed = await getJson(`${app.url}/api/v1/agent/runs/${second.run_id}/approvals`);
    expect(listed.body.approvals[0]).toMatchObject({ status: 'denied', reason: 'timed out' });
  });

  it('a stream following a waiting run does not hold up shutdown: it ends without a terminal event', async () => {
    const own = await startApp({ OPENAI_BASE_URL: fake.url, UPSTREAM_MAX_RETRIES: '0' }, { tools: [recordingTool('delete_file')] });
    fake.script({ kind: 'tool_calls', calls: [{ id: 'c3', name: 'delete_file', arguments: '{"path":"/q"}' }] });
    const response = await post(`${own.url}/api/v1/agent/completion`, { messages: [{ role: 'user', content: 'hi' }], stream: true });
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    while (!text.includes('approval_required')) text += decoder.decode((await reader.read()).value, { stream: true });
    await own.app.chassis.shutdown(1);
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    expect(text).not.toContain('"type":"done"');
    expect(text).not.toContain('"type":"error"');
  });

  it('a waiting run holds no run slot (MAX_CONCURRENT_RUNS=1 still serves another run), and a decision while the slot is taken resumes once it frees', async () => {
    const own = await startApp({ OPENAI_BASE_URL: fake.url, UPSTREAM_MAX_RETRIES: '0', MAX_CONCURRENT_RUNS: '1' }, { tools: [recordingTool('delete_file')] });
    try {
      fake.script({ kind: 'tool_calls', calls: [{ id: 'c4', name: 'delete_file', arguments: '{"path":"/slot"}' }] });
      const waiting = (await (await post(`${own.url}/api/v1/agent/completion`, { messages: [{ role: 'user', content: 'a' }] })).json()) as any;
      expect(waiting.stop_reason).toBe('approval_required');
      fake.script({ kind: 'text', content: 'slow answer here', chunkSize: 2, delayMs: 60 }, { kind: 'text', content: 'resumed' });
      const other = await post(`${own.url}/api/v1/agent/completion`, { messages: [{ role: 'user', content: 'b' }], stream: true });
      expect(other.status).toBe(200);
      const reader = other.body!.getReader();
      await reader.read();
      // The slot is taken by the other run now: the decision is recorded, the resume waits for the slot.
      expect((await decide(own.url, waiting.run_id, waiting.pending_approvals[0].approval_id, { decision: 'approve' })).status).toBe(200);
      while (!(await reader.read()).done);
      expect(await waitForRun(own.url, waiting.run_id, finished)).toMatchObject({ status: 'completed' });
    } finally {
      await own.close();
    }
  });
});
