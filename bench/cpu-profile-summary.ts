// Where a V8 .cpuprofile (node --cpu-prof) spent its time: self time by function and by area
// (chassis source file, npm package, Node internals, GC), and inclusive time by area, optionally
// only inside a time window and divided by the requests served in it.
// CLI: tsx bench/cpu-profile-summary.ts <file.cpuprofile> [--from µs] [--to µs] [--requests N] [--top N]

import { readFileSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface Row {
  name: string;
  ms: number;
  /** Share of the busy (non-idle) time. */
  percent: number;
  msPerRequest: number | null;
}

export interface ProfileSummary {
  windowMs: number;
  busyMs: number;
  requests: number | null;
  busyMsPerRequest: number | null;
  selfByFunction: Row[];
  selfByArea: Row[];
  inclusiveByArea: Row[];
  /** Inclusive time of the chassis's own functions (src/), callers and callees both counted. */
  inclusiveBySourceFunction: Row[];
}

const IDLE = '(idle)';

/** dist/http/sse.js → src/http/sse.ts; /x/node_modules/@scope/pkg/… → @scope/pkg; node:internal/streams/… → node:streams. */
export function areaOf(url: string, functionName: string): string {
  if (url === '') return functionName.startsWith('(') ? functionName : '(V8 builtins and natives)';
  const modules = url.lastIndexOf('/node_modules/');
  if (modules !== -1) {
    const parts = url.slice(modules + '/node_modules/'.length).split('/');
    return parts[0]?.startsWith('@') ? `${parts[0]}/${parts[1]}` : (parts[0] ?? url);
  }
  if (url.startsWith('node:')) {
    const parts = url.slice('node:'.length).split('/');
    return `node:${parts[0] === 'internal' ? (parts[1] ?? 'internal') : parts[0]}`.replace(/\.js$/, '');
  }
  const dist = url.lastIndexOf('/dist/');
  if (dist !== -1) return sourceFile(url.slice(dist));
  return url;
}

function sourceFile(distPath: string): string {
  return `src/${distPath.slice('/dist/'.length).replace(/\.js$/, '.ts')}`;
}

function functionLabel(node: ProfileNode): string {
  const { functionName, url, lineNumber } = node.callFrame;
  const name = functionName === '' ? '(anonymous)' : functionName;
  if (url === '') return name;
  const area = areaOf(url, functionName);
  const file = url.slice(url.lastIndexOf('/') + 1);
  const where = area.startsWith('src/') ? area : `${area} ${file}`;
  return `${name} (${where}:${lineNumber + 1})`;
}

export function summarise(profile: CpuProfile, options: { fromUs?: number; toUs?: number; requests?: number; top?: number } = {}): ProfileSummary {
  const from = options.fromUs ?? -Infinity;
  const to = options.toUs ?? Infinity;
  const top = options.top ?? 25;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);

  const self = new Map<number, number>();
  let time = profile.startTime;
  let windowStart = Infinity;
  let windowEnd = -Infinity;
  // A sample stands for the time until the next one.
  for (let i = 0; i < profile.samples.length; i++) {
    time += profile.timeDeltas[i] ?? 0;
    const duration = profile.timeDeltas[i + 1] ?? 0;
    if (time < from || time > to) continue;
    windowStart = Math.min(windowStart, time);
    windowEnd = Math.max(windowEnd, time + duration);
    const id = profile.samples[i]!;
    self.set(id, (self.get(id) ?? 0) + duration);
  }

  const selfByFunction = new Map<string, number>();
  const selfByArea = new Map<string, number>();
  const inclusiveByArea = new Map<string, number>();
  const inclusiveBySource = new Map<string, number>();
  let idleUs = 0;
  let totalUs = 0;
  for (const [id, us] of self) {
    const node = byId.get(id)!;
    totalUs += us;
    if (node.callFrame.functionName === IDLE) {
      idleUs += us;
      continue;
    }
    const add = (map: Map<string, number>, key: string) => map.set(key, (map.get(key) ?? 0) + us);
    add(selfByFunction, functionLabel(node));
    add(selfByArea, areaOf(node.callFrame.url, node.callFrame.functionName));
    // Inclusive: every area and source function on the stack, once per sample however deep.
    const areas = new Set<string>();
    const sources = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const frame = byId.get(at)!;
      if (frame.callFrame.functionName === '(root)') break;
      const area = areaOf(frame.callFrame.url, frame.callFrame.functionName);
      areas.add(area);
      if (area.startsWith('src/')) sources.add(functionLabel(frame));
    }
    for (const area of areas) add(inclusiveByArea, area);
    for (const source of sources) add(inclusiveBySource, source);
  }

  const busyUs = totalUs - idleUs;
  const requests = options.requests ?? null;
  const rows = (map: Map<string, number>, limit: number): Row[] =>
    [...map.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, limit)
      .map(([name, us]) => ({
        name,
        ms: us / 1000,
        percent: busyUs === 0 ? 0 : (100 * us) / busyUs,
        msPerRequest: requests ? us / 1000 / requests : null,
      }));
  return {
    windowMs: windowEnd > windowStart ? (windowEnd - windowStart) / 1000 : 0,
    busyMs: busyUs / 1000,
    requests,
    busyMsPerRequest: requests ? busyUs / 1000 / requests : null,
    selfByFunction: rows(selfByFunction, top),
    selfByArea: rows(selfByArea, 20),
    inclusiveByArea: rows(inclusiveByArea, 20),
    inclusiveBySourceFunction: rows(inclusiveBySource, 20),
  };
}

export function summaryMarkdown(title: string, summary: ProfileSummary): string {
  const table = (heading: string, rows: Row[]) => [
    `| ${heading} | ms | % busy | ms/request |`,
    '|---|---|---|---|',
    ...rows.map((r) => `| ${r.name.replaceAll('|', '\\|')} | ${r.ms.toFixed(0)} | ${r.percent.toFixed(1)} | ${r.msPerRequest === null ? '–' : r.msPerRequest.toFixed(4)} |`),
  ];
  return [
    `### ${title}`,
    '',
    `${summary.busyMs.toFixed(0)} ms busy in a ${summary.windowMs.toFixed(0)} ms window` +
      (summary.requests ? `, ${summary.requests} requests: ${summary.busyMsPerRequest!.toFixed(3)} ms per request (profiler overhead included)` : '') +
      '.',
    '',
    ...table('self time by area', summary.selfByArea),
    '',
    ...table('inclusive time by area (on the stack)', summary.inclusiveByArea),
    '',
    ...table('self time by function', summary.selfByFunction),
    '',
    ...table('inclusive time by chassis function', summary.inclusiveBySourceFunction),
    '',
  ].join('\n');
}

function isMain(): boolean {
  const entry = process.argv[1];
  try {
    return entry !== undefined && realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMain()) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { from: { type: 'string' }, to: { type: 'string' }, requests: { type: 'string' }, top: { type: 'string' } },
  });
  const file = positionals[0];
  if (file === undefined) {
    process.stderr.write('usage: tsx bench/cpu-profile-summary.ts <file.cpuprofile> [--from µs] [--to µs] [--requests N] [--top N]\n');
    process.exit(2);
  }
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const number = (value: string | undefined) => (value === undefined ? undefined : Number(value));
  const summary = summarise(profile, { fromUs: number(values.from), toUs: number(values.to), requests: number(values.requests), top: number(values.top) });
  process.stdout.write(summaryMarkdown(file, summary));
}
