import { afterEach, describe, expect, it, vi } from 'vitest';
import { MemoryIdempotencyStore } from '../src/runs/index.js';

// The in-memory store (ENABLE_PERSISTENCE=false) forgets a key IDEMPOTENCY_TTL_SECONDS after its claim.
describe('MemoryIdempotencyStore expiry', () => {
  afterEach(() => vi.useRealTimers());

  it('holds a key for its lifetime, frees it after, and a reclaimed key lives its full lifetime again', async () => {
    vi.useFakeTimers({ now: 0, toFake: ['Date'] });
    const store = new MemoryIdempotencyStore(10);
    expect(await store.claim('s', 'a', 'f1', 'run_a')).toBeNull();
    vi.setSystemTime(5_000);
    expect(await store.claim('s', 'b', 'f1', 'run_b')).toBeNull();
    // Within its lifetime, a retry finds the first claim.
    expect(await store.claim('s', 'a', 'f1', 'run_x')).toMatchObject({ runId: 'run_a' });
    vi.setSystemTime(10_001);
    // a has expired: a new claim wins; b (claimed at 5 s) is still held.
    expect(await store.claim('s', 'a', 'f2', 'run_a2')).toBeNull();
    expect(await store.get('s', 'b')).toMatchObject({ runId: 'run_b' });
    vi.setSystemTime(15_001);
    // b expired and is swept by the next claim; the reclaimed a (at 10.001 s) lives until 20.001 s.
    expect(await store.claim('s', 'c', 'f1', 'run_c')).toBeNull();
    expect(await store.get('s', 'b')).toBeNull();
    expect(await store.get('s', 'a')).toMatchObject({ runId: 'run_a2' });
    vi.setSystemTime(20_002);
    expect(await store.get('s', 'a')).toBeNull();
  });
});
