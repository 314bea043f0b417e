// What METRICS_ENABLED costs, counted in instructions, which a shared machine does not disturb: the
// whole chassis (dist/main.js, so `npm run build` first) runs under valgrind's callgrind, once with
// metrics off and once on, in front of the fake upstream (its own process, not counted). After a
// warm-up the counters are zeroed, N sequential tool-run JSON requests (tool2: every hook fires —
// HTTP, run, two model calls, one tool call) go over one keep-alive connection, and the counts are
// dumped: instructions per request, HTTP parsing, the upstream call and the answer included. Then,
// with metrics on, a few scrapes of /metrics are counted apart: Prometheus scrapes every 15-60 s,
// whatever the request rate, so a scrape's cost is reported per scrape, not folded into requests.
//
// Why: two processes on this 2-core VM measured −7.5 % … +9 % apart in CPU time with metrics off in
// both (bench/metrics-cost.bench.ts --a-a), too coarse for a 3 % budget; these counts repeat within
// ~0.1 % (`--a-a` here; bench/callgrind.ts says how). Counts still move when the process runs slower (a
// timer per wall-clock interval fires more often per request): run it on an otherwise idle machine,
// one at a time.
// Not part of `npm run bench` (about 6 minutes): `npx tsx bench/metrics-callgrind.ts [--requests N]`.

import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { Client } from 'undici';
import { startCountedChassis } from './callgrind.js';
import { chassisExchange } from './exchanges.js';
import { startFakeProcess } from './processes.js';

const { values: args } = parseArgs({
  options: {
    requests: { type: 'string', default: '500' },
    warmup: { type: 'string', default: '500' },
    scrapes: { type: 'string', default: '5' },
    // Metrics off in both runs: how far two identical runs' counts are apart.
    'a-a': { type: 'boolean', default: false },
  },
});
const REQUESTS = Number(args.requests);
const WARMUP = Number(args.warmup);
const SCRAPES = Number(args.scrapes);

const exchange = chassisExchange('tool2', 'json');
const fake = await startFakeProcess('tool2');

interface Counted {
  perRequest: number;
  perScrape: number | null;
}

async function count(metrics: boolean): Promise<Counted> {
  const chassis = await startCountedChassis({ upstreamUrl: fake.url, env: { METRICS_ENABLED: String(metrics) } });
  const client = new Client(chassis.origin, { keepAliveTimeout: 600_000, headersTimeout: 600_000, bodyTimeout: 600_000 });
  try {
    for (let index = 0; index < WARMUP; index++) await exchange(client);
    chassis.zero();
    for (let index = 0; index < REQUESTS; index++) await exchange(client);
    const perRequest = chassis.counted() / REQUESTS;
    if (!metrics) return { perRequest, perScrape: null };
    for (let index = 0; index < SCRAPES; index++) {
      const scrape = await client.request({ method: 'GET', path: '/metrics' });
      const text = await scrape.body.text();
      if (scrape.statusCode !== 200 || !text.includes('chassis_runs_total')) throw new Error(`/metrics answered ${scrape.statusCode}`);
    }
    return { perRequest, perScrape: chassis.counted() / SCRAPES };
  } finally {
    await client.close();
    await chassis.stop();
  }
}

try {
  const loadBefore = loadavg()[0]!;
  const off = await count(false);
  const on = await count(!args['a-a']);
  const ratio = on.perRequest / off.perRequest;
  const millions = (value: number) => `${(value / 1e6).toFixed(3)} M`;
  process.stdout.write(
    [
      `METRICS_ENABLED${args['a-a'] ? ' off in both runs (A-A check)' : ''}, in instructions (callgrind, whole server over HTTP, tool2 JSON, ${WARMUP} warm-up + ${REQUESTS} counted sequential requests). 1-minute load average ${loadBefore.toFixed(2)} before.`,
      '',
      '| metrics | instructions per request |',
      '|---|---|',
      `| off | ${millions(off.perRequest)} |`,
      `| ${args['a-a'] ? 'off' : 'on'} | ${millions(on.perRequest)} |`,
      '',
      `on / off = ${ratio.toFixed(4)} (${((ratio - 1) * 100).toFixed(2)} %; target < 3 %)`,
      on.perScrape === null ? '' : `One scrape of /metrics: ${millions(on.perScrape)} instructions, ${(on.perScrape / off.perRequest).toFixed(1)} requests' worth (${SCRAPES} scrapes counted).`,
      '',
    ].join('\n'),
  );
} finally {
  await fake.stop();
}
