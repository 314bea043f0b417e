import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { post } from './support/app.js';
import { startFakeUpstream, type FakeUpstream } from './support/fake-upstream.js';
import { spawnServer, type ServerProcess } from './support/server-process.js';
import { json } from './support/sessions.js';

// The server as a real process, so it can be SIGKILLed: nothing gets a chance to flush or clean up.

let fake: FakeUpstream;
let dir: string;
const running: ServerProcess[] = [];

beforeAll(async () => {
  fake = await startFakeUpstream();
  dir = mkdtempSync(join(tmpdir(), 'sessions-crash-'));
});
afterAll(async () => {
  await Promise.all(running.map((server) => server.kill()));
  await fake.close();
  rmSync(dir, { recursive: true, force: true });
});

async function server(env: Record<string, string>): Promise<ServerProcess> {
  const started = await spawnServer({ HOME: process.env.HOME ?? '', LOG_LEVEL: 'warn', ...env }).ready;
  running.push(started);
  return started;
}

describe('crashes', () => {
  it('keeps every turn acknowledged before a SIGKILL: done and 200 come after the commit (#80)', async () => {
    const env = { DATABASE_URL: `sqlite:${join(dir, 'ack.db')}`, OPENAI_BASE_URL: fake.url, ENABLE_RATE_LIMITING: 'false' };
    const first = await server(env);
    fake.script({ kind: 'text', content: 'streamed answer' });
    const streamed = await post(`${first.url}/api/v1/agent/completion`, { message: 'stream it', stream: true });
    const reader = streamed.body!.getReader();
    let text = '';
    let done: any;
    while (done === undefined) {
      const chunk = await reader.read();
      if (chunk.done) throw new Error('stream ended without done');
      text += new TextDecoder().decode(chunk.value);
      const frame = text.split('\n\n').find((piece) => piece.includes('"type":"done"'));
      if (frame !== undefined) done = JSON.parse(/^data: (.*)$/m.exec(frame)![1]!);
    }
    // Killed the moment `done` arrived.
    await first.kill();
    const sid = done.session_id;

    const second = await server(env);
    expect((await json(await fetch(`${second.url}/api/v1/agent/session/${sid}`))).message_count).toBe(2);
    fake.script({ kind: 'text', content: 'json answer' });
    const answered = await post(`${second.url}/api/v1/agent/completion`, { message: 'json now', session_id: sid });
    expect(answered.status).toBe(200);
    await second.kill();

    // Read the file itself rather than start a third server.
    const database = new SQLite(join(dir, 'ack.db'), { readonly: true });
    const rows = database.prepare('select message from session_messages where session_id = ? order by seq').all(sid) as Array<{ message: string }>;
    database.close();
    expect(rows.map((row) => JSON.parse(row.message).content)).toEqual(['stream it', 'streamed answer', 'json now', 'json answer']);
  });

  it('frees a session held by a killed instance once its lease runs out (#88)', async () => {
    const env = {
      DATABASE_URL: `sqlite:${join(dir, 'lease.db')}`,
      OPENAI_BASE_URL: fake.url,
      ENABLE_RATE_LIMITING: 'false',
      SESSION_LEASE_SECONDS: '1',
      UPSTREAM_MAX_RETRIES: '0',
    };
    const doomed = await server(env);
    const survivor = await server(env);
    fake.script({ kind: 'text', content: 'created' });
    const sid = (await json(await post(`${doomed.url}/api/v1/agent/completion`, { message: 'start' }))).session_id;

    // A run on the doomed instance waits on a model that never answers; then the instance dies.
    fake.script({ kind: 'silent' });
    const before = fake.requests.length;
    const orphan = post(`${doomed.url}/api/v1/agent/completion`, { message: 'never finishes', session_id: sid }).catch((error: unknown) => error);
    await fake.waitForRequests(before + 1);
    await doomed.kill();
    await orphan;

    fake.setDefault({ kind: 'text', content: 'survived' });
    expect((await post(`${survivor.url}/api/v1/agent/completion`, { message: 'too soon', session_id: sid })).status).toBe(409);
    const deadline = Date.now() + 3000;
    let status = 409;
    while (status === 409 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      status = (await post(`${survivor.url}/api/v1/agent/completion`, { message: 'after the lease', session_id: sid })).status;
    }
    expect(status).toBe(200);
    const page = await json(await fetch(`${survivor.url}/api/v1/agent/session/${sid}/messages`));
    expect(page.messages.map((m: any) => m.content)).toEqual(['start', 'created', 'after the lease', 'survived']);
    await survivor.kill();
  });
});
