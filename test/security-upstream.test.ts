// Issue 11 item 7: a provider error that echoes the server's upstream key must not leak any part of
// it, in the client's `detail` or in the log, whatever the key looks like and wherever the 300-character
// cut of the provider's message falls.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { post, startApp } from './support/app.js';
import { startFakeUpstream, type FakeUpstream } from './support/fake-upstream.js';

let fake: FakeUpstream;
beforeAll(async () => {
  fake = await startFakeUpstream();
});
afterAll(async () => {
  await fake.close();
});

const alnum = (n: number, seed: number) => Array.from({ length: n }, (_, i) => 'abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789'[(i * 7 + seed * 13) % 56]).join('');
const KEYS = {
  'OpenAI project key': `sk-proj-${alnum(31, 1)}`,
  'Groq-style gsk_': `gsk_${alnum(52, 2)}`,
  'Google AIza': `AIzaSy${alnum(33, 3)}`,
  'bare hex': 'f3a9c2e1b4d5a6978877665544332211',
  'short with dots': `tok.${alnum(6, 4)}.${alnum(6, 5)}`,
};

/** Every 8-character piece of the key: none may show. */
const pieces = (key: string) => Array.from({ length: key.length - 7 }, (_, i) => key.slice(i, i + 8));

describe('item 7: the upstream key is redacted before the provider message is cut', () => {
  for (const [shape, key] of Object.entries(KEYS)) {
    it(`${shape}: no piece of the key in detail or log, for a key at, across and past the cut`, async () => {
      const app = await startApp({ OPENAI_BASE_URL: fake.url, OPENAI_API_KEY: key, UPSTREAM_MAX_RETRIES: '0', LOG_LEVEL: 'info' });
      try {
        // The detail's provider part is cut at 300 characters: put the key before, across and after that point.
        const lead = ' Incorrect API key provided: ';
        // Where the key starts in the provider's message: well inside, ending at the cut, across it, 4 characters before it.
        for (const start of [40, 300 - key.length, 300 - Math.floor(key.length / 2), 296]) {
          const message = `${'x '.repeat(start).slice(0, start - lead.length)}${lead}${key}. Check it.`;
          expect(message.indexOf(key)).toBe(start);
          fake.script({ kind: 'status', status: 400, body: { error: { message } } });
          const response = await post(`${app.url}/api/v1/agent/completion`, { messages: [{ role: 'user', content: 'hi' }] });
          expect(response.status).toBe(502);
          const body = await response.json();
          expect(body.code).toBe('UPSTREAM_BAD_REQUEST');
          for (const piece of pieces(key)) {
            expect(body.detail, `${start}: ${piece}`).not.toContain(piece);
            expect(app.logText(), `${start}: ${piece}`).not.toContain(piece);
          }
        }
      } finally {
        await app.close();
      }
    });
  }

  it('a key that is not echoed leaves the message readable (and cut to 300 characters)', async () => {
    const app = await startApp({ OPENAI_BASE_URL: fake.url, OPENAI_API_KEY: KEYS['OpenAI project key'], UPSTREAM_MAX_RETRIES: '0' });
    try {
      fake.script({ kind: 'status', status: 400, body: { error: { message: `The model does not exist. ${'y '.repeat(400)}` } } });
      const body = await (await post(`${app.url}/api/v1/agent/completion`, { messages: [{ role: 'user', content: 'hi' }] })).json();
      expect(body.detail).toContain('The model does not exist.');
      expect(body.detail.length).toBeLessThan(400);
    } finally {
      await app.close();
    }
  });
});
