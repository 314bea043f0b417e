// Checked requests in server-side mode (`message` / `session_id`), for the session benchmarks.

import { Pool, type Dispatcher } from 'undici';
import { ANSWER, chassisExchange, WrongAnswer, type Exchange, type Transport } from './exchanges.js';
import { sseData } from './sse-frames.js';

export const PROMPT = 'Please answer in fifty words. What is 2 + 2?';

export class Failure extends WrongAnswer {}
function check(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Failure(message);
}

// ---------------------------------------------------------------------------------------------
// Exchanges in server-side mode. `sessions` hands each request a session no other request is
// using at that moment (a free list), so no turn meets a busy session.

export type SessionSource = { take(): string | undefined; give(id: string): void };

export function freeList(ids: string[]): SessionSource {
  const free = [...ids];
  return { take: () => free.shift(), give: (id) => void free.push(id) };
}

export async function sessionTurn(client: Dispatcher, stream: boolean, sessionId: string | undefined, hooks?: { firstToken?(): void }): Promise<{ ttft?: number; sessionId: string }> {
  const start = performance.now();
  const body = JSON.stringify({ message: PROMPT, ...(sessionId === undefined ? {} : { session_id: sessionId }), ...(stream ? { stream: true } : {}) });
  const response = await client.request({ method: 'POST', path: '/api/v1/agent/completion', headers: { 'content-type': 'application/json' }, body });
  if (response.statusCode !== 200) throw new Failure(`HTTP ${response.statusCode}: ${(await response.body.text()).slice(0, 200)}`);
  const header = response.headers['x-session-id'];
  check(typeof header === 'string' && (sessionId === undefined || header === sessionId), `x-session-id ${String(header)}`);
  if (!stream) {
    const answer = (await response.body.json()) as { content?: string; session_id?: string };
    check(answer.content === ANSWER, `content is not the 50-word answer: ${String(answer.content).slice(0, 80)}`);
    check(answer.session_id === header, `session_id ${answer.session_id}`);
    return { sessionId: header };
  }
  let content = '';
  let ttft: number | undefined;
  let done = false;
  for await (const data of sseData(response.body)) {
    const event = JSON.parse(data) as { type: string; content?: string; detail?: string };
    if (event.type === 'content') {
      if (ttft === undefined) {
        ttft = performance.now() - start;
        hooks?.firstToken?.();
      }
      content += event.content;
    } else if (event.type === 'error') throw new Failure(`error event: ${event.detail}`);
    else if (event.type === 'done') done = true;
  }
  check(done && content === ANSWER, 'stream did not end with done after the 50-word answer');
  return { ttft, sessionId: header };
}

export const newSessionExchange = (stream: boolean): Exchange => async (client, hooks) => (await sessionTurn(client, stream, undefined, hooks)).ttft;

export function continueExchange(stream: boolean, sessions: SessionSource): Exchange {
  return async (client, hooks) => {
    const id = sessions.take();
    check(id !== undefined, 'no free session: more workers than sessions');
    try {
      return (await sessionTurn(client, stream, id, hooks)).ttft;
    } finally {
      sessions.give(id);
    }
  };
}

/** `count` new sessions, each made by one turn through HTTP: their ids. */
export async function openSessions(origin: string, count: number): Promise<string[]> {
  const pool = new Pool(origin, { connections: Math.min(count, 16) });
  try {
    return await Promise.all(Array.from({ length: count }, async () => (await sessionTurn(pool, false, undefined)).sessionId));
  } finally {
    await pool.close();
  }
}

/** The scenarios the profilers (profile.ts, perf-profile.ts, alloc-profile.ts) can load the chassis with. */
export type ProfileMode = 'stateless' | 'new-session' | 'continue';

export function profileMode(value: string): ProfileMode {
  if (value !== 'stateless' && value !== 'new-session' && value !== 'continue') throw new Error('--mode is stateless, new-session or continue');
  return value;
}

/**
 * The exchange a profiled scenario repeats: a stateless 1-step turn, a new session each time, or
 * each of `concurrency` workers continuing its own session (made by one turn first).
 */
export async function modeExchange(mode: ProfileMode, origin: string, transport: Transport, concurrency: number): Promise<Exchange> {
  const stream = transport === 'sse';
  if (mode === 'new-session') return newSessionExchange(stream);
  if (mode === 'continue') return continueExchange(stream, freeList(await openSessions(origin, concurrency)));
  return chassisExchange('text50', transport);
}
