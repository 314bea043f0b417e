// A closed-loop load generator: `concurrency` workers, each sending its next request as soon as the
// previous one is fully read and checked, over keep-alive connections of one undici Pool. The same
// code drives the chassis and the fake upstream alone, so their numbers compare.

import { Pool } from 'undici';
import type { Exchange } from './exchanges.js';
import { cpuMs } from './proc-stats.js';

export interface LoadOptions {
  origin: string;
  exchange: Exchange;
  concurrency: number;
  warmupMs: number;
  durationMs: number;
  /** The process under test (its CPU per request is reported). */
  serverPid: number;
  /** The upstream behind it, when the server under test is the chassis. */
  upstreamPid?: number;
}

export interface Percentiles {
  p50: number;
  p99: number;
  mean: number;
  max: number;
}

export interface LoadResult {
  concurrency: number;
  /** Checked, correct answers in the measured window. */
  requests: number;
  failures: number;
  warmupFailures: number;
  /** Up to five distinct failure messages. */
  failureSamples: string[];
  windowMs: number;
  /** The measured window on the machine's monotonic clock in µs (the clock of V8 CPU profiles). */
  windowMonotonicUs: [number, number];
  requestsPerSecond: number;
  latencyMs: Percentiles;
  ttftMs: Percentiles | null;
  serverCpuMsPerRequest: number;
  upstreamCpuMsPerRequest: number | null;
  loadGeneratorCpuMsPerRequest: number;
}

const MAX_FAILURE_SAMPLES = 5;
const monotonicUs = () => Number(process.hrtime.bigint() / 1000n);

export function percentiles(values: number[]): Percentiles {
  if (values.length === 0) return { p50: NaN, p99: NaN, mean: NaN, max: NaN };
  const sorted = Float64Array.from(values).sort();
  // Nearest rank: the smallest value with at least p% of the samples at or below it.
  const rank = (p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
  const sum = sorted.reduce((total, value) => total + value, 0);
  return { p50: rank(50), p99: rank(99), mean: sum / sorted.length, max: sorted[sorted.length - 1]! };
}

function describe(error: unknown): string {
  if (error instanceof Error) return `${error.constructor.name}: ${error.message}`.slice(0, 300);
  return String(error).slice(0, 300);
}

/**
 * Warm up, then measure requests that start inside the window; when it closes no new request
 * starts and the window ends when the last one has been read. CPU is the delta over that window,
 * so requests still running from the warm-up make the per-request figure slightly pessimistic.
 */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const pool = new Pool(options.origin, {
    connections: options.concurrency,
    pipelining: 1,
    keepAliveTimeout: 60_000,
    headersTimeout: 30_000,
    bodyTimeout: 30_000,
  });
  let phase: 'warmup' | 'measure' | 'stop' = 'warmup';
  const latencies: number[] = [];
  const ttfts: number[] = [];
  let failures = 0;
  let warmupFailures = 0;
  const failureSamples = new Set<string>();

  async function worker(): Promise<void> {
    while (phase !== 'stop') {
      const measured = phase === 'measure';
      const start = performance.now();
      try {
        const ttft = await options.exchange(pool);
        if (measured) {
          latencies.push(performance.now() - start);
          if (ttft !== undefined) ttfts.push(ttft);
        }
      } catch (error) {
        if (measured) failures++;
        else warmupFailures++;
        if (failureSamples.size < MAX_FAILURE_SAMPLES) failureSamples.add(describe(error));
      }
    }
  }

  const workers = Array.from({ length: options.concurrency }, worker);
  await new Promise((resolve) => setTimeout(resolve, options.warmupMs));
  const serverCpu0 = cpuMs(options.serverPid);
  const upstreamCpu0 = options.upstreamPid === undefined ? 0 : cpuMs(options.upstreamPid);
  const ownCpu0 = process.cpuUsage();
  const t0 = performance.now();
  const monotonic0 = monotonicUs();
  phase = 'measure';
  await new Promise((resolve) => setTimeout(resolve, options.durationMs));
  phase = 'stop';
  await Promise.all(workers);
  const windowMs = performance.now() - t0;
  const monotonic1 = monotonicUs();
  const serverCpu = cpuMs(options.serverPid) - serverCpu0;
  const upstreamCpu = options.upstreamPid === undefined ? null : cpuMs(options.upstreamPid) - upstreamCpu0;
  const ownCpu = process.cpuUsage(ownCpu0);
  await pool.close();

  const completed = latencies.length + failures;
  const perRequest = (ms: number) => (completed === 0 ? NaN : ms / completed);
  return {
    concurrency: options.concurrency,
    requests: latencies.length,
    failures,
    warmupFailures,
    failureSamples: [...failureSamples],
    windowMs,
    windowMonotonicUs: [monotonic0, monotonic1],
    requestsPerSecond: (latencies.length * 1000) / windowMs,
    latencyMs: percentiles(latencies),
    ttftMs: ttfts.length === 0 ? null : percentiles(ttfts),
    serverCpuMsPerRequest: perRequest(serverCpu),
    upstreamCpuMsPerRequest: upstreamCpu === null ? null : perRequest(upstreamCpu),
    loadGeneratorCpuMsPerRequest: perRequest((ownCpu.user + ownCpu.system) / 1000),
  };
}

