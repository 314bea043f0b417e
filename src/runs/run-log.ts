import type { Usage } from '../model/types.js';

export type RunStatus = 'running' | 'completed' | 'failed' | 'cancelled';

/** One event as clients see it (`type` plus fields), numbered within its run from 1. */
export interface LoggedEvent {
  seq: number;
  event: Record<string, unknown>;
}

export interface RunInfo {
  runId: string;
  ownerId: string | null;
  sessionId: string | null;
  createdAt: number;
}

export interface RunEnd {
  status: Exclude<RunStatus, 'running'>;
  stopReason: string | null;
  usage: Usage | null;
  /** `status` is the HTTP status a JSON client got, so a replay can answer the same. */
  error: { detail: string; code: string; status: number } | null;
}

/** Told of every append and of the end, e.g. to mirror the run to Redis. */
export interface RunObserver {
  appended(log: RunLog, event: LoggedEvent): void;
  ended(log: RunLog): void;
}

/**
 * The events of one run, kept for its lifetime plus a grace period so a client that lost its
 * stream can replay what it missed and then follow live. Appending is an array push and, once per
 * tick, a wake-up of whoever waits: cheap enough to record every token, and a follower wakes once
 * for all the tokens of a provider packet rather than once per token.
 */
export class RunLog {
  readonly events: LoggedEvent[] = [];
  observer: RunObserver | null = null;
  status: RunStatus = 'running';
  end: RunEnd | null = null;
  endedAt: number | null = null;
  /** Followers waiting for the next append; woken together on process.nextTick. */
  private waiters: Array<() => void> = [];
  private wakeScheduled = false;
  private readonly endListeners: Array<(log: RunLog) => void> = [];

  constructor(readonly info: RunInfo) {}

  append(event: Record<string, unknown>): LoggedEvent {
    const logged = { seq: this.events.length + 1, event };
    this.events.push(logged);
    this.observer?.appended(this, logged);
    this.notify();
    return logged;
  }

  finish(end: RunEnd): void {
    if (this.end !== null) return;
    this.end = end;
    this.status = end.status;
    this.endedAt = Date.now();
    this.observer?.ended(this);
    this.notify();
    for (const listener of this.endListeners.splice(0)) listener(this);
  }

  onEnd(listener: (log: RunLog) => void): void {
    if (this.end !== null) listener(this);
    else this.endListeners.push(listener);
  }

  /** Events after `afterSeq`, then live ones as they come, until the run has ended or `signal` aborts. */
  async *follow(afterSeq: number, signal?: AbortSignal): AsyncGenerator<LoggedEvent> {
    let next = Math.max(0, afterSeq);
    let resume: (() => void) | null = null;
    // One listener for the whole follow, not one per wait: EventTarget calls cost more than a token.
    const onAbort = () => resume?.();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      for (;;) {
        while (next < this.events.length) yield this.events[next++]!;
        if (this.end !== null || signal?.aborted) return;
        await new Promise<void>((resolve) => {
          resume = resolve;
          this.waiters.push(resolve);
        });
        resume = null;
      }
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  private notify(): void {
    if (this.waiters.length === 0 || this.wakeScheduled) return;
    this.wakeScheduled = true;
    process.nextTick(this.wake);
  }

  private readonly wake = () => {
    this.wakeScheduled = false;
    const waiters = this.waiters;
    this.waiters = [];
    for (const resolve of waiters) resolve();
  };
}
