import type { FastifyBaseLogger } from 'fastify';
import type { RedisConnection } from '../redis/index.js';
import { RunLog, type EventBatch, type RunEnd, type RunEvent, type RunInfo, type RunStatus } from './run-log.js';
import type { RunSignal } from '../run-signal.js';
import { RedisRunMirror } from './redis-run-mirror.js';

/** A run as readers see it, wherever it runs: here (its live log) or on another instance (through Redis). */
export interface RunView {
  info: RunInfo;
  status: RunStatus;
  end: RunEnd | null;
  endedAt: number | null;
  eventCount: number;
  /** False when the run cannot be waiting for approvals now (its latest events say so); true when it may. */
  mayAwaitApproval: boolean;
  follow(afterSeq: number, signal?: RunSignal): AsyncIterable<EventBatch>;
}

export interface RunRetention {
  /** How long a finished run stays replayable (RUN_EVENTS_TTL_SECONDS). */
  ttlSeconds: number;
  /** What the finished runs kept in memory may hold, in events; each run also counts RUN_BOOKKEEPING (RUN_EVENTS_MAX_KEPT). */
  maxKeptEvents: number;
}

/** A finished run costs about as much memory as this many token events beside its own events. */
const RUN_BOOKKEEPING = 16;

/**
 * Every run of this instance by id. A finished run is kept `ttlSeconds`, and while the finished
 * runs kept hold more than `maxKeptEvents` the oldest go first, so memory stays bounded under any
 * load. With Redis, each run is mirrored so any instance can show, replay and cancel it; without,
 * a single instance does it all from memory.
 */
export class RunRegistry {
  private readonly runs = new Map<string, RunLog>();
  private readonly cancelHandlers = new Map<string, () => void>();
  /**
   * Finished runs in the order they ended, which is also the order they expire in: a queue that
   * starts at `head`. (A Map iterated from its start on every end walked past every entry deleted
   * since V8 last rehashed it, thousands at a time.)
   */
  private readonly finished: Array<RunLog | undefined> = [];
  private head = 0;
  private keptEvents = 0;
  private readonly sweeper: NodeJS.Timeout;
  private readonly mirror: RedisRunMirror | undefined;

  constructor(
    private readonly retention: RunRetention,
    redis: RedisConnection | undefined,
    log: FastifyBaseLogger,
  ) {
    this.mirror =
      redis === undefined ? undefined : new RedisRunMirror(redis, retention.ttlSeconds, log, (runId) => this.cancelLocal(runId));
    // Ends evict too; this only frees the memory of a server that has gone quiet.
    this.sweeper = setInterval(() => this.evict(), Math.min(Math.max(retention.ttlSeconds, 1), 60) * 1000);
    this.sweeper.unref();
  }

  create(info: RunInfo, cancel: () => void): RunLog {
    return this.register(new RunLog(info), cancel);
  }

  /**
   * Takes up a run another process started (a run that waited for approvals and is resumed here):
   * its log starts with the events recorded so far, so replays and seqs go on where they were.
   */
  adopt(info: RunInfo, events: readonly RunEvent[], cancel: () => void): RunLog {
    return this.register(new RunLog(info, events), cancel);
  }

  private register(log: RunLog, cancel: () => void): RunLog {
    this.runs.set(log.info.runId, log);
    this.cancelHandlers.set(log.info.runId, cancel);
    this.mirror?.track(log);
    log.onEnd(this.ended);
    return log;
  }

  private readonly ended = (log: RunLog): void => {
    const runId = log.info.runId;
    this.cancelHandlers.delete(runId);
    this.finished.push(log);
    this.keptEvents += cost(log);
    this.evict();
  };

  /** Drops finished runs past their time, then the oldest while over the budget. */
  private evict(): void {
    const expiredBefore = Date.now() - this.retention.ttlSeconds * 1000;
    const finished = this.finished;
    while (this.head < finished.length) {
      const log = finished[this.head]!;
      if (log.endedAt! > expiredBefore && this.keptEvents <= this.retention.maxKeptEvents) break;
      finished[this.head++] = undefined;
      // The id may name a newer log by now (a run taken up again here): that one stays.
      if (this.runs.get(log.info.runId) === log) this.runs.delete(log.info.runId);
      this.keptEvents -= cost(log);
    }
    // Now and then the dropped front goes, so the queue holds about what is kept.
    if (this.head >= 1024 && this.head * 2 >= finished.length) {
      finished.splice(0, this.head);
      this.head = 0;
    }
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

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    await this.mirror?.close();
  }
}

const cost = (log: RunLog) => log.eventCount + RUN_BOOKKEEPING;

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
      return log.eventCount;
    },
    get mayAwaitApproval() {
      return log.awaitingApproval;
    },
    follow: (afterSeq, signal) => log.follow(afterSeq, signal),
  };
}
