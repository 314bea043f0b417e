import type { FastifyBaseLogger } from 'fastify';

/**
 * Work done after the answer was sent (mail that must not leak, by its timing, whether an account
 * exists). Failures are logged, never thrown; `drain` lets shutdown and tests wait for it.
 */
export class BackgroundTasks {
  private readonly pending = new Set<Promise<void>>();

  constructor(private readonly log: FastifyBaseLogger) {}

  run(name: string, work: () => Promise<void>): void {
    // Started on the next turn of the event loop, so none of it (not even a synchronous SQLite
    // query) runs before the answer is written.
    const task = new Promise<void>((resolve) => setImmediate(resolve))
      .then(work)
      .catch((error: unknown) => this.log.warn({ err: error, task: name }, 'background task failed'));
    this.pending.add(task);
    void task.finally(() => this.pending.delete(task));
  }

  async drain(timeoutMs = 10_000): Promise<void> {
    const timeout = new Promise<void>((resolve) => setTimeout(resolve, timeoutMs).unref());
    await Promise.race([Promise.all(this.pending), timeout]);
  }
}
