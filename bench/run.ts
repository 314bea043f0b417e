// `npm run bench`: the chassis in front of the fake upstream, and the fake upstream alone, under the
// same closed-loop load; memory with 64 and 1,000 open streams; then every bench/*.bench.ts.
// Options: --seconds N (measured, default 6), --warmup-seconds N (default 1),
// --stream-delay-ms N (upstream pace while streams are held open, default 400), --no-scripts.

import { existsSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Pool, request } from 'undici';
import { chatCompletionsEndpoint } from '../src/model/openai-client.js';
import { chassisExchange, upstreamExchange, type Exchange, type FakeMode, type Transport, type UpstreamShape } from './exchanges.js';
import { runLoad } from './load.js';
import { holdOpenStreams } from './open-streams.js';
import { clockTicksPerSecond, rssMb } from './proc-stats.js';
import { repoRoot, startChassisProcess, startFakeProcess, type Child } from './processes.js';
import { findScenario, resultsMarkdown, targetChecks, writeReadmeSection, writeResultsJson, type BenchResults, type ScenarioResult } from './report.js';
import { benchScripts, runBenchScript } from './scripts.js';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '6' },
    'warmup-seconds': { type: 'string', default: '1' },
    'stream-delay-ms': { type: 'string', default: '400' },
    'no-scripts': { type: 'boolean', default: false },
  },
});
const durationMs = Number(args.seconds) * 1000;
const warmupMs = Number(args['warmup-seconds']) * 1000;
const streamDelayMs = Number(args['stream-delay-ms']);
if (!(durationMs > 0 && warmupMs >= 0 && streamDelayMs > 0)) {
  process.stderr.write('bench: --seconds and --stream-delay-ms must be positive, --warmup-seconds not negative\n');
  process.exit(2);
}

const CONCURRENCIES = [1, 64];
const TRANSPORTS: Transport[] = ['json', 'sse'];
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function log(line: string): void {
  process.stdout.write(`${line}\n`);
}

/** The tools the chassis offers the model, in the shape it sends them, so the fake-alone calls carry the same bytes. */
async function upstreamShape(chassis: Child, fakeUrl: string): Promise<UpstreamShape> {
  const response = await request(`${chassis.origin}/api/v1/tools`);
  const { tools } = (await response.body.json()) as { tools: { name: string; description: string; parameters: unknown }[] };
  return {
    path: chatCompletionsEndpoint(fakeUrl).path,
    model: 'bench-model',
    tools: tools.map((tool) => ({ type: 'function', function: { name: tool.name, description: tool.description, parameters: tool.parameters } })),
  };
}

/** One request first, so a broken setup fails in a second with its reason, not after minutes of errors. */
async function probe(origin: string, exchange: Exchange, what: string): Promise<void> {
  const pool = new Pool(origin, { connections: 1 });
  try {
    await exchange(pool);
  } catch (error) {
    throw new Error(`${what}: the first request failed: ${error instanceof Error ? error.message : String(error)}`);
  } finally {
    await pool.close();
  }
}

function logScenario(s: ScenarioResult): void {
  const ttft = s.ttftMs ? ` ttft p50 ${s.ttftMs.p50.toFixed(2)} p99 ${s.ttftMs.p99.toFixed(2)}` : '';
  const upstream = s.upstreamCpuMsPerRequest === null ? '' : ` (fake ${s.upstreamCpuMsPerRequest.toFixed(3)})`;
  log(
    `  ${s.server.padEnd(8)} ${s.mode.padEnd(6)} ${s.transport.padEnd(4)} c=${String(s.concurrency).padEnd(2)} ` +
      `${s.requestsPerSecond.toFixed(0).padStart(5)} req/s  p50 ${s.latencyMs.p50.toFixed(2)} p99 ${s.latencyMs.p99.toFixed(2)} ms${ttft}  ` +
      `cpu ${s.serverCpuMsPerRequest.toFixed(3)} ms/req${upstream}  failures ${s.failures + s.warmupFailures}`,
  );
  for (const sample of s.failureSamples) log(`    failure: ${sample}`);
}

type IdleMemory = Pick<BenchResults['memory'], 'idleAfterStartMb' | 'idleAfterWarmupMb' | 'idleAfterLoadMb'>;

async function throughput(mode: FakeMode, scenarios: ScenarioResult[]): Promise<IdleMemory> {
  const fake = await startFakeProcess(mode);
  const chassis = await startChassisProcess({ upstreamUrl: fake.url });
  try {
    await sleep(500);
    const idleAfterStartMb = rssMb(chassis.pid);
    // Idle as a deployment sees it: compiled hot paths, no traffic. One request at a time, so the
    // heap has not been grown by 64 concurrent runs (that figure is idleAfterLoadMb).
    for (const transport of TRANSPORTS) {
      await runLoad({ origin: chassis.origin, exchange: chassisExchange(mode, transport), concurrency: 1, warmupMs: 0, durationMs: warmupMs, serverPid: chassis.pid });
    }
    await sleep(1000);
    const idleAfterWarmupMb = rssMb(chassis.pid);
    const shape = await upstreamShape(chassis, fake.url);
    for (const server of ['upstream', 'chassis'] as const) {
      for (const transport of TRANSPORTS) {
        const exchange = server === 'chassis' ? chassisExchange(mode, transport) : upstreamExchange(mode, transport, shape);
        const origin = server === 'chassis' ? chassis.origin : fake.origin;
        await probe(origin, exchange, `${server} ${mode} ${transport}`);
        for (const concurrency of CONCURRENCIES) {
          const result = await runLoad({
            origin,
            exchange,
            concurrency,
            warmupMs,
            durationMs,
            serverPid: server === 'chassis' ? chassis.pid : fake.pid,
            upstreamPid: server === 'chassis' ? fake.pid : undefined,
          });
          const scenario: ScenarioResult = { server, mode, transport, ...result };
          scenarios.push(scenario);
          logScenario(scenario);
        }
      }
    }
    await sleep(1000);
    return { idleAfterStartMb, idleAfterWarmupMb, idleAfterLoadMb: rssMb(chassis.pid) };
  } finally {
    await chassis.stop();
    await fake.stop();
  }
}

