// More scenarios live beside run.ts as `bench/<name>.bench.ts` (see bench/README.md): each runs as
// its own process after the built-in scenarios and may hand back a JSON result for the report.

import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from './processes.js';

export interface ScriptOutcome {
  file: string;
  exitCode: number | null;
  seconds: number;
  timedOut: boolean;
  /** What the script wrote to BENCH_RESULT_FILE, if anything. */
  result: { markdown?: string; [key: string]: unknown } | null;
}

const SCRIPT_TIMEOUT_MS = 10 * 60_000;

export function benchScripts(): string[] {
  return readdirSync(join(repoRoot, 'bench'))
    .filter((name) => name.endsWith('.bench.ts'))
    .sort();
}

export async function runBenchScript(file: string, date: string, env: Record<string, string> = {}): Promise<ScriptOutcome> {
  const dir = mkdtempSync(join(tmpdir(), 'chassis-bench-script-'));
  const resultFile = join(dir, 'result.json');
  const started = performance.now();
  const child = spawn(process.execPath, ['--import', 'tsx', join('bench', file)], {
    cwd: repoRoot,
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, ...env, BENCH_RESULT_FILE: resultFile, BENCH_DATE: date },
  });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 5_000).unref();
  }, SCRIPT_TIMEOUT_MS);
  // A script interrupted with the bench must not outlive it.
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const exitCode = await new Promise<number | null>((resolve) => {
    child.once('error', () => resolve(null));
    child.once('exit', (code) => resolve(code));
  });
  clearTimeout(timer);
  process.off('exit', killOnExit);

  let result: ScriptOutcome['result'] = null;
  try {
    result = JSON.parse(readFileSync(resultFile, 'utf8'));
  } catch {
    // The script wrote no result (or not valid JSON): its exit code still says how it went.
  }
  rmSync(dir, { recursive: true, force: true });
  return { file, exitCode, seconds: (performance.now() - started) / 1000, timedOut, result };
}
