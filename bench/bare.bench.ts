// The stateless path against the bare yardstick (issue #13: JSON and SSE each ≥ 70 % of bare's
// throughput): one fake upstream (text50), one chassis (client-side `messages`, as in run.ts) and
// the bare endpoint of bench/bare-server.ts, taking turns at c=64 (bare, chassis, bare, chassis …),
// 3 repetitions, steady-state throughput and CPU per request; each ratio is taken within one
// repetition and the median is reported. Both answers are checked by the same exchange.
//
//   npm run build && npx tsx bench/bare.bench.ts [--seconds 3] [--reps 3]

import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { chassisExchange, type Transport } from './exchanges.js';
import { median, steadyLoad, type Measured } from './load.js';
import { startBareProcess, startChassisProcess, startFakeProcess } from './processes.js';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '3' }, reps: { type: 'string', default: '3' } } });
const durationMs = Number(values.seconds) * 1000;
const warmupMs = 500;
const reps = Number(values.reps);
const C = 64;

type Server = 'bare' | 'chassis';
const log = (line: string) => process.stdout.write(`${line}\n`);

async function main(): Promise<number> {
  const loadStart = loadavg()[0]!;
  const fake = await startFakeProcess('text50');
  const bare = await startBareProcess(fake.url);
  const chassis = await startChassisProcess({ upstreamUrl: fake.url });
  const runs: Record<`${Server} ${Transport}`, Measured[]> = { 'bare json': [], 'chassis json': [], 'bare sse': [], 'chassis sse': [] };
  try {
    for (let rep = 0; rep < reps; rep++) {
      for (const transport of ['json', 'sse'] as const) {
        for (const [name, server] of [['bare', bare], ['chassis', chassis]] as const) {
          const measured = await steadyLoad({ origin: server.origin, exchange: chassisExchange('text50', transport), concurrency: C, serverPid: server.pid, warmupMs, durationMs });
          runs[`${name} ${transport}`].push(measured);
          log(`  ${name} ${transport}  ${measured.requestsPerSecond.toFixed(0).padStart(5)} req/s  cpu ${measured.cpuMsPerRequest.toFixed(3)} ms/req  failures ${measured.failures}`);
          for (const sample of measured.failureSamples) log(`    failure: ${sample}`);
        }
      }
    }
  } finally {
    await chassis.stop();
    await bare.stop();
    await fake.stop();
  }
  const loadEnd = loadavg()[0]!;
  const share = (transport: Transport) => median(runs[`chassis ${transport}`].map((run, i) => run.requestsPerSecond / runs[`bare ${transport}`][i]!.requestsPerSecond));
  const cpuRatio = (transport: Transport) => median(runs[`chassis ${transport}`].map((run, i) => run.cpuMsPerRequest / runs[`bare ${transport}`][i]!.cpuMsPerRequest));
  const med = (key: `${Server} ${Transport}`, field: 'requestsPerSecond' | 'cpuMsPerRequest') => median(runs[key].map((run) => run[field]));
  const failures = Object.values(runs).flat().reduce((sum, run) => sum + run.failures, 0);
  const verdict = (value: number) => (value >= 0.7 ? 'met' : '**not met**');
  const markdown = [
    `Stateless chassis vs the bare endpoint (bench/bare-server.ts), fake upstream \`text50\`, c=${C}, ${reps} interleaved repetitions of ${warmupMs / 1000} s warm-up + ${durationMs / 1000} s; medians, ratios within a repetition. Node ${process.version}. 1-minute load average ${loadStart.toFixed(2)} before, ${loadEnd.toFixed(2)} after.`,
    '',
    '| | bare req/s | chassis req/s | chassis / bare throughput (goal ≥ 70 %) | bare CPU ms/req | chassis CPU ms/req | CPU ratio |',
    '|---|---|---|---|---|---|---|',
    ...(['json', 'sse'] as const).map(
      (t) =>
        `| 1-step ${t.toUpperCase()} | ${med(`bare ${t}`, 'requestsPerSecond').toFixed(0)} | ${med(`chassis ${t}`, 'requestsPerSecond').toFixed(0)} | ${(100 * share(t)).toFixed(0)} % ${verdict(share(t))} | ` +
        `${med(`bare ${t}`, 'cpuMsPerRequest').toFixed(3)} | ${med(`chassis ${t}`, 'cpuMsPerRequest').toFixed(3)} | ${cpuRatio(t).toFixed(2)}× |`,
    ),
    '',
    `Failures: ${failures}.`,
  ].join('\n');
  log(markdown);
  if (process.env.BENCH_RESULT_FILE) writeFileSync(process.env.BENCH_RESULT_FILE, JSON.stringify({ node: process.version, runs, markdown, load: { start: loadStart, end: loadEnd } }));
  return failures === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`bare bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
