import { connect } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startFakeUpstream, type FakeUpstream } from './support/fake-upstream.js';
import { startApp, type TestApp } from './support/app.js';

// How SSE leaves the server, seen on the wire: frames of one tick share one HTTP chunk, the headers
// share the first write, and a client that stops reading still gets every frame, in order.

let fake: FakeUpstream;
let t: TestApp;

beforeAll(async () => {
  fake = await startFakeUpstream();
  t = await startApp({ OPENAI_BASE_URL: fake.url });
});
afterAll(async () => {
  await t.close();
  await fake.close();
});
beforeEach(() => fake.reset());

interface RawResponse {
  /** Each `data` event of the socket, as received. */
  reads: Buffer[];
  head: string;
  /** The body's chunks of the chunked transfer encoding. */
  chunks: string[];
}

/** One streamed completion over a bare socket; `pauseMs` stops reading after the first bytes for that long. */
function rawStream(body: object, pauseMs = 0): Promise<RawResponse> {
  const url = new URL(t.url);
  const json = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const reads: Buffer[] = [];
    const socket = connect(Number(url.port), url.hostname, () => {
      socket.write(
        `POST /api/v1/agent/completion HTTP/1.1\r\nHost: ${url.host}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(json)}\r\nConnection: close\r\n\r\n${json}`,
      );
    });
    let received = 0;
    socket.on('data', (data: Buffer) => {
      reads.push(data);
      received += data.length;
      if (pauseMs > 0 && reads.length === 1) {
        socket.pause();
        setTimeout(() => socket.resume(), pauseMs);
      }
      // The connection stays open (keep-alive): the response ends with the last chunk.
      if (received >= 5 && Buffer.concat(reads.slice(-2)).subarray(-5).toString('latin1') === '0\r\n\r\n') {
        socket.destroy();
        finish();
      }
    });
    socket.on('error', reject);
    const finish = () => {
      const whole = Buffer.concat(reads);
      const split = whole.indexOf('\r\n\r\n');
      const chunks: string[] = [];
      let at = split + 4;
      for (;;) {
        const lineEnd = whole.indexOf('\r\n', at);
        const size = parseInt(whole.subarray(at, lineEnd).toString('latin1'), 16);
        if (!(size > 0)) break;
        chunks.push(whole.subarray(lineEnd + 2, lineEnd + 2 + size).toString('utf8'));
        at = lineEnd + 2 + size + 2;
      }
      resolve({ reads, head: whole.subarray(0, split).toString('latin1'), chunks });
    };
  });
}

const eventsOf = (chunks: string[]) =>
  chunks
    .join('')
    .split('\n\n')
    .filter((frame) => frame.includes('data: '))
    .map((frame) => ({ id: /^id: (.*)$/m.exec(frame)?.[1], event: JSON.parse(/^data: (.*)$/m.exec(frame)![1]!) }));

describe('SSE on the wire', () => {
  it('sends the frames of one provider packet as one HTTP chunk, and the headers with the first frame', async () => {
    const words = Array.from({ length: 50 }, (_, index) => `w${index + 1}`);
    fake.script({ kind: 'text', content: words.join(' '), chunks: words.map((word, index) => (index === 0 ? word : ` ${word}`)) });
    const { reads, head, chunks } = await rawStream({ messages: [{ role: 'user', content: 'hi' }], stream: true });
    expect(head).toMatch(/^HTTP\/1\.1 200/);
    expect(head).toMatch(/content-type: text\/event-stream/i);
    const events = eventsOf(chunks);
    expect(events.map((e) => e.event.type)).toEqual(['run_started', ...words.map(() => 'content'), 'done']);
    // One write per event would be 52 chunks; run_started, the packet's 50 tokens and done make about 3.
    expect(chunks.length).toBeLessThanOrEqual(5);
    // The headers did not travel alone: the first read already holds the first frame.
    expect(reads[0]!.toString('utf8')).toContain('"type":"run_started"');
  });

  it('sends the headers at once when no frame is ready yet', async () => {
    fake.setDefault({ kind: 'silent' });
    const started = await fetch(`${t.url}/api/v1/agent/completion`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }], stream: true }),
    });
    const runId = started.headers.get('x-run-id')!;
    // After the last event so far (run_started is seq 1): nothing to send until the provider answers.
    const asked = Date.now();
    const following = await fetch(`${t.url}/api/v1/agent/runs/${runId}/stream?after=1`);
    // Not held back until the first heartbeat (SSE_HEARTBEAT_SECONDS, 15 s).
    expect(Date.now() - asked).toBeLessThan(5_000);
    expect(following.status).toBe(200);
    expect(following.headers.get('content-type')).toMatch(/text\/event-stream/);
    await fetch(`${t.url}/api/v1/agent/runs/${runId}/cancel`, { method: 'POST' });
    expect(await following.text()).toMatch(/"code":"RUN_CANCELLED"/);
    await started.text();
  });

  it('gives a client that stops reading every frame, in order, once it reads again', async () => {
    // About 4 MB of events: more than the socket buffers hold, so the server has to wait for drain.
    const content = 'x'.repeat(4 * 1024 * 1024);
    fake.script({ kind: 'text', content, chunkSize: 1024 });
    const { chunks } = await rawStream({ messages: [{ role: 'user', content: 'hi' }], stream: true }, 300);
    const events = eventsOf(chunks);
    expect(events.at(-1)!.event.type).toBe('done');
    expect(events.map((e) => Number(e.id!.split(':')[1]))).toEqual(events.map((_, index) => index + 1));
    expect(events.filter((e) => e.event.type === 'content').map((e) => e.event.content).join('')).toBe(content);
  });
});
