// A finished run's log as the registry keeps it: its events packed into one JSON text a tick after
// it ends (readable, replayable and counted the same), and the registry's queue of finished runs
// dropping the oldest first however many have come and gone.
import { describe, expect, it } from 'vitest';
import pino from 'pino';
import { RunLog, RunRegistry } from '../src/runs/index.js';

const tick = () => new Promise((resolve) => setImmediate(resolve));
const info = (runId: string) => ({ runId, ownerId: 'u1', sessionId: null, createdAt: Date.now() });
const end = { status: 'completed' as const, stopReason: 'stop', usage: null, error: null };

async function collect(log: RunLog, afterSeq: number) {
  const seen: Array<{ firstSeq: number; types: unknown[] }> = [];
  for await (const batch of log.follow(afterSeq)) seen.push({ firstSeq: batch.firstSeq, types: batch.events.map((event) => event.type) });
  return seen;
}

describe('a finished run log', () => {
  it('gives the same events, count and replays once packed, and takes no event after its end', async () => {
    const log = new RunLog(info('run_a'));
    const events = [{ type: 'run_started', run_id: 'run_a' }, { type: 'content', content: 'héllo "quoted"\n' }, { type: 'done', usage: { prompt_tokens: 1 } }];
    for (const event of events) log.append(event);
    log.finish(end);
    log.append({ type: 'content', content: 'too late' });
    // In the tick it ends the log is as it was (the surfaces read their answer from it then).
    expect(log.events).toEqual(events);
    await tick();
    expect(log.events).toEqual(events);
    expect(log.eventCount).toBe(3);
    expect(log.awaitingApproval).toBe(false);
    expect(await collect(log, 0)).toEqual([{ firstSeq: 1, types: ['run_started', 'content', 'done'] }]);
    expect(await collect(log, 2)).toEqual([{ firstSeq: 3, types: ['done'] }]);
    expect(await collect(log, 3)).toEqual([]);
  });

  it('lets a follower that waited read the end after the log is packed', async () => {
    const log = new RunLog(info('run_b'));
    log.append({ type: 'run_started' });
    const followed = collect(log, 0);
    await tick();
    log.append({ type: 'content', content: 'x' });
    log.append({ type: 'done' });
    log.finish(end);
    await tick();
    await tick();
    const batches = await followed;
    expect(batches.flatMap((batch) => batch.types)).toEqual(['run_started', 'content', 'done']);
  });
});

describe('the registry of finished runs', () => {
  it('keeps the newest within RUN_EVENTS_MAX_KEPT through thousands of runs, dropping the oldest first', async () => {
    // Each run: 2 events + 16 for its bookkeeping = 18; a budget of 180 keeps the last 10.
    const registry = new RunRegistry({ ttlSeconds: 3600, maxKeptEvents: 180 }, undefined, pino({ level: 'silent' }));
    try {
      for (let index = 0; index < 3000; index++) {
        const log = registry.create(info(`run_${index}`), () => {});
        log.append({ type: 'run_started' });
        log.append({ type: 'done' });
        log.finish(end);
      }
      await tick();
      expect(await registry.find('run_2989')).toBeNull();
      for (let index = 2990; index < 3000; index++) {
        const view = await registry.find(`run_${index}`);
        expect(view?.status).toBe('completed');
        expect(view?.eventCount).toBe(2);
      }
    } finally {
      await registry.close();
    }
  });
});
