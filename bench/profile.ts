// `npx tsx bench/profile.ts` (after `npm run build`): the chassis under `node --cpu-prof` for the
// 1-step JSON and SSE scenarios, one process each; the profile is summarised over the measured
// window only (start-up and shutdown left out), per request served.
// Writes bench/results/chassis-<scenario>-<date>.cpuprofile (git-ignored) and <date>-profile.md.
// Options: --seconds N (default 8), --concurrency N (default 64), --env NAME=VALUE (repeatable,
// e.g. --env LOG_LEVEL=info to see what per-request logging costs), --label TEXT (file name suffix).

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { summarise, summaryMarkdown, type CpuProfile } from './cpu-profile-summary.js';
import type { Transport } from './exchanges.js';
import { modeExchange, profileMode } from './session-exchanges.js';
import { runLoad } from './load.js';
import { envFromPairs, repoRoot, startChassisProcess, startFakeProcess } from './processes.js';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '8' },
    concurrency: { type: 'string', default: '64' },
    env: { type: 'string', multiple: true, default: [] },
    label: { type: 'string', default: '' },
    // stateless: client-side `messages`; new-session / continue: server-side mode (turns on ENABLE_PERSISTENCE).
    mode: { type: 'string', default: 'stateless' },
  },
});
const env = envFromPairs(args.env);
const date = new Date().toISOString().slice(0, 10);
const resultsDir = join(repoRoot, 'bench', 'results');
const mode = profileMode(args.mode);
if (mode !== 'stateless') env.ENABLE_PERSISTENCE ??= 'true';
const label = [mode === 'stateless' ? '' : mode, args.label].filter((part) => part !== '').join('-');
const suffix = label === '' ? '' : `-${label}`;

async function profileScenario(transport: Transport): Promise<string> {
  const name = `chassis-text50-${transport}${suffix}-${date}.cpuprofile`;
  const fake = await startFakeProcess('text50');
  const chassis = await startChassisProcess({
    upstreamUrl: fake.url,
    nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${resultsDir}`, `--cpu-prof-name=${name}`],
    env,
  });
  try {
    const concurrency = Number(args.concurrency);
    const result = await runLoad({
      origin: chassis.origin,
      exchange: await modeExchange(mode, chassis.origin, transport, concurrency),
      concurrency,
      warmupMs: 1000,
      durationMs: Number(args.seconds) * 1000,
      serverPid: chassis.pid,
      upstreamPid: fake.pid,
    });
    // The profile is written when the process exits, so stop it before reading.
    const code = await chassis.stop(30_000);
    if (code !== 0) throw new Error(`chassis exited with ${code}: no profile`);
    if (result.failures + result.warmupFailures > 0) throw new Error(`${result.failures} failed requests: ${result.failureSamples.join('; ')}`);
    const profile = JSON.parse(readFileSync(join(resultsDir, name), 'utf8')) as CpuProfile;
    const [fromUs, toUs] = result.windowMonotonicUs;
    const summary = summarise(profile, { fromUs, toUs, requests: result.requests });
    const title =
      `1-step ${transport.toUpperCase()}, ${mode}, c=${result.concurrency}${Object.keys(env).length > 0 ? ` (${args.env.join(' ')})` : ''}: ` +
      `${result.requestsPerSecond.toFixed(0)} req/s, ${result.serverCpuMsPerRequest.toFixed(3)} ms CPU/request by /proc`;
    return summaryMarkdown(title, summary);
  } finally {
    await chassis.stop();
    await fake.stop();
  }
}

async function main(): Promise<void> {
  mkdirSync(resultsDir, { recursive: true });
  const sections: string[] = [];
  for (const transport of ['json', 'sse'] as const) {
    process.stdout.write(`profiling 1-step ${transport}…\n`);
    sections.push(await profileScenario(transport));
  }
  const markdown = `# Chassis CPU profile, ${date}\n\n${sections.join('\n')}`;
  const file = join(resultsDir, `${date}-profile${suffix}.md`);
  writeFileSync(file, markdown);
  process.stdout.write(`${markdown}\nwrote ${file}\n`);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`profile: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