async function memory(): Promise<Omit<BenchResults['memory'], keyof IdleMemory>> {
  const fake = await startFakeProcess('text50', streamDelayMs);
  const chassis = await startChassisProcess({ upstreamUrl: fake.url });
  try {
    await sleep(500);
    const pacedChassisIdleMb = rssMb(chassis.pid);
    const exchange = chassisExchange('text50', 'sse');
    const streams64 = await holdOpenStreams(chassis.origin, exchange, 64, chassis.pid);
    log(`  64 streams: peak RSS ${streams64.peakRssMb.toFixed(0)} MB, ${streams64.maxOpen} open at once, ${streams64.failures} failed`);
    const streams1000 = await holdOpenStreams(chassis.origin, exchange, 1000, chassis.pid);
    log(`  1000 streams: peak RSS ${streams1000.peakRssMb.toFixed(0)} MB, ${streams1000.maxOpen} open at once, ${streams1000.failures} failed`);
    for (const sample of [...streams64.failureSamples, ...streams1000.failureSamples]) log(`    failure: ${sample}`);
    await sleep(1000);
    return { pacedChassisIdleMb, streams64, streams1000, afterStreamsMb: rssMb(chassis.pid) };
  } finally {
    await chassis.stop();
    await fake.stop();
  }
}

async function main(): Promise<number> {
  if (!existsSync(join(repoRoot, 'dist', 'main.js'))) {
    process.stderr.write('bench: dist/main.js is missing: run `npm run bench` (it builds first) or `npm run build`\n');
    return 2;
  }
  const date = new Date().toISOString().slice(0, 10);
  const loadAtStart = loadavg()[0]!;
  const scenarios: ScenarioResult[] = [];
  log(`bench: ${warmupMs / 1000} s warm-up + ${durationMs / 1000} s per scenario`);
  log('throughput, 1-step (text50):');
  const text50 = await throughput('text50', scenarios);
  log('throughput, 2-step tool run (tool2):');
  await throughput('tool2', scenarios);
  log(`open streams, upstream paced at ${streamDelayMs} ms per token:`);
  const held = await memory();

  const addedTtft = (mode: FakeMode) => {
    const chassis = findScenario({ scenarios }, 'chassis', mode, 'sse', 1)?.ttftMs?.p50;
    const alone = findScenario({ scenarios }, 'upstream', mode, 'sse', 1)?.ttftMs?.p50;
    return chassis === undefined || alone === undefined ? null : chassis - alone;
  };
  const partial = {
    date,
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
      node: process.version,
      clockTicksPerSecond,
      loadAverage: { start: loadAtStart, end: loadavg()[0]! },
    },
    settings: { warmupMs, durationMs, streamDelayMs },
    scenarios,
    memory: { ...text50, ...held },
    addedTtftMs: { text50: addedTtft('text50'), tool2: addedTtft('tool2') },
  };
  const results: BenchResults = { ...partial, checks: targetChecks(partial), scripts: [] };

  if (!args['no-scripts']) {
    // What a stream costs in this run, for scripts that state a cost as a share of it (run-log.bench.ts).
    const streamCpuMs = findScenario(partial, 'chassis', 'text50', 'sse', 64)?.serverCpuMsPerRequest;
    const scriptEnv: Record<string, string> = streamCpuMs === undefined ? {} : { STREAM_CPU_MS: streamCpuMs.toFixed(3) };
    for (const file of benchScripts()) {
      log(`bench/${file}:`);
      const outcome = await runBenchScript(file, date, scriptEnv);
      results.scripts.push(outcome);
      log(`  exited ${outcome.exitCode} after ${outcome.seconds.toFixed(1)} s`);
    }
  }

  const file = writeResultsJson(results);
  writeReadmeSection(resultsMarkdown(results));
  log('');
  for (const check of results.checks) {
    log(`${check.ok ? 'met    ' : 'NOT MET'}  ${check.what}: ${check.measured === null ? '–' : check.measured.toFixed(3)} ${check.unit} (target ${check.target})`);
  }
  log(`\nwrote ${file} and the results section of bench/README.md`);

  const failures =
    scenarios.reduce((sum, s) => sum + s.failures + s.warmupFailures, 0) + held.streams64.failures + held.streams1000.failures;
  const scriptFailures = results.scripts.filter((s) => s.exitCode !== 0).length;
  if (failures > 0) process.stderr.write(`bench: ${failures} requests failed (see failureSamples in the results)\n`);
  if (scriptFailures > 0) process.stderr.write(`bench: ${scriptFailures} bench scripts failed\n`);
  return failures > 0 || scriptFailures > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
