// What METRICS_ENABLED costs: two chassis processes in front of one fake upstream, identical but
// for METRICS_ENABLED, take turns under the same JSON load (tool2: a two-step tool run, so every
// hook fires: HTTP, run, two model calls, one tool call). Reported: server CPU per request, on vs
// off, as a ratio per pair of processes and the median over pairs.
//
// Made steady enough for a 3 % budget on a shared 2-core VM, where two identical processes taking
// turns measured −7.5 % … +9 % apart: both chassis processes are pinned to one core and the load
// generator and upstream to the other (`--no-pin` to let them roam), V8's hash and random seeds are
// fixed, several fresh pairs are started (which one starts first alternates) and each pair takes
// many short turns. `--a-a` (metrics off in both) shows what spread is left; it was ±1.5 % here.
// /metrics is not scraped during the turns (`--scrape-ms` to do so): Prometheus scrapes every
// 15-60 s whatever the request rate; bench/metrics-callgrind.ts counts a scrape on its own.
//
// Run by `npm run bench`, or alone: `npm run build && npx tsx bench/metrics-cost.bench.ts
// [--pairs N --rounds N --round-seconds S --a-a]`.

import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { request } from 'undici';
import { chassisExchange } from './exchanges.js';
import { median, runLoad } from './load.js';
import { startChassisProcess, startFakeProcess, type Child } from './processes.js';

const { values: args } = parseArgs({
  options: {
    pairs: { type: 'string', default: '4' },
    rounds: { type: 'string', default: '10' },
    'round-seconds': { type: 'string', default: '2' },
    'scrape-ms': { type: 'string', default: '0' },
    'no-pin': { type: 'boolean', default: false },
    // Both processes with metrics off: how far apart two identical servers measure on this machine now.
    'a-a': { type: 'boolean', default: false },
  },
});
const PAIRS = Number(args.pairs);
const ROUNDS = Number(args.rounds);
const ROUND_MS = Number(args['round-seconds']) * 1000;
const SCRAPE_MS = Number(args['scrape-ms']);
const PIN = !args['no-pin'] && availableParallelism() >= 2;
const CONCURRENCY = 8;

/** Pins a process and all its threads to one CPU (`taskset`, util-linux). */
const pin = (pid: number, cpu: number) => execFileSync('taskset', ['-apc', String(cpu), String(pid)], { stdio: 'ignore' });

const loadBefore = loadavg()[0]!;
const fake = await startFakeProcess('tool2');
if (PIN) {
  pin(process.pid, 1);
  pin(fake.pid, 1);
}
const exchange = chassisExchange('tool2', 'json');
const ratios: number[] = [];
const totals = { off: { cpuMs: 0, requests: 0 }, on: { cpuMs: 0, requests: 0 } };
let failures = 0;

async function start(metrics: boolean): Promise<Child> {
  const child = await startChassisProcess({ upstreamUrl: fake.url, nodeArgs: ['--hash-seed=1', '--random-seed=1'], env: { METRICS_ENABLED: String(metrics) } });
  if (PIN) pin(child.pid, 0);
  return child;
}

try {
  for (let pair = 0; pair < PAIRS; pair++) {
    const onFirst = pair % 2 === 1;
    const first = await start(onFirst && !args['a-a']);
    const second = await start(!onFirst && !args['a-a']);
    const servers = { off: onFirst ? second : first, on: onFirst ? first : second };
    const pairTotals = { off: { cpuMs: 0, requests: 0 }, on: { cpuMs: 0, requests: 0 } };
    try {
      for (let round = 0; round < ROUNDS; round++) {
        // Alternate which goes first, so a neighbour's burst does not always land on the same one.
        for (const which of round % 2 === 0 ? (['off', 'on'] as const) : (['on', 'off'] as const)) {
          const child = servers[which];
          const scraper = which === 'on' && SCRAPE_MS > 0 ? setInterval(() => void request(`${child.origin}/metrics`).then((r) => r.body.text()), SCRAPE_MS) : undefined;
          const result = await runLoad({ origin: child.origin, exchange, concurrency: CONCURRENCY, warmupMs: round === 0 ? 1000 : 200, durationMs: ROUND_MS, serverPid: child.pid });
          clearInterval(scraper);
          pairTotals[which].cpuMs += result.serverCpuMsPerRequest * result.requests;
          pairTotals[which].requests += result.requests;
          failures += result.failures;
        }
      }
    } finally {
      await Promise.all([first.stop(), second.stop()]);
    }
    ratios.push(pairTotals.on.cpuMs / pairTotals.on.requests / (pairTotals.off.cpuMs / pairTotals.off.requests));
    for (const which of ['off', 'on'] as const) {
      totals[which].cpuMs += pairTotals[which].cpuMs;
      totals[which].requests += pairTotals[which].requests;
    }
  }
} finally {
  await fake.stop();
}
const perRequest = (which: 'on' | 'off') => totals[which].cpuMs / totals[which].requests;
const ratio = median(ratios);
const percent = (value: number) => `${((value - 1) * 100).toFixed(1)} %`;
const markdown = [
  `METRICS_ENABLED cost${args['a-a'] ? ' — A-A check, metrics off in both' : ''} (tool2 JSON, c=${CONCURRENCY}, ${PAIRS} process pairs × ${ROUNDS} alternating rounds of ${ROUND_MS / 1000} s, ${PIN ? 'servers pinned to CPU 0, load and upstream to CPU 1' : 'not pinned'}, fixed V8 seeds, /metrics scraped ${SCRAPE_MS > 0 ? `every ${SCRAPE_MS / 1000} s` : 'never'} during the turns). 1-minute load average ${loadBefore.toFixed(2)} before, ${loadavg()[0]!.toFixed(2)} after.`,
  '',
  '| metrics | requests | server CPU ms/request |',
  '|---|---|---|',
  `| off | ${totals.off.requests} | ${perRequest('off').toFixed(3)} |`,
  `| ${args['a-a'] ? 'off (second process)' : 'on'} | ${totals.on.requests} | ${perRequest('on').toFixed(3)} |`,
  '',
  `on / off, median of ${PAIRS} pairs: ${ratio.toFixed(3)} (${percent(ratio)}; target < 3 %); pairs: ${ratios.map(percent).join(', ')}; failures: ${failures}`,
].join('\n');
if (process.env.BENCH_RESULT_FILE) writeFileSync(process.env.BENCH_RESULT_FILE, JSON.stringify({ totals, ratios, ratio, markdown }));
process.stdout.write(`${markdown}\n`);
process.exitCode = failures > 0 ? 1 : 0;
