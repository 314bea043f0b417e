// The chassis under valgrind's callgrind: instructions counted between two points, which a shared,
// drifting VM does not disturb (two identical runs repeat within ~0.1 %, where CPU time moves by
// ±30 % from one window to the next here). V8 runs with fixed seeds and no background threads
// (--predictable), so its compiler and GC do the same work each time. Under valgrind V8 runs ~50×
// slower: read ratios, not absolutes, and run one count per core at most.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startChassisProcess, type ChassisOptions } from './processes.js';

export interface CountedChassis {
  origin: string;
  /** Starts counting from zero. */
  zero(): void;
  /** Instructions since the last zero. */
  counted(): number;
  stop(): Promise<void>;
}

export async function startCountedChassis(options: Omit<ChassisOptions, 'wrapper' | 'readyTimeoutMs'>): Promise<CountedChassis> {
  const dir = mkdtempSync(join(tmpdir(), 'chassis-callgrind-'));
  const chassis = await startChassisProcess({
    ...options,
    wrapper: ['valgrind', '--tool=callgrind', `--callgrind-out-file=${join(dir, 'cg.out')}`],
    nodeArgs: ['--predictable', '--predictable-gc-schedule', '--hash-seed=1', '--random-seed=1', ...(options.nodeArgs ?? [])],
    readyTimeoutMs: 180_000,
  });
  // vgdb names its pipes after $HOST, which the chassis has set to its listen address.
  const control = (command: string) => execFileSync('callgrind_control', [command, String(chassis.pid)], { stdio: 'ignore', env: { ...process.env, HOST: '127.0.0.1' } });
  let dumps = 0;
  return {
    origin: chassis.origin,
    zero: () => control('--zero'),
    counted() {
      control('--dump');
      const file = join(dir, `cg.out.${++dumps}`);
      const summary = /^summary:\s+(\d+)/m.exec(readFileSync(file, 'utf8'));
      if (summary === null) throw new Error(`no summary line in ${file} (${readdirSync(dir).join(', ')})`);
      return Number(summary[1]);
    },
    async stop() {
      await chassis.stop(60_000);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
