import { ChassisError } from '../errors.js';
import { randomId } from '../random-id.js';
import { RunStop, type RunSignal } from '../run-signal.js';

/** 128 random bits: a run id is as hard to guess as a session id. */
export function newRunId(): string {
  return `run_${randomId()}`;
}

/** One agent run in flight: its id, and the switch that stops it (client gone, deadline, shutdown). */
export class Run {
  private readonly stop = new RunStop();
  private readonly deadline: NodeJS.Timeout;

  constructor(
    readonly id: string,
    deadlineSeconds: number,
    private readonly onEnd: (run: Run) => void,
  ) {
    this.deadline = setTimeout(
      () => this.abort(new ChassisError(504, 'RUN_DEADLINE_EXCEEDED', `The run took longer than ${deadlineSeconds} s and was stopped`)),
      deadlineSeconds * 1000,
    );
    this.deadline.unref();
  }

  get signal(): RunSignal {
    return this.stop;
  }

  /** The reason becomes the run's error: every abort says why. */
  abort(reason: ChassisError): void {
    this.stop.abort(reason);
  }

  end(): void {
    clearTimeout(this.deadline);
    this.onEnd(this);
  }
}

/** Bounds the runs of this instance (MAX_CONCURRENT_RUNS) and can stop them all at shutdown. */
export class RunTracker {
  private readonly active = new Set<Run>();
  private closing = false;

  constructor(
    private readonly maxConcurrent: number,
    private readonly deadlineSeconds: number,
  ) {}

  get size(): number {
    return this.active.size;
  }

  start(id = newRunId()): Run {
    if (this.closing) {
      throw new ChassisError(503, 'SHUTTING_DOWN', 'The server is shutting down; retry on another instance', { headers: { 'retry-after': '1' } });
    }
    if (this.active.size >= this.maxConcurrent) {
      throw new ChassisError(503, 'SERVER_BUSY', 'Too many agent runs in progress on this instance; retry shortly', { headers: { 'retry-after': '1' } });
    }
    const run = new Run(id, this.deadlineSeconds, (ended) => {
      this.active.delete(ended);
      if (this.active.size === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
    });
    this.active.add(run);
    return run;
  }

  private readonly idleWaiters: Array<() => void> = [];

  /** Refuse new runs; resolves when the running ones have ended (or at once when none run). */
  drain(): Promise<void> {
    this.closing = true;
    if (this.active.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  abortAll(reason: ChassisError): void {
    for (const run of this.active) run.abort(reason);
  }
}
