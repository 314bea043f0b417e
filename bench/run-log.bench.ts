// What keeping run event logs costs (issue #6): memory and CPU of 1,000 finished 50-token runs held
// in the RunRegistry, and the CPU of recording one event, as a share of a 50-token stream's server
// CPU measured by the main bench (target: < 5 % throughput loss). Self-contained: no Redis, no HTTP.
//   node --expose-gc --import tsx bench/run-log.bench.ts
import { writeFileSync } from 'node:fs';
import type { FastifyBaseLogger } from 'fastify';
import { RunRegistry } from '../src/runs/index.js';

const RUNS = 1_000;
const EVENTS_PER_RUN = 55; // run_started + 50 content deltas + done, plus a little room
/** Server CPU per 50-token stream at c=64 from the latest main bench (bench/README.md). */
const STREAM_CPU_MS = Number(process.env.STREAM_CPU_MS ?? 0.767);

const gc = (globalThis as { gc?: () => void }).gc;
const heapMb = () => {
  gc?.();
  return process.memoryUsage().heapUsed / 1024 / 1024;
};

function fillRuns(registry: RunRegistry, runs: number): void {
  for (let run = 0; run < runs; run++) {
    const log = registry.create({ runId: `run_${run}`, ownerId: 'bench', sessionId: null, createdAt: Date.now() }, () => undefined);
    log.append({ type: 'run_started', run_id: `run_${run}`, session_id: null });
    for (let token = 0; token < EVENTS_PER_RUN - 2; token++) log.append({ type: 'content', content: ` w${token}` });
    log.append({ type: 'done', run_id: `run_${run}`, session_id: null, stop_reason: 'stop', usage: { prompt_tokens: 10, completion_tokens: 50, total_tokens: 60 } });
    log.finish({ status: 'completed', stopReason: 'stop', usage: { prompt_tokens: 10, completion_tokens: 50, total_tokens: 60 }, error: null });
  }
}

// The registry logs only through its Redis mirror, which is off here.
const logger = {} as FastifyBaseLogger;
const before = heapMb();
const registry = new RunRegistry(3600, undefined, logger);
const cpuStart = process.cpuUsage();
const started = performance.now();
fillRuns(registry, RUNS);
const fillMs = performance.now() - started;
const cpu = process.cpuUsage(cpuStart);
const heldMb = heapMb() - before;

// Per event, warm: many more appends to amortise timer noise.
const warm = new RunRegistry(1, undefined, logger);
fillRuns(warm, 2_000);
const rounds = 5_000;
const t0 = performance.now();
fillRuns(warm, rounds);
const perEventUs = ((performance.now() - t0) * 1000) / (rounds * EVENTS_PER_RUN);
const perStreamMs = (perEventUs * EVENTS_PER_RUN) / 1000;
const lossPercent = (perStreamMs / STREAM_CPU_MS) * 100;

const result = {
  runs: RUNS,
  eventsPerRun: EVENTS_PER_RUN,
  heapHeldMb: Number(heldMb.toFixed(2)),
  fillCpuMs: Number(((cpu.user + cpu.system) / 1000).toFixed(1)),
  fillWallMs: Number(fillMs.toFixed(1)),
  recordUsPerEvent: Number(perEventUs.toFixed(3)),
  recordMsPerStream: Number(perStreamMs.toFixed(4)),
  streamCpuMs: STREAM_CPU_MS,
  throughputLossPercent: Number(lossPercent.toFixed(2)),
  gcExposed: gc !== undefined,
  markdown: [
    `| 1,000 finished runs kept (55 events each) | recording one event | per 50-token stream | share of a stream's server CPU (${STREAM_CPU_MS} ms) |`,
    '|---|---|---|---|',
    `| ${heldMb.toFixed(1)} MB heap, ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms CPU to build | ${perEventUs.toFixed(2)} µs | ${(perStreamMs * 1000).toFixed(1)} µs | ${lossPercent.toFixed(2)} % (target < 5 %) |`,
  ].join('\n'),
};
console.log(JSON.stringify(result, null, 2));
if (process.env.BENCH_RESULT_FILE) writeFileSync(process.env.BENCH_RESULT_FILE, JSON.stringify(result));
await registry.close();
await warm.close();
process.exit(0);
