import type { FastifyBaseLogger } from 'fastify';
import type { RedisConnection } from '../redis/index.js';
import { RunLog, type LoggedEvent, type RunEnd, type RunInfo, type RunStatus } from './run-log.js';
import { RedisRunMirror } from './redis-run-mirror.js';

/** A run as readers see it, wherever it runs: here (its live log) or on another instance (through Redis). */
export interface RunView {
  info: RunInfo;
  status: RunStatus;
  end: RunEnd | null;
  endedAt: number | null;
  eventCount: number;
  follow(afterSeq: number, signal?: AbortSignal): AsyncIterable<LoggedEvent>;
}

/**
 * Every run of this instance by id, kept `ttlSeconds` after it ended. With Redis, each run is
 * mirrored so any instance can show, replay and cancel it; without, a single instance does it all
 * from memory.
 */
export class RunRegistry {
  private readonly runs = new Map<string, RunLog>();
  private readonly cancelHandlers = new Map<string, () => void>();
  private readonly mirror: RedisRunMirror | undefined;

  constructor(
    private readonly ttlSeconds: number,
    redis: RedisConnection | undefined,
    log: FastifyBaseLogger,
  ) {
    this.mirror = redis === undefined ? undefined : new RedisRunMirror(redis, ttlSeconds, log, (runId) => this.cancelLocal(runId));
  }

  create(info: RunInfo, cancel: () => void): RunLog {
    const log = new RunLog(info);
    this.runs.set(info.runId, log);
    this.cancelHandlers.set(info.runId, cancel);
    this.mirror?.track(log);
    log.onEnd(() => {
      this.cancelHandlers.delete(info.runId);
      setTimeout(() => this.runs.delete(info.runId), this.ttlSeconds * 1000).unref();
    });
    return log;
  }

  async find(runId: string): Promise<RunView | null> {
    const local = this.runs.get(runId);
    if (local !== undefined) return localView(local);
    return (await this.mirror?.find(runId)) ?? null;
  }

  /** Stops the run wherever it runs. Idempotent: cancelling an ended run changes nothing. */
  async cancel(runId: string): Promise<void> {
    if (this.cancelLocal(runId)) return;
    await this.mirror?.requestCancel(runId);
  }

  private cancelLocal(runId: string): boolean {
    const cancel = this.cancelHandlers.get(runId);
    if (cancel === undefined) return this.runs.has(runId);
    cancel();
    return true;
  }

  get size(): number {
    return this.runs.size;
  }

  async close(): Promise<void> {
    await this.mirror?.close();
  }
}

function localView(log: RunLog): RunView {
  return {
    info: log.info,
    get status() {
      return log.status;
    },
    get end() {
      return log.end;
    },
    get endedAt() {
      return log.endedAt;
    },
    get eventCount() {
      return log.events.length;
    },
    follow: (afterSeq, signal) => log.follow(afterSeq, signal),
  };
}
