// Two builds of the chassis side by side, in instructions (bench/callgrind.ts): what a change costs
// or saves per stateless request, JSON and SSE (fake upstream `text50`), where CPU time on this VM
// moves too much from one window to the next to show a few per cent. Each build runs under
// callgrind in front of the same fake upstream (not counted); after a warm-up the counters are
// zeroed, N sequential requests go over one keep-alive connection, and the counts are dumped. The
// two builds run at once, one per core.
//
//   cp -r dist dist-base   (the build to compare against; then change, npm run build)
//   npx tsx bench/build-callgrind.ts [--base dist-base] [--build dist] [--requests 300] [--warmup 300] [--env NAME=VALUE]
//
// Not part of `npm run bench` (a few minutes). Sequential requests (c=1) leave out what only
// concurrency shows (coalesced writes, GC under load): confirm a saving with the bench.

import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Client } from 'undici';
import { startCountedChassis } from './callgrind.js';
import { chassisExchange, type Transport } from './exchanges.js';
import { envFromPairs, repoRoot, startFakeProcess } from './processes.js';

const { values: args } = parseArgs({
  options: {
    base: { type: 'string', default: 'dist-base' },
    build: { type: 'string', default: 'dist' },
    requests: { type: 'string', default: '300' },
    warmup: { type: 'string', default: '300' },
    env: { type: 'string', multiple: true, default: [] },
  },
});
const REQUESTS = Number(args.requests);
const WARMUP = Number(args.warmup);
const env = envFromPairs(args.env);
const TRANSPORTS: Transport[] = ['json', 'sse'];

const fake = await startFakeProcess('text50');

/** Instructions per request of one build, per transport. */
async function count(dist: string): Promise<Record<Transport, number>> {
  const chassis = await startCountedChassis({ upstreamUrl: fake.url, main: join(repoRoot, dist, 'main.js'), env });
  const client = new Client(chassis.origin, { keepAliveTimeout: 600_000, headersTimeout: 600_000, bodyTimeout: 600_000 });
  try {
    const perRequest = {} as Record<Transport, number>;
    for (const transport of TRANSPORTS) {
      const exchange = chassisExchange('text50', transport);
      for (let index = 0; index < WARMUP; index++) await exchange(client);
      chassis.zero();
      for (let index = 0; index < REQUESTS; index++) await exchange(client);
      perRequest[transport] = chassis.counted() / REQUESTS;
    }
    return perRequest;
  } finally {
    await client.close();
    await chassis.stop();
  }
}

try {
  const [base, build] = await Promise.all([count(args.base), count(args.build)]);
  const millions = (value: number) => `${(value / 1e6).toFixed(3)} M`;
  process.stdout.write(
    [
      `Instructions per stateless request (callgrind, whole server over HTTP, fake upstream text50, ${WARMUP} warm-up + ${REQUESTS} counted sequential requests${args.env.length > 0 ? `, ${args.env.join(' ')}` : ''}), Node ${process.version}.`,
      '',
      `| | ${args.base} | ${args.build} | ${args.build} / ${args.base} |`,
      '|---|---|---|---|',
      ...TRANSPORTS.map((transport) => `| ${transport.toUpperCase()} | ${millions(base[transport])} | ${millions(build[transport])} | ${(build[transport] / base[transport]).toFixed(4)} |`),
      '',
    ].join('\n'),
  );
} finally {
  await fake.stop();
}
