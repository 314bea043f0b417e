import { randomBytes } from 'node:crypto';
import { hash as argon2Hash, parseOptions, verify as argon2Verify, type Algorithm } from '@node-rs/argon2';
import bcrypt from 'bcryptjs';
import { ChassisError } from '../errors.js';

export interface HasherOptions {
  memoryKib: number;
  timeCost: number;
  /** Hashes running at once (each takes a thread-pool thread and memoryKib of memory). */
  concurrency: number;
  /** Hashes allowed to wait for a slot; past that the request gets 503. */
  queue: number;
}

export interface VerifyResult {
  ok: boolean;
  /** The stored hash is legacy bcrypt or weaker than today's parameters: store a new one. */
  needsRehash: boolean;
}

const ARGON2ID = 2 as Algorithm;
const BCRYPT_PREFIX = /^\$2[aby]\$\d{2}\$/;
const BCRYPT_MAX_BYTES = 72;

/**
 * argon2id on the libuv thread pool, never on the event loop, with a bound on hashes in flight so a
 * burst of logins cannot starve the server: the excess waits in a short queue, then gets 503.
 */
export class PasswordHasher {
  private running = 0;
  private readonly waiting: Array<() => void> = [];
  private dummy: Promise<string> | undefined;

  constructor(private readonly options: HasherOptions) {}

  async hash(password: string): Promise<string> {
    return this.bounded(() => argon2Hash(password, this.argon2Options()));
  }

  /**
   * Checks a password against a stored hash (argon2id, or legacy bcrypt `$2b$` from the Python
   * version). With no stored hash (unknown user, Google-only account) it verifies against a dummy
   * hash of the same cost, so the answer takes as long as a real one.
   */
  async verify(stored: string | null, password: string): Promise<VerifyResult> {
    if (stored === null) {
      await this.bounded(async () => argon2Verify(await this.dummyHash(), password));
      return { ok: false, needsRehash: false };
    }
    if (BCRYPT_PREFIX.test(stored)) {
      // bcrypt ignores bytes past 72: refuse such passwords rather than accept a prefix of them.
      if (Buffer.byteLength(password, 'utf8') > BCRYPT_MAX_BYTES) return { ok: false, needsRehash: false };
      const ok = await this.bounded(() => bcrypt.compare(password, stored));
      return { ok, needsRehash: ok };
    }
    const ok = await this.bounded(() => argon2Verify(stored, password)).catch((error: unknown) => {
      if (error instanceof ChassisError) throw error;
      return false; // a malformed stored hash never verifies
    });
    return { ok, needsRehash: ok && this.weakerThanPolicy(stored) };
  }

  /** Computed once, off the request that first needs it, with today's parameters. */
  private dummyHash(): Promise<string> {
    this.dummy ??= argon2Hash(randomBytes(32), this.argon2Options());
    return this.dummy;
  }

  private argon2Options() {
    return { algorithm: ARGON2ID, memoryCost: this.options.memoryKib, timeCost: this.options.timeCost, parallelism: 1 };
  }

  private weakerThanPolicy(stored: string): boolean {
    try {
      const params = parseOptions(stored);
      return params.algorithm !== ARGON2ID || params.memoryCost < this.options.memoryKib || params.timeCost < this.options.timeCost;
    } catch {
      return true;
    }
  }

  private async bounded<T>(work: () => Promise<T>): Promise<T> {
    if (this.running >= this.options.concurrency) {
      if (this.waiting.length >= this.options.queue) {
        throw new ChassisError(503, 'SERVER_BUSY', 'Too many password checks in progress; retry in a moment', { headers: { 'retry-after': '1' } });
      }
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else {
      this.running++;
    }
    try {
      return await work();
    } finally {
      // Hand the slot straight to the next waiter, or free it.
      const next = this.waiting.shift();
      if (next !== undefined) next();
      else this.running--;
    }
  }
}
