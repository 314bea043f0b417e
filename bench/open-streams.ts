// Memory with many streams open at once: start `count` streams together against a paced upstream
// and sample the server's RSS until the last one has ended.

import { Pool } from 'undici';
import type { Exchange } from './exchanges.js';
import { rssMb } from './proc-stats.js';

export interface OpenStreamsResult {
  streams: number;
  failures: number;
  failureSamples: string[];
  /** Most streams that had their first token and had not ended, at one moment. */
  maxOpen: number;
  /** Highest RSS sampled while all `streams` were open (null if they never were all open at once). */
  peakRssAllOpenMb: number | null;
  /** Highest RSS sampled from the first request to the end of the last stream. */
  peakRssMb: number;
  /** From the first request until every stream had its first token. */
  allOpenAfterMs: number | null;
  durationMs: number;
}

const SAMPLE_EVERY_MS = 20;

export async function holdOpenStreams(origin: string, exchange: Exchange, count: number, serverPid: number): Promise<OpenStreamsResult> {
  const pool = new Pool(origin, { connections: count, pipelining: 1, headersTimeout: 60_000, bodyTimeout: 60_000 });
  let open = 0;
  let maxOpen = 0;
  let peakRssMb = rssMb(serverPid);
  let peakRssAllOpenMb: number | null = null;
  let allOpenAfterMs: number | null = null;
  const start = performance.now();

  const sample = () => {
    const rss = rssMb(serverPid);
    peakRssMb = Math.max(peakRssMb, rss);
    if (open === count) peakRssAllOpenMb = Math.max(peakRssAllOpenMb ?? 0, rss);
  };
  const sampler = setInterval(sample, SAMPLE_EVERY_MS);

  const one = async (): Promise<void> => {
    let opened = false;
    try {
      await exchange(pool, {
        firstToken() {
          opened = true;
          open++;
          maxOpen = Math.max(maxOpen, open);
          if (open === count) {
            allOpenAfterMs ??= performance.now() - start;
            sample();
          }
        },
      });
    } finally {
      if (opened) open--;
    }
  };
  const outcomes = await Promise.allSettled(Array.from({ length: count }, one));
  clearInterval(sampler);
  const durationMs = performance.now() - start;
  await pool.close();

  const failed = outcomes.filter((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected');
  const samples = new Set(failed.slice(0, 50).map((outcome) => String(outcome.reason instanceof Error ? outcome.reason.message : outcome.reason).slice(0, 300)));
  return {
    streams: count,
    failures: failed.length,
    failureSamples: [...samples].slice(0, 5),
    maxOpen,
    peakRssAllOpenMb,
    peakRssMb,
    allOpenAfterMs,
    durationMs,
  };
}
