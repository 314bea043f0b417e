// The benchmark's outputs: bench/results/<date>.json (everything measured) and the results section
// of bench/README.md (a short table with the targets beside the numbers), rewritten on each run.

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FakeMode, Transport } from './exchanges.js';
import type { LoadResult } from './load.js';
import type { OpenStreamsResult } from './open-streams.js';
import { repoRoot } from './processes.js';
import type { ScriptOutcome } from './scripts.js';

export interface ScenarioResult extends LoadResult {
  server: 'chassis' | 'upstream';
  mode: FakeMode;
  transport: Transport;
}

export interface Check {
  what: string;
  target: string;
  measured: number | null;
  unit: string;
  limit: number;
  ok: boolean;
}

export interface BenchResults {
  date: string;
  machine: {
    cpus: number;
    cpuModel: string;
    node: string;
    clockTicksPerSecond: number;
    /** 1-minute load average before and after: other work on a shared machine skews CPU per request. */
    loadAverage: { start: number; end: number };
  };
  settings: { warmupMs: number; durationMs: number; streamDelayMs: number };
  scenarios: ScenarioResult[];
  memory: {
    idleAfterStartMb: number;
    /** After 1 s of 1-step JSON and 1 s of SSE, one request at a time, then 1 s without traffic. */
    idleAfterWarmupMb: number;
    /** 1 s after all 1-step throughput scenarios (c=64 included). */
    idleAfterLoadMb: number;
    pacedChassisIdleMb: number;
    streams64: OpenStreamsResult;
    streams1000: OpenStreamsResult;
    afterStreamsMb: number;
  };
  addedTtftMs: Record<FakeMode, number | null>;
  checks: Check[];
  scripts: ScriptOutcome[];
}

const README = join(repoRoot, 'bench', 'README.md');
const START = '<!-- results:start (written by npm run bench) -->';
const END = '<!-- results:end -->';

export function findScenario(results: Pick<BenchResults, 'scenarios'>, server: ScenarioResult['server'], mode: FakeMode, transport: Transport, concurrency: number) {
  return results.scenarios.find((s) => s.server === server && s.mode === mode && s.transport === transport && s.concurrency === concurrency);
}

function check(what: string, measured: number | null | undefined, limit: number, unit: string): Check {
  const value = measured === undefined || measured === null || Number.isNaN(measured) ? null : measured;
  return { what, target: `≤ ${limit} ${unit}`, measured: value, unit, limit, ok: value !== null && value <= limit };
}

/** The targets of issue #2, each against the number that answers it. */
export function targetChecks(results: Omit<BenchResults, 'checks' | 'scripts'>): Check[] {
  const cpu = (mode: FakeMode, transport: Transport, concurrency: number) =>
    findScenario(results, 'chassis', mode, transport, concurrency)?.serverCpuMsPerRequest;
  const { memory } = results;
  return [
    check('server CPU per 1-step JSON request, c=1', cpu('text50', 'json', 1), 0.5, 'ms'),
    check('server CPU per 1-step JSON request, c=64', cpu('text50', 'json', 64), 0.5, 'ms'),
    check('server CPU per 50-token stream, c=1', cpu('text50', 'sse', 1), 1.5, 'ms'),
    check('server CPU per 50-token stream, c=64', cpu('text50', 'sse', 64), 1.5, 'ms'),
    check('added time to first token, c=1 (p50)', results.addedTtftMs.text50, 1, 'ms'),
    check('RSS idle (after start + warm-up)', memory.idleAfterWarmupMb, 80, 'MB'),
    check('RSS with 64 streams open (peak while all open)', memory.streams64.peakRssAllOpenMb, 150, 'MB'),
    check('RSS with 1,000 streams open (peak while all open)', memory.streams1000.peakRssAllOpenMb, 300, 'MB'),
  ];
}