// ---------------------------------------------------------------------------------------------

export interface Measured {
  cpuMsPerRequest: number;
  requestsPerSecond: number;
  p50: number;
  p99: number;
  max: number;
  failures: number;
  failureSamples: string[];
}

export const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length === 0 ? NaN : sorted[Math.floor((sorted.length - 1) / 2)]!;
};

/**
 * Closed loop at steady state: CPU is read at two instants while all workers keep going, and divided
 * by the requests that completed between them. Work in flight at either instant is cut the same way
 * at both ends, so (unlike counting only requests started in the window and draining them) the
 * estimate has no bias of up to c requests — which matters at c=64 when a loaded machine serves
 * only a few hundred requests in the window.
 *
 * Latency (p50, p99, max) is that of the requests that started after the warm-up and ended before the
 * second CPU reading. A request started in the warm-up may be one of the first a new connection, a
 * cold code path or a heap still growing ever saw; counting it made the max of a steady state
 * several times what any request in it took (issue #13's max/median goal).
 */
export async function steadyLoad(options: { origin: string; exchange: Exchange; concurrency: number; serverPid: number; warmupMs: number; durationMs: number }): Promise<Measured> {
  const { origin, exchange, concurrency, serverPid, warmupMs, durationMs } = options;
  const pool = new Pool(origin, { connections: concurrency, pipelining: 1, keepAliveTimeout: 60_000, headersTimeout: 60_000, bodyTimeout: 60_000 });
  let phase: 'warmup' | 'measure' | 'stop' = 'warmup';
  let completions = 0;
  let measureStart = Infinity;
  const latencies: number[] = [];
  let failures = 0;
  const failureSamples = new Set<string>();
  const worker = async () => {
    while (phase !== 'stop') {
      const start = performance.now();
      try {
        await exchange(pool);
        if (phase === 'measure') {
          completions++;
          if (start >= measureStart) latencies.push(performance.now() - start);
        }
      } catch (error) {
        failures++;
        if (failureSamples.size < 5) failureSamples.add(error instanceof Error ? error.message.slice(0, 200) : String(error));
      }
    }
  };
  const workers = Array.from({ length: concurrency }, worker);
  await sleep(warmupMs);
  phase = 'measure';
  const cpu0 = cpuMs(serverPid);
  const t0 = performance.now();
  measureStart = t0;
  await sleep(durationMs);
  const cpu1 = cpuMs(serverPid);
  const t1 = performance.now();
  const completed = completions;
  const { p50, p99, max } = percentiles(latencies);
  phase = 'stop';
  await Promise.all(workers);
  await pool.close();
  return {
    cpuMsPerRequest: (cpu1 - cpu0) / completed,
    requestsPerSecond: (completed * 1000) / (t1 - t0),
    p50,
    p99,
    max,
    failures,
    failureSamples: [...failureSamples],
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** `concurrency` workers repeating `exchange` until `stop()`; `done` is told of each exchange that completed. */
export function closedLoop(origin: string, exchange: Exchange, concurrency: number, done: () => void): { stop(): Promise<void> } {
  const pool = new Pool(origin, { connections: concurrency });
  let stopped = false;
  const workers = Array.from({ length: concurrency }, async () => {
    while (!stopped) {
      await exchange(pool);
      done();
    }
  });
  return {
    async stop() {
      stopped = true;
      await Promise.all(workers);
      await pool.close();
    },
  };
}
