// What keeping run event logs costs (issue #6): memory and CPU of 1,000 finished 50-token runs held
// in the RunRegistry, what the default RUN_EVENTS_MAX_KEPT budget bounds it to, and the CPU of recording one event, as a share of a 50-token stream's server
// CPU measured by the main bench (target: < 5 % throughput loss). Recording includes packing each
// finished run's events into one JSON text. Self-contained: no Redis, no HTTP.
//   node --import tsx bench/run-log.bench.ts
import { writeFileSync } from 'node:fs';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { FastifyBaseLogger } from 'fastify';
import { RunRegistry } from '../src/runs/index.js';

const RUNS = 1_000;
const EVENTS_PER_RUN = 55; // run_started + 50 content deltas + done, plus a little room
const DEFAULT_MAX_KEPT = 100_000;
/**
 * Server CPU per 50-token stream at c=64: `npm run bench` passes the one it just measured; run alone,
 * the figure of an earlier full run (bench/README.md).
 */
const STREAM_CPU_MS = Number(process.env.STREAM_CPU_MS ?? 0.354);

// `npm run bench` starts scripts without --expose-gc: switch it on here, or the heap figures
// would count garbage the next collection frees.
if ((globalThis as { gc?: () => void }).gc === undefined) v8.setFlagsFromString('--expose-gc');
const gc = (globalThis as { gc?: () => void }).gc ?? (runInNewContext('gc') as () => void);
const heapMb = () => {
  gc();
  return process.memoryUsage().heapUsed / 1024 / 1024;
};

/** A finished run's events are packed a tick after it ends (src/runs/run-log.ts): let that happen. */
const packed = () => new Promise((resolve) => setImmediate(resolve));

/**
 * Runs end 64 at a time, each batch in its own turn of the event loop, so their events are packed
 * (a tick after the end) while young, as in a server at c=64. Ending thousands in one synchronous
 * loop would keep them all until it is done, and the packing would copy and mark what the server
 * never does; a turn per run would add the event loop's own cost to each event.
 */
async function fillRuns(registry: RunRegistry, runs: number): Promise<void> {
  for (let run = 0; run < runs; run++) {
    const log = registry.create({ runId: `run_${run}`, ownerId: 'bench', sessionId: null, createdAt: Date.now() }, () => undefined);
    log.append({ type: 'run_started', run_id: `run_${run}`, session_id: null });
    for (let token = 0; token < EVENTS_PER_RUN - 2; token++) log.append({ type: 'content', content: ` w${token}` });
    log.append({ type: 'done', run_id: `run_${run}`, session_id: null, stop_reason: 'stop', usage: { prompt_tokens: 10, completion_tokens: 50, total_tokens: 60 } });
    log.finish({ status: 'completed', stopReason: 'stop', usage: { prompt_tokens: 10, completion_tokens: 50, total_tokens: 60 }, error: null });
    if (run % 64 === 63) await packed();
  }
  await packed();
}

// The registry logs only through its Redis mirror, which is off here.
const logger = {} as FastifyBaseLogger;
const before = heapMb();
const registry = new RunRegistry({ ttlSeconds: 3600, maxKeptEvents: Number.MAX_SAFE_INTEGER }, undefined, logger);
const cpuStart = process.cpuUsage();
const started = performance.now();
await fillRuns(registry, RUNS);
const fillMs = performance.now() - started;
const cpu = process.cpuUsage(cpuStart);
const heldMb = heapMb() - before;

// Per event, warm, with the default budget (RUN_EVENTS_MAX_KEPT): recording includes eviction,
// and what stays held is bounded however many runs pass through.
const beforeBounded = heapMb();
const warm = new RunRegistry({ ttlSeconds: 3600, maxKeptEvents: DEFAULT_MAX_KEPT }, undefined, logger);
await fillRuns(warm, 2_000);
const rounds = 5_000;
const t0 = performance.now();
await fillRuns(warm, rounds);
const perEventUs = ((performance.now() - t0) * 1000) / (rounds * EVENTS_PER_RUN);
const boundedMb = heapMb() - beforeBounded;
const perStreamMs = (perEventUs * EVENTS_PER_RUN) / 1000;
const lossPercent = (perStreamMs / STREAM_CPU_MS) * 100;

const result = {
  runs: RUNS,
  eventsPerRun: EVENTS_PER_RUN,
  heapHeldMb: Number(heldMb.toFixed(2)),
  heapHeldAfter7000RunsAtDefaultBudgetMb: Number(boundedMb.toFixed(2)),
  fillCpuMs: Number(((cpu.user + cpu.system) / 1000).toFixed(1)),
  fillWallMs: Number(fillMs.toFixed(1)),
  recordUsPerEvent: Number(perEventUs.toFixed(3)),
  recordMsPerStream: Number(perStreamMs.toFixed(4)),
  streamCpuMs: STREAM_CPU_MS,
  throughputLossPercent: Number(lossPercent.toFixed(2)),
  markdown: [
    `| 1,000 finished runs kept (55 events each) | held after 7,000 runs with RUN_EVENTS_MAX_KEPT=100000 | recording one event (with eviction) | per 50-token stream | share of a stream's server CPU (${STREAM_CPU_MS} ms) |`,
    '|---|---|---|---|---|',
    `| ${heldMb.toFixed(1)} MB heap, ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms CPU to build | ${boundedMb.toFixed(1)} MB heap | ${perEventUs.toFixed(2)} µs | ${(perStreamMs * 1000).toFixed(1)} µs | ${lossPercent.toFixed(2)} % (target < 5 %) |`,
  ].join('\n'),
};
console.log(JSON.stringify(result, null, 2));
if (process.env.BENCH_RESULT_FILE) writeFileSync(process.env.BENCH_RESULT_FILE, JSON.stringify(result));
await registry.close();
await warm.close();
process.exit(0);
