// A request body reuses the bytes of the messages it shares with the body sent before it
// (body-bytes.ts, issue #13): whatever the history does, the bytes are those of a fresh JSON
// serialisation, and the shared messages really are not serialised again.

import { describe, expect, it } from 'vitest';
import { messagesBody, REUSE_FROM } from '../src/model/body-bytes.js';

type Message = { role: string; content: string };
const REST = '"model":"m","stream":false}';
const expected = (messages: readonly object[], rest = REST) => Buffer.from(`{"messages":${JSON.stringify(messages)},${rest}`);
const body = (messages: readonly object[], rest = REST) => messagesBody(messages, rest, !/[^\x00-\x7f]/.test(rest)).toString('utf8');

/** A deterministic pseudo-random sequence (the same cases on every run). */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state / 2147483648;
  };
}

describe('messagesBody', () => {
  it('is the JSON of the messages and the rest, for every length around the reuse threshold, ASCII or not', () => {
    for (const rest of [REST, '"model":"modèle","stream":false}']) {
      for (let count = 0; count <= REUSE_FROM + 2; count++) {
        const messages = Array.from({ length: count }, (_, index) => ({ role: 'user', content: index % 5 === 3 ? `ça ${index} 🙂` : `m${index}` }));
        expect(body(messages, rest)).toBe(expected(messages, rest).toString('utf8'));
        // Again: the second time it reuses the first body's bytes.
        expect(body(messages, rest)).toBe(expected(messages, rest).toString('utf8'));
      }
    }
  });

  it('stays exact through sliding windows, new system prompts, tool steps, retries, branches and frozen messages', () => {
    const next = random(7);
    let made = 0;
    const message = (role: string): Message => {
      made++;
      const text = next() < 0.2 ? `réponse ${made} — ü` : `answer ${made}`;
      const created = { role, content: text };
      return next() < 0.05 ? Object.freeze(created) : created;
    };
    // Two conversations that share their start, then go their own ways (a branch).
    const shared = Array.from({ length: 12 }, (_, index) => message(index % 2 ? 'assistant' : 'user'));
    const histories = [[...shared], [...shared]];
    let bodies = 0;
    for (let turn = 0; turn < 400; turn++) {
      const history = histories[next() < 0.5 ? 0 : 1]!;
      const window = 10 + Math.floor(next() * 40);
      const system = next() < 0.5 ? [{ role: 'system', content: `prompt ${turn % 3}` }] : [];
      const transcript: object[] = [...system, ...history.slice(-window), message('user')];
      // One to three model calls on the same array, as a run's tool steps push onto it.
      const steps = 1 + Math.floor(next() * 3);
      for (let step = 0; step < steps; step++) {
        const sent = expected(transcript).toString('utf8');
        expect(body(transcript)).toBe(sent);
        bodies++;
        if (next() < 0.1) expect(body(transcript)).toBe(sent); // a retry of the same call
        if (step < steps - 1) transcript.push(message('assistant'), message('tool'));
      }
      history.push(...(transcript.slice(system.length + Math.min(window, history.length)) as Message[]), message('assistant'));
    }
    expect(bodies).toBeGreaterThan(400);
  });

  it('reads none of the messages it shares with the previous body', () => {
    let reads = 0;
    const counted = (target: Message) =>
      new Proxy(target, {
        get(object, key, receiver) {
          reads++;
          return Reflect.get(object, key, receiver);
        },
      });
    const history = Array.from({ length: REUSE_FROM + 4 }, (_, index) => counted({ role: index % 2 ? 'assistant' : 'user', content: `turn ${index}` }));
    const first = [...history, { role: 'user', content: 'question 1' }];
    expect(body(first)).toBe(expected(first).toString('utf8'));
    expect(reads).toBeGreaterThan(history.length);

    // The next turn: the two oldest messages fell out of the window; the answer and a question are new.
    const second = [...history.slice(2), first.at(-1)!, { role: 'assistant', content: 'answer 1' }, { role: 'user', content: 'question 2' }];
    reads = 0;
    const sent = body(second);
    expect(reads).toBe(0);
    expect(sent).toBe(expected(second).toString('utf8'));

    // A history whose messages are new objects with the same content is serialised from them.
    const copies = [...history.map((message) => counted({ ...message })), first.at(-1)!];
    reads = 0;
    expect(body(copies)).toBe(expected(copies).toString('utf8'));
    expect(reads).toBeGreaterThan(history.length);
  });
});