export function writeResultsJson(results: BenchResults): string {
  const dir = join(repoRoot, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${results.date}.json`);
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
  return file;
}

const fixed = (value: number | null | undefined, digits: number) =>
  value === null || value === undefined || Number.isNaN(value) ? '–' : value.toFixed(digits);

const SCENARIO_NAMES: Record<FakeMode, string> = { text50: '1-step', tool2: '2-step tool' };

export function resultsMarkdown(results: BenchResults): string {
  const lines: string[] = [];
  const { machine, settings } = results;
  lines.push(
    `Run of ${results.date} on ${machine.cpus} × ${machine.cpuModel}, Node ${machine.node}; ` +
      `${settings.warmupMs / 1000} s warm-up + ${settings.durationMs / 1000} s measured per scenario; ` +
      `chassis, fake upstream and load generator share the machine (1-minute load average ${machine.loadAverage.start.toFixed(1)} before, ` +
      `${machine.loadAverage.end.toFixed(1)} after). Full data: \`bench/results/${results.date}.json\`.`,
    '',
    '| target (issue #2) | measured | |',
    '|---|---|---|',
  );
  for (const c of results.checks) {
    lines.push(`| ${c.what} ${c.target} | ${c.measured === null ? '–' : `${fixed(c.measured, c.unit === 'MB' ? 0 : 3)} ${c.unit}`} | ${c.ok ? 'met' : '**not met**'} |`);
  }
  lines.push(
    '',
    'Per scenario (chassis = in front of the fake upstream; fake alone = the same upstream calls without the chassis). ' +
      'Latency and TTFT in ms; CPU in ms per request of the process under test (and of the fake behind the chassis).',
    '',
    '| scenario | c | server | req/s | p50 | p99 | TTFT p50 | TTFT p99 | CPU ms/req | fake CPU ms/req | failures |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
  );
  for (const s of results.scenarios) {
    lines.push(
      `| ${SCENARIO_NAMES[s.mode]} ${s.transport.toUpperCase()} | ${s.concurrency} | ${s.server === 'chassis' ? 'chassis' : 'fake alone'} | ` +
        `${fixed(s.requestsPerSecond, 0)} | ${fixed(s.latencyMs.p50, 2)} | ${fixed(s.latencyMs.p99, 2)} | ` +
        `${fixed(s.ttftMs?.p50, 2)} | ${fixed(s.ttftMs?.p99, 2)} | ${fixed(s.serverCpuMsPerRequest, 3)} | ` +
        `${fixed(s.upstreamCpuMsPerRequest, 3)} | ${s.failures + s.warmupFailures} |`,
    );
  }
  const { memory } = results;
  const streams = (r: OpenStreamsResult) =>
    `${fixed(r.peakRssAllOpenMb, 0)} MB while all were open (${fixed(r.peakRssMb, 0)} MB peak from the first request to the last end; ${r.maxOpen} open at once, ${r.failures} failed)`;
  lines.push(
    '',
    `Added time to first token at c=1 (chassis p50 − fake alone p50): 1-step ${fixed(results.addedTtftMs.text50, 3)} ms, ` +
      `2-step tool ${fixed(results.addedTtftMs.tool2, 3)} ms.`,
    '',
    `Chassis RSS: ${fixed(memory.idleAfterStartMb, 0)} MB after start, ${fixed(memory.idleAfterWarmupMb, 0)} MB idle after warm-up, ` +
      `${fixed(memory.idleAfterLoadMb, 0)} MB idle after the 1-step scenarios above (c=64 grows the heap, which V8 keeps); ` +
      `against an upstream paced at ${settings.streamDelayMs} ms per token: ${fixed(memory.pacedChassisIdleMb, 0)} MB idle, ` +
      `64 streams ${streams(memory.streams64)}, 1,000 streams ${streams(memory.streams1000)}, ${fixed(memory.afterStreamsMb, 0)} MB after they ended.`,
  );
  for (const script of results.scripts) {
    lines.push('', `### ${script.file}`, '');
    if (script.exitCode !== 0) lines.push(`Exited with ${script.exitCode}${script.timedOut ? ' (timed out)' : ''}.`, '');
    if (typeof script.result?.markdown === 'string') lines.push(script.result.markdown.trim());
    else lines.push('(no markdown result)');
  }
  return lines.join('\n');
}

/** Replaces the results section of bench/README.md, keeping the rest of the page as written. */
export function writeReadmeSection(markdown: string): void {
  const page = readFileSync(README, 'utf8');
  const start = page.indexOf(START);
  const end = page.indexOf(END);
  if (start === -1 || end === -1 || end < start) throw new Error(`bench/README.md has no ${START} … ${END} section`);
  writeFileSync(README, `${page.slice(0, start + START.length)}\n${markdown}\n${page.slice(end)}`);
}
