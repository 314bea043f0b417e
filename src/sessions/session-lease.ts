import type { FastifyBaseLogger } from 'fastify';
import type { SessionStore } from './session-store.js';

/** How often a failed release is tried again. */
const RELEASE_RETRY_MS = 1000;

/**
 * One run's hold on a session, taken by `SessionStore.acquire`. It is renewed every third of its
 * length while the run lasts, so only a dead instance lets it run out. Released after a failed run;
 * when the database is down at that moment, the release is retried in the background until the
 * lease would have expired anyway, so a session is free soon after the database is back.
 */
export class SessionLease {
  private expiresAt: number;
  private ended = false;
  private readonly renewal: NodeJS.Timeout;

  constructor(
    private readonly store: SessionStore,
    readonly sessionId: string,
    readonly owner: string,
    private readonly leaseMs: number,
    private readonly log: FastifyBaseLogger,
    /** Told when the session is free again (commit or release), so queued runs of this instance go at once. */
    private readonly onFree: () => void = () => undefined,
  ) {
    this.expiresAt = Date.now() + leaseMs;
    this.renewal = setInterval(() => void this.renew(), leaseMs / 3);
    this.renewal.unref();
  }

  /** The commit let go of the lease in its own transaction. */
  committed(): void {
    this.ended = true;
    clearInterval(this.renewal);
    this.onFree();
  }

  /** The run paused for approvals: stop renewing, the pause set a lease that outlasts the wait (and this process). */
  parked(): void {
    clearInterval(this.renewal);
  }

  /** Never throws: a lease that cannot be released expires by itself. */
  async release(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    clearInterval(this.renewal);
    await this.tryRelease();
  }

  private async renew(): Promise<void> {
    const renewedAt = Date.now();
    try {
      const held = await this.store.renew(this.sessionId, this.owner, this.leaseMs);
      if (held) this.expiresAt = renewedAt + this.leaseMs;
      else if (!this.ended) this.log.warn({ sessionId: this.sessionId }, 'session lease lost during a run; its commit will be refused');
    } catch (error) {
      this.log.warn({ err: error, sessionId: this.sessionId }, 'session lease renewal failed');
    }
  }

  private async tryRelease(): Promise<void> {
    try {
      await this.store.release(this.sessionId, this.owner);
      this.onFree();
    } catch (error) {
      if (Date.now() + RELEASE_RETRY_MS >= this.expiresAt) {
        this.log.warn({ err: error, sessionId: this.sessionId }, 'session lease release failed; it expires by itself');
        return;
      }
      this.log.warn({ err: error, sessionId: this.sessionId }, 'session lease release failed; retrying');
      setTimeout(() => void this.tryRelease(), RELEASE_RETRY_MS).unref();
    }
  }
}
