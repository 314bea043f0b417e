// What METRICS_ENABLED costs: two chassis processes in front of one fake upstream, identical but
// for METRICS_ENABLED, take turns under the same JSON load (tool2: a two-step tool run, so every
// hook fires: HTTP, run, two model calls, one tool call), with /metrics scraped every second during
// the metrics-on turns (Prometheus scrapes every 15-60 s, so this overstates the scrape's share).
// Reported: server CPU per request, on vs off, as a ratio. Run by `npm run bench`, or alone:
// `npm run build && npx tsx bench/metrics-cost.bench.ts [--rounds N --round-seconds S]`.

import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { request } from 'undici';
import { chassisExchange } from './exchanges.js';
import { runLoad } from './load.js';
import { startChassisProcess, startFakeProcess } from './processes.js';

const { values: args } = parseArgs({
  options: { rounds: { type: 'string', default: '4' }, 'round-seconds': { type: 'string', default: '3' }, 'scrape-ms': { type: 'string', default: '1000' },
    // Both processes with metrics off: how far apart two identical servers measure on this machine now.
    'a-a': { type: 'boolean', default: false },
  },
});
const SCRAPE_MS = Number(args['scrape-ms']);
const ROUNDS = Number(args.rounds);
const ROUND_MS = Number(args['round-seconds']) * 1000;
const CONCURRENCY = 8;

const fake = await startFakeProcess('tool2');
const off = await startChassisProcess({ upstreamUrl: fake.url, env: { METRICS_ENABLED: 'false' } });
const on = await startChassisProcess({ upstreamUrl: fake.url, env: { METRICS_ENABLED: args['a-a'] ? 'false' : 'true' } });
const totals = { off: { cpuMs: 0, requests: 0, failures: 0 }, on: { cpuMs: 0, requests: 0, failures: 0 } };
try {
  const exchange = chassisExchange('tool2', 'json');
  for (let round = 0; round < ROUNDS; round++) {
    // Alternate which goes first, so a neighbour's burst does not always land on the same one.
    const order = round % 2 === 0 ? (['off', 'on'] as const) : (['on', 'off'] as const);
    for (const which of order) {
      const child = which === 'on' ? on : off;
      const scraper = which === 'on' && SCRAPE_MS > 0 ? setInterval(() => void request(`${on.origin}/metrics`).then((r) => r.body.text()), SCRAPE_MS) : undefined;
      const result = await runLoad({ origin: child.origin, exchange, concurrency: CONCURRENCY, warmupMs: round === 0 ? 1000 : 200, durationMs: ROUND_MS, serverPid: child.pid });
      clearInterval(scraper);
      totals[which].cpuMs += result.serverCpuMsPerRequest * result.requests;
      totals[which].requests += result.requests;
      totals[which].failures += result.failures;
    }
  }
} finally {
  await Promise.all([on.stop(), off.stop(), fake.stop()]);
}
const perRequest = (which: 'on' | 'off') => totals[which].cpuMs / totals[which].requests;
const ratio = perRequest('on') / perRequest('off');
const markdown = [
  `METRICS_ENABLED cost (tool2 JSON, c=${CONCURRENCY}, ${ROUNDS} alternating rounds of ${ROUND_MS / 1000} s, /metrics scraped ${SCRAPE_MS > 0 ? `every ${SCRAPE_MS / 1000} s` : 'never'} while on):`,
  '',
  '| metrics | requests | server CPU ms/request |',
  '|---|---|---|',
  `| off | ${totals.off.requests} | ${perRequest('off').toFixed(3)} |`,
  `| on | ${totals.on.requests} | ${perRequest('on').toFixed(3)} |`,
  '',
  `on / off = ${ratio.toFixed(3)} (${((ratio - 1) * 100).toFixed(1)} %; target < 3 %); failures: ${totals.off.failures + totals.on.failures}`,
].join('\n');
if (process.env.BENCH_RESULT_FILE) writeFileSync(process.env.BENCH_RESULT_FILE, JSON.stringify({ totals, ratio, markdown }));
process.stdout.write(`${markdown}\n`);
process.exitCode = totals.off.failures + totals.on.failures > 0 ? 1 : 0;
