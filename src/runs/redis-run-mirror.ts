import type { FastifyBaseLogger } from 'fastify';
import type { Redis } from 'ioredis';
import type { RedisConnection } from '../redis/index.js';
import type { EventBatch, RunEnd, RunEvent, RunInfo, RunLog, RunObserver, RunStatus } from './run-log.js';
import type { RunSignal } from '../run-signal.js';
import type { RunView } from './run-registry.js';

const RUNNING_TTL_SECONDS = 86_400;
const POLL_MS = 1_000;

/**
 * Copies each local run to Redis (a hash for its state, a list for its events, a channel to wake
 * followers) so another instance can replay and follow it, and carries cancel requests between
 * instances. Writes are batched per tick; while Redis is down they are dropped and the run goes on
 * locally (its own instance can still serve it).
 */
export class RedisRunMirror implements RunObserver {
  private readonly subscriber: Redis;
  private readonly pending = new Map<string, { log: RunLog; events: string[]; lastSeq: number }>();
  private flushScheduled = false;
  private readonly waiters = new Map<string, Set<() => void>>();
  private readonly cancelChannel: string;

  constructor(
    private readonly redis: RedisConnection,
    private readonly ttlSeconds: number,
    private readonly log: FastifyBaseLogger,
    onCancel: (runId: string) => void,
  ) {
    this.cancelChannel = `${redis.prefix}runs:cancel`;
    this.subscriber = redis.client.duplicate({ enableOfflineQueue: true, commandTimeout: undefined });
    this.subscriber.on('error', () => undefined); // the main connection already reports Redis trouble
    this.subscriber.subscribe(this.cancelChannel).catch(() => undefined);
    this.subscriber.on('message', (channel: string, message: string) => {
      if (channel === this.cancelChannel) onCancel(message);
      else for (const wake of this.waiters.get(channel) ?? []) wake();
    });
  }

  private key(runId: string): string {
    return `${this.redis.prefix}run:${runId}`;
  }

  /** Mirrors a run from now on; one adopted with events already in its log gets its Redis copy rewritten to match. */
  track(log: RunLog): void {
    log.observer = this;
    if (!this.redis.ready) return;
    const key = this.key(log.info.runId);
    const multi = this.redis.client.multi().hset(key, 'info', JSON.stringify(log.info), 'status', 'running').expire(key, RUNNING_TTL_SECONDS);
    if (log.events.length > 0) {
      multi
        .del(`${key}:events`)
        .rpush(`${key}:events`, ...log.events.map((event) => JSON.stringify(event)))
        .expire(`${key}:events`, RUNNING_TTL_SECONDS);
    }
    multi.exec().catch((error: unknown) => this.log.debug({ err: error }, 'run mirror write failed'));
  }

  appended(log: RunLog, event: RunEvent, seq: number): void {
    let batch = this.pending.get(log.info.runId);
    if (batch === undefined) {
      batch = { log, events: [], lastSeq: 0 };
      this.pending.set(log.info.runId, batch);
    }
    batch.events.push(JSON.stringify(event));
    batch.lastSeq = seq;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  ended(log: RunLog): void {
    this.flush();
    if (!this.redis.ready) return;
    const key = this.key(log.info.runId);
    this.redis.client
      .multi()
      .hset(key, 'status', log.status, 'end', JSON.stringify(log.end), 'endedAt', String(log.endedAt))
      .expire(key, Math.ceil(this.ttlSeconds))
      .expire(`${key}:events`, Math.ceil(this.ttlSeconds))
      .publish(key, 'end')
      .exec()
      .catch((error: unknown) => this.log.debug({ err: error }, 'run mirror write failed'));
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.pending.size === 0) return;
    const batches = [...this.pending.values()];
    this.pending.clear();
    if (!this.redis.ready) return;
    const pipeline = this.redis.client.pipeline();
    for (const batch of batches) {
      const key = this.key(batch.log.info.runId);
      pipeline.rpush(`${key}:events`, ...batch.events).expire(`${key}:events`, RUNNING_TTL_SECONDS).publish(key, String(batch.lastSeq));
    }
    pipeline.exec().catch((error: unknown) => this.log.debug({ err: error }, 'run mirror write failed'));
  }

  async find(runId: string): Promise<RunView | null> {
    if (!this.redis.ready) return null;
    const key = this.key(runId);
    const [fields, count] = await Promise.all([this.redis.client.hgetall(key), this.redis.client.llen(`${key}:events`)]).catch(() => [null, 0] as const);
    if (fields === null || fields.info === undefined) return null;
    const end: RunEnd | null = fields.end ? JSON.parse(fields.end) : null;
    return {
      info: JSON.parse(fields.info) as RunInfo,
      status: (fields.status ?? 'running') as RunStatus,
      end,
      endedAt: fields.endedAt ? Number(fields.endedAt) : null,
      eventCount: count,
      // Not mirrored: the approval store answers for runs hosted elsewhere.
      mayAwaitApproval: true,
      follow: (afterSeq, signal) => this.follow(runId, afterSeq, signal),
    };
  }

  async requestCancel(runId: string): Promise<void> {
    await this.redis.client.publish(this.cancelChannel, runId).catch(() => undefined);
  }

  private async *follow(runId: string, afterSeq: number, signal?: RunSignal): AsyncGenerator<EventBatch> {
    const key = this.key(runId);
    let wake: () => void = () => undefined;
    const listener = () => wake();
    this.addWaiter(key, listener);
    signal?.addEventListener('abort', listener);
    try {
      let next = Math.max(0, afterSeq);
      for (;;) {
        // Woken by a publish for this run; the poll covers a publish lost while Redis blinked.
        const changed = new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, POLL_MS).unref();
        });
        const items = await this.redis.client.lrange(`${key}:events`, next, -1);
        if (items.length > 0) yield { firstSeq: next + 1, events: items.map(parseEvent) };
        next += items.length;
        const ended = await this.redis.client.hget(key, 'end');
        if (ended !== null) {
          const rest = await this.redis.client.lrange(`${key}:events`, next, -1);
          if (rest.length > 0) yield { firstSeq: next + 1, events: rest.map(parseEvent) };
          return;
        }
        if (signal?.aborted) return;
        await changed;
      }
    } finally {
      signal?.removeEventListener('abort', listener);
      this.removeWaiter(key, listener);
    }
  }

  private addWaiter(channel: string, listener: () => void): void {
    let set = this.waiters.get(channel);
    if (set === undefined) {
      set = new Set();
      this.waiters.set(channel, set);
      this.subscriber.subscribe(channel).catch(() => undefined);
    }
    set.add(listener);
  }

  private removeWaiter(channel: string, listener: () => void): void {
    const set = this.waiters.get(channel);
    if (set === undefined) return;
    set.delete(listener);
    if (set.size === 0) {
      this.waiters.delete(channel);
      this.subscriber.unsubscribe(channel).catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    this.flush();
    this.subscriber.disconnect();
  }
}

const parseEvent = (item: string): RunEvent => JSON.parse(item);
